//! The attack that only SEV-SNP and TDX stop: on the `nil` platform a Keep is an ordinary
//! process, and `moat scan` (root reading /proc/PID/mem) finds a live Cryptle's secret word.
//!
//! The secret comes from the game itself: a test build of Cryptle takes its secret-word seed from
//! `CRYPTLE_TEST_SEED`, and the test computes the word from the seed with the same library.
//! The word is absent before a game starts and present after, while a control answer the game
//! never picked stays absent: the scan finds the game's secret, not the word list.

mod cryptle_support;

use std::path::Path;
use std::process::Command;

use cryptle_support::{Keep, call, cryptle_wasm, seed_with_unique_secret};
use serde_json::Value;

fn moat() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_moat"))
}

fn scan(pid: u32, words: &Path) -> (Option<i32>, Value, String) {
    let out = Command::new(moat())
        .args(["scan", "--pid", &pid.to_string(), "--words"])
        .arg(words)
        .arg("--json")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn found(report: &Value, word: &str) -> bool {
    report["words"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["word"] == word && w["found"] == true)
}

#[test]
fn scan_finds_the_live_secret_in_a_nil_keep() {
    let wasm = cryptle_wasm();
    let module = std::fs::read(&wasm).unwrap();
    let binary = std::fs::read(moat()).unwrap();
    let (seed, secret, control) = seed_with_unique_secret(&[&module, &binary]);
    let keep = Keep::start(moat(), &wasm, &[("CRYPTLE_TEST_SEED", seed.to_string())]);

    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, format!("{secret}\n{control}\n")).unwrap();

    let (code, before, err) = scan(keep.pid(), &words);
    assert_eq!(
        code,
        Some(1),
        "nothing to find before a game starts: {before} {err}"
    );
    assert!(before["bytes_scanned"].as_u64().unwrap() > 0);

    // A player starts a single game: the Keep picks the secret.
    let mut s = keep.connect();
    let (status, _) = call(&mut s, "POST", "/api/single", None, None).unwrap();
    assert_eq!(status, 201);

    let (code, after, err) = scan(keep.pid(), &words);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        found(&after, &secret),
        "the secret was not found in the Keep's memory: {after}"
    );
    assert!(
        !found(&after, &control),
        "a word the game never picked was found: {after}"
    );
    let hit = &after["words"][0]["hits"][0];
    assert!(hit["region"].as_str().unwrap().contains("rw"), "{hit}");
}

#[test]
fn scan_reports_a_missing_process_and_a_bad_words_file() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "crane\n").unwrap();
    let out = Command::new(moat())
        .args(["scan", "--pid", "4000000000", "--words"])
        .arg(&words)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process with pid 4000000000"));

    std::fs::write(&words, "# only a comment\n\n").unwrap();
    let out = Command::new(moat())
        .args(["scan", "--pid", &std::process::id().to_string(), "--words"])
        .arg(&words)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no words"));

    // A process of our own holding a word in its heap: found, with its region.
    let marker = format!("moatscanmarker{}", std::process::id());
    let held: Vec<u8> = marker.as_bytes().to_vec();
    std::fs::write(&words, format!("{marker}\n")).unwrap();
    let out = Command::new(moat())
        .args([
            "scan",
            "--pid",
            &std::process::id().to_string(),
            "--json",
            "--words",
        ])
        .arg(&words)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(found(&report, &marker));
    drop(held);
}
