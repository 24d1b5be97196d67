//! Cryptle built for wasm32-wasip1 and run in a Keep with `moat run`, over real TLS on loopback:
//! the game as a player sees it, every response checked for secrets, and hostile clients while
//! a player keeps being served.

mod cryptle_support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use cryptle_support::{
    Keep, Recorder, call, contains_word, cryptle_wasm, read_response, seed_with_unique_secret,
};
use serde_json::Value;

fn moat() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_moat"))
}

fn colors(v: &Value) -> Vec<String> {
    v["colors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_game_through_the_keep_never_sends_an_unguessed_secret() {
    let wasm = cryptle_wasm();
    let (seed, secret, _) = seed_with_unique_secret(&[]);
    let keep = Keep::start(moat(), &wasm, &[("CRYPTLE_TEST_SEED", seed.to_string())]);
    let mut s = Recorder {
        inner: keep.connect(),
        received: Vec::new(),
    };

    // Checked after every response: the secret (not yet guessed) and bob's unmatched word.
    let bobs_word = "pious";
    let check = |s: &Recorder<_>, secret_guessed: bool| {
        if !secret_guessed {
            assert!(
                !contains_word(&s.received, &secret),
                "the secret left the Keep"
            );
        }
        assert!(
            !contains_word(&s.received, bobs_word),
            "an unmatched word left the Keep"
        );
    };

    for path in ["/", "/index.js", "/styles.css"] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: cryptle\r\n\r\n").as_bytes())
            .unwrap();
        let (status, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty());
        check(&s, false);
    }
    let (status, game) = call(&mut s, "POST", "/api/single", None, None).unwrap();
    assert_eq!(status, 201);
    let game = game["token"].as_str().unwrap().to_owned();
    check(&s, false);
    let (status, v) = call(
        &mut s,
        "POST",
        "/api/single/guess",
        Some(&game),
        Some(r#"{"guess":"qqqqq"}"#),
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("not_a_word"))
    );
    let (status, v) = call(
        &mut s,
        "POST",
        "/api/single/guess",
        Some("feedfeedfeedfeedfeedfeedfeedfeed"),
        Some(r#"{"guess":"crane"}"#),
    )
    .unwrap();
    assert_eq!(status, 401, "{v}");
    let (status, v) = call(
        &mut s,
        "POST",
        "/api/single/guess",
        Some(&game),
        Some(r#"{"guess":"crane"}"#),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(colors(&v).len(), 5);
    check(&s, false);

    let (_, alice) = call(
        &mut s,
        "POST",
        "/api/multi/join",
        None,
        Some(r#"{"handle":"alice"}"#),
    )
    .unwrap();
    let (_, bob) = call(
        &mut s,
        "POST",
        "/api/multi/join",
        None,
        Some(r#"{"handle":"bob"}"#),
    )
    .unwrap();
    let (alice, bob) = (
        alice["token"].as_str().unwrap().to_owned(),
        bob["token"].as_str().unwrap().to_owned(),
    );
    let (_, v) = call(
        &mut s,
        "POST",
        "/api/multi/guess",
        Some(&alice),
        Some(r#"{"word":"lemon"}"#),
    )
    .unwrap();
    assert_eq!(v["result"], "new");
    let (_, v) = call(
        &mut s,
        "POST",
        "/api/multi/guess",
        Some(&bob),
        Some(&format!(r#"{{"word":"{bobs_word}"}}"#)),
    )
    .unwrap();
    assert_eq!(v["result"], "new");
    check(&s, false);
    let (_, v) = call(
        &mut s,
        "POST",
        "/api/multi/guess",
        Some(&bob),
        Some(r#"{"word":"lemon"}"#),
    )
    .unwrap();
    assert_eq!(
        (v["result"].as_str(), v["with"].as_str()),
        (Some("match"), Some("alice"))
    );
    assert_eq!(colors(&v), ["purple"; 5]);
    let (_, v) = call(
        &mut s,
        "POST",
        "/api/multi/guess",
        Some(&alice),
        Some(r#"{"word":"lemon"}"#),
    )
    .unwrap();
    assert_eq!(v["result"], "taken");
    let (_, state) = call(&mut s, "GET", "/api/multi/state", None, None).unwrap();
    assert_eq!(state["matches"][0]["word"], "lemon");
    assert!(
        state["players"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["score"] == 1)
    );
    check(&s, false);

    // Guessing the secret wins; only now may the word appear (it is the player's own guess).
    let (_, v) = call(
        &mut s,
        "POST",
        "/api/single/guess",
        Some(&game),
        Some(&format!(r#"{{"guess":"{secret}"}}"#)),
    )
    .unwrap();
    assert_eq!(v["status"], "won", "{}", keep.log());
}

#[test]
fn hostile_clients_do_not_stop_a_player_in_the_keep() {
    let wasm = cryptle_wasm();
    let keep = Keep::start(
        moat(),
        &wasm,
        &[
            ("CRYPTLE_HEADER_TIMEOUT_MS", "500".into()),
            ("CRYPTLE_MAX_CONNECTIONS", "64".into()),
        ],
    );
    let play = |handle: &str| {
        let mut s = keep.connect();
        let (status, g) = call(&mut s, "POST", "/api/single", None, None).unwrap();
        assert_eq!(status, 201);
        let t = g["token"].as_str().unwrap();
        let (status, _) = call(
            &mut s,
            "POST",
            "/api/single/guess",
            Some(t),
            Some(r#"{"guess":"crane"}"#),
        )
        .unwrap();
        assert_eq!(status, 200);
        let (status, _) = call(
            &mut s,
            "POST",
            "/api/multi/join",
            None,
            Some(&format!(r#"{{"handle":"{handle}"}}"#)),
        )
        .unwrap();
        assert_eq!(status, 201);
    };
    play("first");

    // Garbage and an oversized head over TLS: an error status, then the Keep's Cryptle goes on.
    let mut s = keep.connect();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let (status, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 400);
    let mut s = keep.connect();
    let _ = s.write_all(&[b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; 20_000]].concat());
    let (status, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 431);
    play("second");

    // A slow head is cut off with 408.
    let mut slow = keep.connect();
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: a").unwrap();
    play("third");
    let (status, _) = read_response(&mut slow).unwrap();
    assert_eq!(status, 408);

    // Hundreds of idle connections: raw TCP that never starts TLS, and TLS sessions that never
    // send a request (more than Cryptle's connection limit).
    let raw: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(keep.addr).unwrap())
        .collect();
    let mut idle_tls = Vec::new();
    for _ in 0..150 {
        let mut c = keep.connect();
        c.conn.complete_io(&mut c.sock).unwrap();
        idle_tls.push(c);
    }
    play("fourth");
    std::thread::sleep(Duration::from_millis(100));
    play("fifth");
    drop((raw, idle_tls));
}
