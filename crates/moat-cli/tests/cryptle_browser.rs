//! Cryptle in real headless Chromium (Debian's `chromium` + `chromium-driver`, installed by
//! `.ci/run`), driven over WebDriver by a small client written here (plain HTTP + JSON: no
//! browser-automation crate to compile). Three players in three tabs of one browser, over HTTPS
//! to a Keep started with `moat run` that attested (as `nil`, allowed by this test's policy) to a
//! Steward running as a real process. Chromium verifies the Keep's chain the way it verifies any
//! site: the Steward CA is the one root added to the NSS database of the browser's (temporary)
//! home directory, where Chromium on Linux looks for locally trusted roots, so names, validity
//! and signatures are all checked, and the page loads only because the Steward certified the
//! Keep. A server with a certificate from no trusted root is refused in the same browser.
//! Screenshots go to `target/test-artifacts/cryptle-browser/`.

mod cryptle_support;
#[path = "steward_support/mod.rs"]
mod steward_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cryptle_support::{Keep, cryptle_wasm, repo_root, seed_with_unique_secret};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A failsafe for waits on the page, so a broken page fails instead of hanging; not a
/// performance bound.
const PATIENCE: Duration = Duration::from_secs(30);

fn find_program(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "none of {names:?} is installed: run .ci/run (it installs chromium and chromium-driver)"
    );
}

/// One HTTP/1.1 exchange with the driver (a new connection each time; it answers JSON).
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open whatever the request says: read the head, then
    // exactly Content-Length bytes of body.
    let json = match read_http_body(&mut s) {
        Ok(body) => body,
        Err(e) => panic!("WebDriver {method} {path}: no answer ({e})"),
    };
    let v: Value = serde_json::from_str(json.trim()).unwrap_or(Value::Null);
    if let Some(err) = v["value"].get("error") {
        panic!("WebDriver {method} {path}: {err} {}", v["value"]["message"]);
    }
    v["value"].clone()
}

/// A home directory whose NSS database (where Chromium on Linux looks for locally trusted roots)
/// trusts `ca_pem`, and nothing else, to identify web servers.
fn home_trusting(ca_pem: &[u8]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join(".pki").join("nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let ca = home.path().join("steward-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let certutil = find_program(&["certutil"]);
    for args in [
        vec!["-N", "-d", &db, "--empty-password"],
        vec![
            "-A",
            "-d",
            &db,
            "-t",
            "C,,",
            "-n",
            "Moat Steward CA (test)",
            "-i",
            ca.to_str().unwrap(),
        ],
    ] {
        let out = Command::new(&certutil).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    home
}

/// The body of one HTTP/1.1 response with a Content-Length.
fn read_http_body(s: &mut TcpStream) -> std::io::Result<String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Content-Length in the answer"))?;
    while raw.len() < head_end + length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned())
}

struct Driver {
    process: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    _home: tempfile::TempDir,
}

impl Driver {
    /// A browser whose only trusted root is `ca_pem`.
    fn start(ca_pem: &[u8]) -> Driver {
        let home = home_trusting(ca_pem);
        let chromium = find_program(&["chromium", "chromium-browser"]);
        let chromedriver = find_program(&["chromedriver"]);
        // chromedriver takes a port, not a listener: ask the OS for a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            // Chromium inherits it and reads `$HOME/.pki/nssdb`.
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-background-timer-throttling".into(),
            "--disable-renderer-backgrounding".into(),
            "--window-size=1000,1300".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let session = http(addr, "POST", "/session", Some(&caps))["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        Driver {
            process,
            addr,
            session,
            _profile: profile,
            _home: home,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        http(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    fn current_tab(&self) -> String {
        self.call("GET", "/window", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn new_tab(&self) -> String {
        self.call("POST", "/window/new", Some(json!({"type": "tab"})))["handle"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn switch(&self, tab: &str) {
        self.call("POST", "/window", Some(json!({"handle": tab})));
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    fn element(&self, css: &str) -> String {
        self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )[ELEMENT]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Wait until `script` returns true on the page.
    fn wait_for(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            if self.js(script) == Value::Bool(true) {
                return;
            }
            if started.elapsed() > PATIENCE {
                let status = self.js("return [document.getElementById('single-status').textContent, document.getElementById('multi-status').textContent].join(' | ')");
                panic!("the page never showed {what}; status: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = repo_root().join("target/test-artifacts/cryptle-browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            http(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A JavaScript expression: the colours of the tiles in the row `row` (0 = first) of the board
/// `board`, comma-separated ('' while the row is absent).
fn row_colors(board: &str, row: usize) -> String {
    format!(
        "(() => {{ const r = document.querySelectorAll('#{board} .row')[{row}]; \
         return r ? Array.from(r.children).map(t => t.className.replace('tile ', '')).join(',') : ''; }})()"
    )
}

/// A script for [`Driver::js`] that returns the value of `expression`.
fn value_of(expression: &str) -> String {
    format!("return {expression};")
}

#[test]
fn three_players_in_chromium_over_https() {
    let wasm = cryptle_wasm();
    let (seed, secret, _) = seed_with_unique_secret(&[]);
    let steward = steward_support::Steward::start(
        "allow_insecure_nil = true\nworkloads = [\"moat:local:*\"]\n",
        &[],
    );
    let keep = Keep::start_with(
        Path::new(env!("CARGO_BIN_EXE_moat")),
        &wasm,
        &[("CRYPTLE_TEST_SEED", seed.to_string())],
        &[
            "--steward".as_ref(),
            steward.url.as_ref(),
            "--steward-ca".as_ref(),
            steward.ca_path.as_os_str(),
            "--platform".as_ref(),
            "nil".as_ref(),
        ],
    );
    let steward_ca = {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(&steward.ca_pem).unwrap()
    };
    assert_ne!(
        keep.cert, steward_ca,
        "the Keep presents its own certificate, issued by the Steward"
    );
    let url = format!("https://127.0.0.1:{}/", keep.addr.port());
    let d = Driver::start(&steward.ca_pem);

    // The browser really verifies: a server whose certificate no trusted root issued
    // (self-signed, for the same names) gets Chromium's certificate error page instead.
    let stranger = moat_testkit::servers::EchoServer::tls(moat_testkit::tls::server_config(
        &moat_testkit::pki::self_signed_server(&["localhost", "127.0.0.1"]),
        None,
    ));
    d.goto(&format!("https://127.0.0.1:{}/", stranger.addr.port()));
    d.wait_for(
        "Chromium's certificate error page",
        "return document.body.innerText.includes('NET::ERR_CERT_AUTHORITY_INVALID')",
    );

    // Alice: a single-player round, won on the second try.
    let alice = d.current_tab();
    d.goto(&url);
    d.wait_for(
        "the page",
        "return document.title === 'Cryptle' && !!document.getElementById('single-input')",
    );
    let guess = if secret == "crane" { "pious" } else { "crane" };
    d.type_into("#single-input", guess);
    d.click("#single-submit");
    d.wait_for(
        "the first row",
        &format!(
            "return ({}).split(',').length === 5",
            row_colors("single-board", 0)
        ),
    );
    let first = d.js(&value_of(&row_colors("single-board", 0)));
    assert!(
        first
            .as_str()
            .unwrap()
            .split(',')
            .all(|c| ["green", "yellow", "grey"].contains(&c)),
        "{first}"
    );
    assert_ne!(first, "green,green,green,green,green");
    d.type_into("#single-input", &secret);
    d.click("#single-submit");
    d.wait_for(
        "a win",
        "return document.getElementById('single-status').textContent.includes('You found it')",
    );
    assert_eq!(
        d.js(&value_of(&row_colors("single-board", 1))),
        "green,green,green,green,green"
    );
    d.screenshot("1-alice-single-won");

    // Three players join the multiplayer game, each in a tab of its own.
    d.click("#tab-multi");
    d.type_into("#handle-input", "alice");
    d.click("#join-button");
    d.wait_for(
        "alice joined",
        "return document.getElementById('me').textContent === 'alice'",
    );
    let mut tabs = vec![("alice", alice)];
    for handle in ["bob", "carol"] {
        let tab = d.new_tab();
        d.switch(&tab);
        d.goto(&url);
        d.wait_for("the page", "return !!document.getElementById('tab-multi')");
        d.click("#tab-multi");
        d.type_into("#handle-input", handle);
        d.click("#join-button");
        d.wait_for(
            "joined",
            &format!("return document.getElementById('me').textContent === '{handle}'"),
        );
        tabs.push((handle, tab));
    }
    let tab = |h: &str| tabs.iter().find(|(n, _)| *n == h).unwrap().1.clone();

    // Alice plays a word; carol plays another; bob plays alice's word: a match.
    d.switch(&tab("alice"));
    d.type_into("#word-input", "lemon");
    d.click("#word-submit");
    d.wait_for(
        "alice's word",
        &format!(
            "return ({}) === 'grey,grey,grey,grey,grey'",
            row_colors("my-words", 0)
        ),
    );
    d.switch(&tab("carol"));
    d.type_into("#word-input", "melon");
    d.click("#word-submit");
    // 'melon' shares letters in place with 'lemon' (e at 2nd, o at 4th, n at 5th): blue.
    d.wait_for(
        "carol's hint",
        &format!(
            "return ({}) === 'grey,blue,grey,blue,blue'",
            row_colors("my-words", 0)
        ),
    );
    d.switch(&tab("bob"));
    d.type_into("#word-input", "lemon");
    d.click("#word-submit");
    d.wait_for(
        "bob's match",
        &format!(
            "return ({}) === 'purple,purple,purple,purple,purple'",
            row_colors("my-words", 0)
        ),
    );
    d.wait_for(
        "bob's score",
        "return document.getElementById('my-score').textContent === '1'",
    );
    d.screenshot("2-bob-match");

    // Both matched players see the match and the scoreboard update; carol sees it too.
    // A JS expression: the score shown for `h` on the scoreboard.
    let score_of = |h: &str| {
        format!(
            "((r) => r ? r.children[1].textContent : '')(document.querySelector('#scoreboard tr[data-handle=\"{h}\"]'))"
        )
    };
    for (who, shot) in [
        ("alice", "3-alice-sees-match"),
        ("carol", "4-carol-sees-match"),
    ] {
        d.switch(&tab(who));
        d.wait_for("the match on the list", "return Array.from(document.querySelectorAll('#matches .word')).some(e => e.textContent === 'lemon')");
        d.wait_for(
            "scores",
            &format!(
                "return {} === '1' && {} === '1'",
                score_of("alice"),
                score_of("bob")
            ),
        );
        assert_eq!(d.js(&format!("return {}", score_of("carol"))), "0");
        d.screenshot(shot);
    }
    d.switch(&tab("alice"));
    d.wait_for(
        "alice's own score",
        "return document.getElementById('my-score').textContent === '1'",
    );

    // A word already matched is red for carol and scores nothing.
    d.switch(&tab("carol"));
    d.type_into("#word-input", "lemon");
    d.click("#word-submit");
    d.wait_for(
        "red",
        &format!(
            "return ({}) === 'red,red,red,red,red'",
            row_colors("my-words", 0)
        ),
    );
    assert_eq!(d.js(&format!("return {}", score_of("carol"))), "0");
    d.screenshot("5-carol-taken");
    drop(keep);
}
