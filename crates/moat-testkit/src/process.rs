//! Running the real `moat` binary (or any server process) as a child, with its output captured.
//!
//! A [`Moat`] builder collects the command line, writes the config file into a fresh temp dir
//! (the *workdir*, also a good place for pre-opened directories and PEM files), and spawns. The
//! returned [`Running`] handle reads stdout and stderr on two threads, line by line, so a test can
//! wait for a line the guest prints, and it kills the process when dropped: a failing test never
//! leaves a server behind. [`Finished`] is the outcome of a process that exited.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::WAIT;

/// The `moat` binary to run: `$MOAT_BIN` if set, else `target/debug/moat` in this repository.
/// Tests in `crates/moat-cli/tests` should pass `env!("CARGO_BIN_EXE_moat")` instead, which cargo
/// guarantees is built and current.
pub fn moat_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MOAT_BIN") {
        return bin.into();
    }
    crate::guests::repo_root().join("target/debug/moat")
}

/// Builds a `moat` command line. See the crate docs for an example.
pub struct Moat {
    bin: PathBuf,
    /// Arguments before the config (the subcommand and its flags).
    args: Vec<OsString>,
    module: Option<OsString>,
    guest_args: Vec<OsString>,
    config: Option<(String, String)>,
    env: Vec<(OsString, OsString)>,
    workdir: tempfile::TempDir,
}

impl Moat {
    /// `moat run [config and flags] MODULE [-- guest args]`.
    pub fn run(bin: impl AsRef<Path>, module: impl AsRef<Path>) -> Moat {
        let mut moat = Moat::command(bin, ["run"]);
        moat.module = Some(module.as_ref().as_os_str().to_owned());
        moat
    }

    /// Any `moat` command, e.g. `Moat::command(bin, ["config", "check"])`; add more with
    /// [`Moat::arg`].
    pub fn command<I: AsRef<OsStr>>(
        bin: impl AsRef<Path>,
        args: impl IntoIterator<Item = I>,
    ) -> Moat {
        Moat {
            bin: bin.as_ref().to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            module: None,
            guest_args: Vec::new(),
            config: None,
            env: Vec::new(),
            workdir: tempfile::Builder::new()
                .prefix("moat-test-")
                .tempdir()
                .expect("create a temp dir"),
        }
    }

    /// The temp dir this process gets; it lives as long as the [`Running`] handle.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// Write `text` to `Moat.toml` in the workdir and pass `--config` with its path.
    pub fn config(self, text: &str) -> Moat {
        self.config_named("Moat.toml", text)
    }

    /// As [`Moat::config`], under another file name (e.g. `Enarx.toml`).
    pub fn config_named(mut self, file_name: &str, text: &str) -> Moat {
        self.config = Some((file_name.to_owned(), text.to_owned()));
        self
    }

    /// The path the config file will have.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config
            .as_ref()
            .map(|(name, _)| self.workdir.path().join(name))
    }

    /// One more argument for moat itself (before the module).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Moat {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments for moat itself (before the module).
    pub fn args<I: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = I>) -> Moat {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Arguments for the workload, passed after `--`.
    pub fn guest_args<I: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = I>) -> Moat {
        self.guest_args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the moat process (not the workload: Moat passes none through).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Moat {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Run the command under another program, e.g. `valgrind --tool=cachegrind`: `program`
    /// becomes the executable and gets `args`, then this command's binary and arguments.
    pub fn wrapped_in<I: AsRef<OsStr>>(
        mut self,
        program: impl AsRef<Path>,
        args: impl IntoIterator<Item = I>,
    ) -> Moat {
        let mut wrapped: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        wrapped
            .push(std::mem::replace(&mut self.bin, program.as_ref().to_owned()).into_os_string());
        wrapped.append(&mut self.args);
        self.args = wrapped;
        self
    }

    /// The full argument list, as it will be passed.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = self.args.clone();
        if let Some(path) = self.config_path() {
            argv.push("--config".into());
            argv.push(path.into_os_string());
        }
        if let Some(module) = &self.module {
            argv.push(module.clone());
        }
        if !self.guest_args.is_empty() {
            argv.push("--".into());
            argv.extend(self.guest_args.iter().cloned());
        }
        argv
    }

    /// Start the process with stdin piped (see [`Running::write_stdin`]).
    pub fn spawn(self) -> Running {
        if let Some((name, text)) = &self.config {
            std::fs::write(self.workdir.path().join(name), text).expect("write the config file");
        }
        let mut command = Command::new(&self.bin);
        command
            .args(self.argv())
            .current_dir(self.workdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Tests read warnings and errors; noisier levels are opted into per test.
            .env_remove("MOAT_LOG");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let description = format!("{} {:?}", self.bin.display(), self.argv());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let stdout = Capture::start(child.stdout.take().expect("piped stdout"));
        let stderr = Capture::start(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        Running {
            child,
            stdin,
            stdout,
            stderr,
            description,
            workdir: self.workdir,
        }
    }

    /// Run to completion with `stdin` as its standard input; kill it and panic after [`WAIT`].
    pub fn output_with_stdin(self, stdin: &[u8]) -> Finished {
        let mut running = self.spawn();
        running.write_stdin(stdin);
        running.close_stdin();
        running.wait_exit(WAIT)
    }

    /// Run to completion with empty stdin.
    pub fn output(self) -> Finished {
        self.output_with_stdin(b"")
    }
}

/// A process that exited.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Panic with the whole output unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Finished {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panic with the whole output unless stderr contains every one of `needles`
    /// (ASCII case-insensitively).
    pub fn assert_stderr_mentions(&self, needles: &[&str]) -> &Finished {
        let haystack = self.stderr.to_ascii_lowercase();
        for needle in needles {
            assert!(
                haystack.contains(&needle.to_ascii_lowercase()),
                "stderr does not mention {needle:?}\n--- stderr\n{}\n--- stdout\n{}",
                self.stderr,
                self.stdout
            );
        }
        self
    }

    /// The stdout lines.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Lines read so far from one output stream, and whether it has ended.
#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

#[derive(Clone)]
struct Capture(Arc<(Mutex<Lines>, Condvar)>);

impl Capture {
    fn start(stream: impl Read + Send + 'static) -> Capture {
        let capture = Capture(Arc::default());
        let shared = capture.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let (lock, cond) = &*shared.0;
                        lock.lock().expect("capture lock").lines.push(text);
                        cond.notify_all();
                    }
                }
            }
            let (lock, cond) = &*shared.0;
            lock.lock().expect("capture lock").closed = true;
            cond.notify_all();
        });
        capture
    }

    fn text(&self) -> String {
        let lines = self.0.0.lock().expect("capture lock");
        lines.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Wait for a line matching `pred`, at or after line `from`; `Err(true)` if the stream ended,
    /// `Err(false)` on timeout.
    fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<(usize, String), bool> {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.0;
        let mut lines = lock.lock().expect("capture lock");
        let mut checked = from;
        loop {
            while checked < lines.lines.len() {
                if pred(&lines.lines[checked]) {
                    return Ok((checked, lines.lines[checked].clone()));
                }
                checked += 1;
            }
            if lines.closed {
                return Err(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(false);
            }
            lines = cond
                .wait_timeout(lines, deadline - now)
                .expect("capture lock")
                .0;
        }
    }

    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.0;
        let mut lines = lock.lock().expect("capture lock");
        while !lines.closed && Instant::now() < deadline {
            lines = cond
                .wait_timeout(lines, deadline.saturating_duration_since(Instant::now()))
                .expect("capture lock")
                .0;
        }
    }
}

/// A running child process; killed (and reaped) on drop.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Capture,
    stderr: Capture,
    description: String,
    workdir: tempfile::TempDir,
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir the process runs in (holding its config).
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    fn failure(&mut self, what: &str) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited: {status}"),
            Ok(None) => "still running".to_owned(),
            Err(e) => format!("status unknown: {e}"),
        };
        format!(
            "{what}\nprocess: {} ({status})\n--- stdout\n{}--- stderr\n{}",
            self.description,
            self.stdout(),
            self.stderr()
        )
    }

    /// Wait (up to [`WAIT`]) for a stdout line containing `needle`; returns the line. Panics with
    /// the output if the process ends first.
    pub fn wait_for_stdout(&mut self, needle: &str) -> String {
        self.wait_for_stdout_from(0, needle).1
    }

    /// As [`Running::wait_for_stdout`], considering only lines from index `from` on; returns the
    /// index of the matching line too, so a test can wait for the next occurrence.
    pub fn wait_for_stdout_from(&mut self, from: usize, needle: &str) -> (usize, String) {
        match self.stdout.wait_for(from, WAIT, &|l| l.contains(needle)) {
            Ok(found) => found,
            Err(ended) => {
                let why = if ended { "stdout ended" } else { "timed out" };
                let msg = self.failure(&format!("waiting for stdout line {needle:?}: {why}"));
                panic!("{msg}")
            }
        }
    }

    /// Wait (up to [`WAIT`]) for a stderr line containing `needle`; returns the line.
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        match self.stderr.wait_for(0, WAIT, &|l| l.contains(needle)) {
            Ok((_, line)) => line,
            Err(ended) => {
                let why = if ended { "stderr ended" } else { "timed out" };
                let msg = self.failure(&format!("waiting for stderr line {needle:?}: {why}"));
                panic!("{msg}")
            }
        }
    }

    /// Wait until 127.0.0.1:`port` accepts TCP (see [`crate::net::wait_for_listener`] about the
    /// probe connection). Panics with the output if the process exits first.
    pub fn wait_for_port(&mut self, port: u16) {
        self.wait_for_addr(crate::net::local(port));
    }

    /// As [`Running::wait_for_port`] for any address.
    pub fn wait_for_addr(&mut self, addr: SocketAddr) {
        let child = &mut self.child;
        let outcome = crate::net::wait_for_listener(addr, WAIT, || match child.try_wait() {
            Ok(Some(status)) => Err(format!("the process exited ({status})")),
            _ => Ok(()),
        });
        if let Err(e) = outcome {
            let msg = self.failure(&e);
            panic!("{msg}");
        }
    }

    /// Write to the process's stdin (panics if it was closed).
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(bytes)
            .expect("write to the process's stdin");
        stdin.flush().expect("flush the process's stdin");
    }

    /// Close stdin: the workload reads end-of-file.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to exit (up to `timeout`; then kill it and panic with its output).
    pub fn wait_exit(mut self, timeout: Duration) -> Finished {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait().expect("wait for the process") {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    let msg = self.failure(&format!("did not exit within {timeout:?}"));
                    panic!("{msg}");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        // The reader threads finish once the pipes close (a grandchild could hold them; bounded).
        self.stdout.wait_closed(Duration::from_secs(5));
        self.stderr.wait_closed(Duration::from_secs(5));
        Finished {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Ask the process to stop (SIGTERM-like: on Unix `kill -TERM`), then wait for it.
    pub fn terminate(self, timeout: Duration) -> Finished {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(timeout)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send SIGHUP to process `pid` (`kill -HUP`): servers re-read their TLS files on it.
pub fn sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid} failed");
}
