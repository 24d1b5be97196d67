//! Cryptle's rules through its HTTP API, without sockets: requests go through the real parser
//! into `App::handle`, answers are read as JSON. The same code runs inside the Keep.

mod cryptle_support;

use cryptle_game::{App, AppConfig, SecretPicker, Word, assets};
use cryptle_support::{CountingEntropy, contains_word, raw_request, request, wire};
use serde_json::Value;

struct Tester {
    app: App,
    now: u64,
    /// Every byte the server sent.
    sent: Vec<Vec<u8>>,
}

impl Tester {
    fn new(seed: u64) -> Tester {
        Tester {
            app: App::new(AppConfig::default(), seed, Box::new(CountingEntropy(seed))),
            now: 0,
            sent: Vec::new(),
        }
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        json: Option<&str>,
    ) -> (u16, Value) {
        // Spread requests out so per-session rate limits do not interfere with rule tests.
        self.now += 1000;
        let response = self
            .app
            .handle(&request(&raw_request(method, path, token, json)), self.now);
        self.sent.push(wire(&response));
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    fn new_single(&mut self) -> String {
        let (status, v) = self.call("POST", "/api/single", None, None);
        assert_eq!(status, 201);
        v["token"].as_str().unwrap().to_owned()
    }

    fn guess(&mut self, token: &str, word: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/single/guess",
            Some(token),
            Some(&format!(r#"{{"guess":"{word}"}}"#)),
        )
    }

    fn join(&mut self, handle: &str) -> String {
        let (status, v) = self.call(
            "POST",
            "/api/multi/join",
            None,
            Some(&format!(r#"{{"handle":"{handle}"}}"#)),
        );
        assert_eq!(status, 201, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    fn play(&mut self, token: &str, word: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/multi/guess",
            Some(token),
            Some(&format!(r#"{{"word":"{word}"}}"#)),
        )
    }
}

/// A seed whose first secret is `word` (the picker is deterministic; a test build of the server
/// takes the seed from the Keep's environment the same way).
fn seed_for(word: &str) -> u64 {
    let want = Word::parse(word).unwrap();
    (0..1_000_000u64)
        .find(|&s| SecretPicker::new(s).next_secret() == want)
        .expect("some seed picks every answer")
}

fn colors(v: &Value) -> Vec<&str> {
    v["colors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

#[test]
fn single_player_scores_repeated_letters_like_wordle() {
    let mut t = Tester::new(seed_for("sheet"));
    let game = t.new_single();
    // One 't' in the secret: the first misplaced copy is yellow, the second grey.
    let (status, v) = t.guess(&game, "teeth");
    assert_eq!(status, 200);
    assert_eq!(colors(&v), ["yellow", "yellow", "green", "grey", "yellow"]);
    // Two 'e's in the secret, both misplaced in the guess: both yellow; the third 'e' grey.
    let (_, v) = t.guess(&game, "eerie");
    assert_eq!(colors(&v), ["yellow", "yellow", "grey", "grey", "grey"]);
    let (_, v) = t.guess(&game, "geese");
    assert_eq!(colors(&v), ["grey", "yellow", "green", "yellow", "grey"]);
    assert_eq!(v["status"], "playing");
    assert_eq!(v["tries_left"], 3);
    let (_, v) = t.guess(&game, "sheet");
    assert_eq!(colors(&v), ["green"; 5]);
    assert_eq!(v["status"], "won");
    let (status, v) = t.guess(&game, "sheet");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("game_over"))
    );
}

#[test]
fn six_tries_then_the_game_is_lost_and_the_word_stays_secret() {
    let mut t = Tester::new(seed_for("crane"));
    let game = t.new_single();
    for left in (0..6).rev() {
        let (_, v) = t.guess(&game, "pious");
        assert_eq!(v["tries_left"], left);
    }
    let (status, v) = t.guess(&game, "crane");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("game_over"))
    );
    assert!(t.sent.iter().all(|bytes| !contains_word(bytes, "crane")));
}

#[test]
fn invalid_words_and_bodies_are_refused_without_using_a_try() {
    let mut t = Tester::new(1);
    let game = t.new_single();
    for (word, code) in [
        ("xqzvj", "not_a_word"),
        ("aaaaa", "not_a_word"),
        ("cran", "bad_word"),
        ("cranes", "bad_word"),
        ("cr4ne", "bad_word"),
        ("", "bad_word"),
    ] {
        let (status, v) = t.guess(&game, word);
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some(code)),
            "{word}"
        );
    }
    let (status, _) = t.call(
        "POST",
        "/api/single/guess",
        Some(&game),
        Some(r#"{"guess":5}"#),
    );
    assert_eq!(status, 400);
    let (status, _) = t.call("POST", "/api/single/guess", Some(&game), Some("not json"));
    assert_eq!(status, 400);
    let raw = b"POST /api/single/guess HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n{}";
    let r = t.app.handle(&request(raw), 1);
    assert_eq!(r.status, 401, "the token is checked before the body");
    // Upper case is the same word; none of the refusals above used a try.
    let (status, v) = t.guess(&game, "PIOUS");
    assert_eq!(status, 200);
    assert_eq!(v["tries_left"], 5);
}

#[test]
fn wrong_or_missing_tokens_cannot_play() {
    let mut t = Tester::new(2);
    let game = t.new_single();
    let alice = t.join("alice");
    let (status, v) = t.guess("0123456789abcdef0123456789abcdef", "crane");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("bad_token"))
    );
    let (status, v) = t.call(
        "POST",
        "/api/single/guess",
        None,
        Some(r#"{"guess":"crane"}"#),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("missing_token"))
    );
    // A game token is not a player token and the other way round.
    assert_eq!(t.play(&game, "crane").0, 401);
    assert_eq!(t.guess(&alice, "crane").0, 401);
    // Nobody can take alice's handle, whatever the case.
    let (status, v) = t.call(
        "POST",
        "/api/multi/join",
        None,
        Some(r#"{"handle":"ALICE"}"#),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("handle_taken"))
    );
    let (status, _) = t.call(
        "POST",
        "/api/multi/join",
        None,
        Some(r#"{"handle":"<b>x</b>"}"#),
    );
    assert_eq!(status, 422);
}

#[test]
fn multiplayer_match_scores_both_and_a_matched_word_scores_no_more() {
    let mut t = Tester::new(3);
    let alice = t.join("alice");
    let bob = t.join("bob");
    let carol = t.join("carol");
    let (_, v) = t.play(&alice, "crane");
    assert_eq!(v["result"], "new");
    assert_eq!(colors(&v), ["grey"; 5]);
    let (_, v) = t.play(&carol, "crate");
    assert_eq!(colors(&v), ["blue", "blue", "blue", "grey", "blue"]);
    let (_, v) = t.play(&alice, "crane");
    assert_eq!(
        (v["result"].as_str(), colors(&v)),
        (Some("own"), vec!["red"; 5])
    );
    let (_, v) = t.play(&bob, "crane");
    assert_eq!(v["result"], "match");
    assert_eq!(v["with"], "alice");
    assert_eq!(colors(&v), ["purple"; 5]);
    assert_eq!(v["score"], 1);
    // Already matched: red for everyone, no more points.
    let (_, v) = t.play(&carol, "crane");
    assert_eq!(
        (v["result"].as_str(), v["score"].as_u64()),
        (Some("taken"), Some(0))
    );
    let (_, v) = t.play(&alice, "crane");
    assert_eq!(
        (v["result"].as_str(), v["score"].as_u64()),
        (Some("taken"), Some(1))
    );
    let (status, state) = t.call("GET", "/api/multi/state", None, None);
    assert_eq!(status, 200);
    let scores: Vec<(String, u64)> = state["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["handle"].as_str().unwrap().to_owned(),
                p["score"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        scores,
        [("alice".into(), 1), ("bob".into(), 1), ("carol".into(), 0)]
    );
    assert_eq!(state["matches"][0]["word"], "crane");
    assert_eq!(
        state["matches"][0]["players"],
        serde_json::json!(["alice", "bob"])
    );
    // carol's unmatched word never appears anywhere.
    assert!(t.sent.iter().all(|bytes| !contains_word(bytes, "crate")));
}

#[test]
fn session_rate_is_bounded() {
    let mut t = Tester::new(4);
    let game = t.new_single();
    let raw = raw_request(
        "POST",
        "/api/single/guess",
        Some(&game),
        Some(r#"{"guess":"zzzzz"}"#),
    );
    let statuses: Vec<u16> = (0..100)
        .map(|_| t.app.handle(&request(&raw), 5).status)
        .collect();
    assert!(statuses.contains(&422), "early requests are answered");
    assert_eq!(
        statuses.last(),
        Some(&429),
        "a burst beyond the session rate is refused"
    );
}

#[test]
fn no_response_holds_a_secret_before_it_is_guessed() {
    // Many single games (secrets from a known seed) and multiplayer words, with every response
    // checked against the words still secret at the time it was sent.
    let seed = 0x5eed;
    let mut t = Tester::new(seed);
    let mut picker = SecretPicker::new(seed);
    let page: Vec<u8> = [assets::INDEX_HTML, assets::INDEX_JS, assets::STYLES_CSS]
        .concat()
        .into_bytes();
    let mut secrets: Vec<(String, bool)> = Vec::new(); // (word, guessed)
    let on_page = |w: &str| contains_word(&page, w);
    let check = |t: &Tester, secrets: &[(String, bool)]| {
        let last = t.sent.last().unwrap();
        for (w, guessed) in secrets {
            if !guessed && !on_page(w) {
                assert!(
                    !contains_word(last, w),
                    "a response leaked the secret {w:?}"
                );
            }
        }
    };
    for path in [
        "/",
        "/index.js",
        "/styles.css",
        "/healthz",
        "/api/multi/state",
        "/nope",
    ] {
        t.call("GET", path, None, None);
    }
    let players: Vec<String> = ["ann", "ben", "cat"].iter().map(|h| t.join(h)).collect();
    let guesses = [
        "crane", "pious", "teeth", "sheet", "lemon", "zebra", "abide", "robin",
    ];
    for round in 0..30 {
        let game = t.new_single();
        let secret = picker.next_secret().as_str().to_owned();
        secrets.push((secret.clone(), false));
        check(&t, &secrets);
        for g in guesses.iter().take(5) {
            let (_, v) = t.guess(&game, g);
            check(&t, &secrets);
            if v["status"] == "won" {
                secrets.last_mut().unwrap().1 = true;
            }
        }
        // Multiplayer: each player plays an answer word; the next player plays the previous
        // player's word every third round, making a match (then the word is public).
        let p = &players[round % 3];
        let word = cryptle_game::words::answer(round * 7 + 1)
            .as_str()
            .to_owned();
        let (_, v) = t.play(p, &word);
        if v["result"] == "new" {
            secrets.push((word.clone(), false));
        }
        check(&t, &secrets);
        if round % 3 == 2 {
            let other = &players[(round + 1) % 3];
            let (_, v) = t.play(other, &word);
            if v["result"] == "match" {
                for s in secrets.iter_mut().filter(|(w, _)| *w == word) {
                    s.1 = true;
                }
            }
        }
        t.call("GET", "/api/multi/state", None, None);
        check(&t, &secrets);
    }
    assert!(
        secrets
            .iter()
            .filter(|(w, g)| !g && !contains_word(&page, w))
            .count()
            > 20
    );
}

#[test]
fn a_full_game_table_makes_room_from_finished_games_only() {
    let config = AppConfig {
        max_single_games: 2,
        ..AppConfig::default()
    };
    let mut t = Tester {
        app: App::new(config, 7, Box::new(CountingEntropy(7))),
        now: 0,
        sent: Vec::new(),
    };
    let playing = t.new_single();
    let finished = t.new_single();
    // Finish the second game (won or lost, either ends it).
    for word in ["crane", "pious", "lemon", "teeth", "robin", "mango"] {
        let (_, v) = t.guess(&finished, word);
        if v["status"] != "playing" {
            break;
        }
    }
    // Full, but one game is over: a new game takes its place; the one in play is kept.
    let third = t.new_single();
    assert_eq!(
        t.guess(&playing, "crane").0,
        200,
        "the game in play survives"
    );
    assert_eq!(
        t.guess(&finished, "crane").0,
        401,
        "the finished game made room"
    );
    // Full with two games in play: the next is refused, not evicting a player.
    let (status, v) = t.call("POST", "/api/single", None, None);
    assert_eq!(status, 503, "{v}");
    assert_eq!(t.guess(&third, "lemon").0, 200);
}
