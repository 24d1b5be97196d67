//! The clap form of the override flags parses what docs/config.md documents.
#![cfg(feature = "clap")]

use clap::Parser;
use moat_config::{Config, OverrideArgs};

#[derive(Parser)]
struct Run {
    #[command(flatten)]
    overrides: OverrideArgs,
    #[arg(last = true)]
    rest: Vec<String>,
}

#[test]
fn flags_become_overrides() {
    let run = Run::try_parse_from([
        "run",
        "--env",
        "A=1",
        "--arg",
        "-v",
        "--listen",
        "web=tcp://127.0.0.1:0",
        "--connect",
        "db=tls://db.example:5432",
        "--max-memory",
        "64MiB",
        "--wall-time",
        "5s",
        "--max-connections",
        "4",
        "--",
        "tail",
    ])
    .unwrap();
    let mut config = Config::default();
    config.apply(&run.overrides.overrides(&run.rest)).unwrap();
    assert_eq!(config.guest_args(), ["main.wasm", "-v", "tail"]);
    assert_eq!(config.fd_names(), "stdin:stdout:stderr:web:db");
    assert_eq!(config.limits.max_memory, 64 << 20);
    assert_eq!(config.limits.max_connections_per_listener, 4);
}
