//! The commented `Moat.toml` that `moat config init` writes. It is itself a valid config (stdio
//! only) and documents every key by example; a test parses it and each commented example.

/// A commented `Moat.toml` template: stdin, stdout and stderr active, everything else as
/// commented-out examples.
pub fn template() -> &'static str {
    TEMPLATE
}

const TEMPLATE: &str = r#"## Moat.toml: what a WebAssembly workload is given when it runs in a Keep.
## A superset of Enarx.toml: every Enarx.toml works here unchanged. Unknown keys are errors.
## Relative paths resolve against the directory of this file. Reference: docs/config.md

## Arguments after argv[0] (which is always "main.wasm").
# args = ["--verbose", "--port=fd3"]

## Steward to attest to; without one the Keep presents a fresh self-signed certificate.
# steward = "https://steward.example.com"

## Instances of the workload serving the same listeners, each on a thread (and core) of its own:
## a wasm32-wasip1 workload is one thread. Each connection goes to one instance, and instances
## share no memory, so keep 1 for a workload with state across connections (a game, a chat).
# instances = 1

## Environment variables. The workload sees only these, plus FD_COUNT and FD_NAMES.
# [env]
# GREETING = "hello"

## Pre-opened file descriptors: entry i is fd i, so list stdio first to keep it at 0, 1, 2.
## FD_NAMES lists their names joined by ":"; names may not contain ":".
[[files]]
kind = "stdin"

[[files]]
kind = "stdout"

[[files]]
kind = "stderr"

## A listening socket (fd 3 here). prot is "tls" (default: the host does TLS, the workload sees
## plaintext) or "tcp". addr defaults to "::", port to 443 for tls and 80 for tcp.
# [[files]]
# kind = "listen"
# name = "web"
# prot = "tls"
# addr = "::"
# port = 8443
## mTLS: require client certificates from this CA ("optional": verify only when presented).
# client_ca = "clients-ca.pem"
# client_auth = "required"

## An outgoing connection the host makes at start-up. name defaults to host.
# [[files]]
# kind = "connect"
# name = "api"
# prot = "tls"
# host = "api.example.com"
# port = 443
## TLS options: trust an extra CA, or only it (platform_roots = false); SNI name; client cert.
# ca = "api-ca.pem"
# platform_roots = true
# server_name = "api.example.com"
# present_identity = false

## Other kinds: "null" (reads give EOF, writes vanish), "stdin", "stdout", "stderr".

## Pre-opened directories; they take the fds after [[files]].
# [[dirs]]
# host = "data"
# guest = "/data"
# read_only = true

## Limits (defaults shown). Sizes: B, KiB, MiB, GiB. Durations: ms, s, m, h.
# [limits]
# max_memory = "512MiB"
# wall_time = "1h"                    # default: none
# cpu_time = "10m"                    # default: none
# max_connections_per_listener = 1024
# handshake_timeout = "10s"
"#;
