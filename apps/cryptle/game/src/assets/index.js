// Cryptle's page. It only ever receives colours, scores and matched words: hidden words stay on
// the server. Each tab is its own player (tokens live in this page's memory only).
"use strict";

const $ = (id) => document.getElementById(id);

async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  let data = {};
  try { data = await res.json(); } catch (_) { /* empty body */ }
  if (!res.ok) throw new Error((data.error && data.error.message) || ("HTTP " + res.status));
  return data;
}

function row(letters, colors) {
  const r = document.createElement("div");
  r.className = "row";
  for (let i = 0; i < 5; i++) {
    const t = document.createElement("div");
    t.className = "tile " + colors[i];
    t.textContent = letters[i];
    r.appendChild(t);
  }
  return r;
}

// ---- tabs
function show(which) {
  for (const name of ["single", "multi"]) {
    $(name).classList.toggle("hidden", name !== which);
    $("tab-" + name).classList.toggle("active", name === which);
  }
}
$("tab-single").addEventListener("click", () => show("single"));
$("tab-multi").addEventListener("click", () => { show("multi"); refreshState(); });

// ---- single player
let game = null;

async function newGame() {
  $("single-board").replaceChildren();
  $("single-status").textContent = "";
  $("single-input").disabled = false;
  try {
    game = await api("POST", "/api/single");
    $("single-status").textContent = "New word chosen. " + game.tries + " tries.";
  } catch (e) {
    $("single-status").textContent = e.message;
  }
}

$("single-new").addEventListener("click", newGame);
$("single-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const guess = $("single-input").value.trim().toLowerCase();
  if (!game) await newGame();
  try {
    const r = await api("POST", "/api/single/guess", { guess }, game.token);
    $("single-board").appendChild(row(guess, r.colors));
    $("single-input").value = "";
    if (r.status === "won") {
      $("single-status").textContent = "You found it!";
      $("single-input").disabled = true;
    } else if (r.status === "lost") {
      $("single-status").textContent = "Out of tries. The word stays a secret: start a new game.";
      $("single-input").disabled = true;
    } else {
      $("single-status").textContent = r.tries_left + " tries left.";
    }
  } catch (e) {
    $("single-status").textContent = e.message;
  }
});

// ---- multiplayer
let player = null;

$("join-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    player = await api("POST", "/api/multi/join", { handle: $("handle-input").value.trim() });
    $("me").textContent = player.handle;
    $("join-form").classList.add("hidden");
    $("play").classList.remove("hidden");
    $("multi-status").textContent = "Joined as " + player.handle + ".";
    refreshState();
  } catch (e) {
    $("multi-status").textContent = e.message;
  }
});

$("multi-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const word = $("word-input").value.trim().toLowerCase();
  try {
    const r = await api("POST", "/api/multi/guess", { word }, player.token);
    $("my-words").prepend(row(word, r.colors));
    $("word-input").value = "";
    $("my-score").textContent = r.score;
    const text = {
      new: "Your word is in play.",
      match: "Match with " + r.with + "! You both score.",
      taken: "Already matched: no points.",
      own: "You played that word before.",
    };
    $("multi-status").textContent = text[r.result] || "";
    refreshState();
  } catch (e) {
    $("multi-status").textContent = e.message;
  }
});

async function refreshState() {
  let s;
  try { s = await api("GET", "/api/multi/state"); } catch (_) { return; }
  const body = $("scoreboard").querySelector("tbody");
  body.replaceChildren(...s.players.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.handle = p.handle;
    for (const v of [p.handle, p.score, p.words]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    if (player && p.handle === player.handle) {
      tr.className = "me";
      $("my-score").textContent = p.score;
    }
    return tr;
  }));
  $("matches").replaceChildren(...s.matches.map((m) => {
    const li = document.createElement("li");
    const w = document.createElement("span");
    w.className = "word";
    w.textContent = m.word;
    li.append(w, " · " + m.players[0] + " & " + m.players[1]);
    return li;
  }));
}

setInterval(() => { if (!$("multi").classList.contains("hidden")) refreshState(); }, 1000);
