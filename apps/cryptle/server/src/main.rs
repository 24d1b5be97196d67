//! Cryptle inside a Keep: find the pre-opened `listen` socket, wrap it for tokio on a
//! current-thread runtime, and serve the game.
//!
//! The socket is found as Enarx workloads find theirs: the Keep sets `FD_COUNT` and `FD_NAMES`
//! (names joined with `:`, entry *i* is fd *i*). Cryptle takes the entry named by
//! `CRYPTLE_LISTEN_NAME` (default `listen`), else the first descriptor after stdio (fd 3).

use std::net::TcpListener as StdListener;

use cryptle::{OsEntropy, Server, settings_from};
use cryptle_game::App;

fn main() {
    if let Err(message) = run() {
        eprintln!("cryptle: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let lookup = |name: &str| std::env::var(name).ok();
    let (limits, app_config) = settings_from(&lookup).map_err(|e| e.to_string())?;
    let fd = listen_fd(&lookup)?;
    let listener = std_listener(fd);
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("fd {fd} is not a listening socket: {e}"))?;
    let app = App::new(app_config, secret_seed()?, Box::new(OsEntropy));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("cannot register fd {fd}: {e}"))?;
        eprintln!("cryptle: serving on fd {fd}");
        Server::new(app, limits).serve(listener).await;
        Ok(())
    })
}

fn listen_fd(lookup: &dyn Fn(&str) -> Option<String>) -> Result<u32, String> {
    let wanted = lookup("CRYPTLE_LISTEN_NAME").unwrap_or_else(|| "listen".to_owned());
    let names = lookup("FD_NAMES").unwrap_or_default();
    if let Some(i) = names.split(':').position(|n| n == wanted) {
        return Ok(i as u32);
    }
    let count: u32 = lookup("FD_COUNT").and_then(|c| c.parse().ok()).unwrap_or(0);
    if count > 3 {
        Ok(3)
    } else {
        Err(format!(
            "no socket to listen on: FD_NAMES has no {wanted:?} and FD_COUNT is {count}; \
             list a `listen` entry after stdin, stdout and stderr in the config"
        ))
    }
}

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
fn std_listener(fd: u32) -> StdListener {
    use std::os::wasi::io::FromRawFd;
    // SAFETY: the Keep pre-opens this descriptor for the workload and nothing else in this
    // program owns or closes it; it lives as long as the listener.
    unsafe { StdListener::from_raw_fd(fd as i32) }
}

#[cfg(not(target_os = "wasi"))]
fn std_listener(fd: u32) -> StdListener {
    // Natively the server is driven by the benchmark or tests through the library instead.
    panic!("the cryptle binary runs only on wasm32-wasip1 (asked for fd {fd})")
}

#[cfg(feature = "test-seed")]
fn secret_seed() -> Result<u64, String> {
    // Test builds only: a test chooses the seed so it knows which secret to look for.
    match std::env::var("CRYPTLE_TEST_SEED") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("CRYPTLE_TEST_SEED: not a number: {v:?}")),
        Err(_) => Ok(cryptle::os_seed()),
    }
}

#[cfg(not(feature = "test-seed"))]
fn secret_seed() -> Result<u64, String> {
    Ok(cryptle::os_seed())
}
