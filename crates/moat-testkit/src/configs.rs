//! Pieces of `Moat.toml` / `Enarx.toml` text for tests, so each test's config reads as what it
//! means. Everything listens on 127.0.0.1 (tests never use other interfaces).

use std::path::Path;

/// The three stdio entries, at fds 0, 1, 2 as Enarx configs list them.
pub fn stdio() -> String {
    "[[files]]\nkind = \"stdin\"\n\n[[files]]\nkind = \"stdout\"\n\n[[files]]\nkind = \"stderr\"\n\n"
        .to_owned()
}

/// A `listen` entry on 127.0.0.1:`port`; `prot` is `"tls"` or `"tcp"`.
pub fn listen(name: &str, prot: &str, port: u16) -> String {
    format!(
        "[[files]]\nkind = \"listen\"\nname = \"{name}\"\nprot = \"{prot}\"\naddr = \"127.0.0.1\"\nport = {port}\n\n"
    )
}

/// A TLS `listen` entry that requires client certificates issued by the CA in `client_ca`.
pub fn listen_mtls(name: &str, port: u16, client_ca: &Path) -> String {
    format!(
        "[[files]]\nkind = \"listen\"\nname = \"{name}\"\nprot = \"tls\"\naddr = \"127.0.0.1\"\nport = {port}\nclient_ca = {}\n\n",
        toml_str(&client_ca.to_string_lossy())
    )
}

/// A `connect` entry; `extra` holds more `key = value` lines (e.g. a `ca` file).
pub fn connect(name: &str, prot: &str, host: &str, port: u16, extra: &str) -> String {
    format!(
        "[[files]]\nkind = \"connect\"\nname = \"{name}\"\nprot = \"{prot}\"\nhost = \"{host}\"\nport = {port}\n{extra}\n"
    )
}

/// A `[[dirs]]` entry pre-opening `host` as `guest`.
pub fn dir(host: &Path, guest: &str, read_only: bool) -> String {
    format!(
        "[[dirs]]\nhost = {}\nguest = \"{guest}\"\nread_only = {read_only}\n\n",
        toml_str(&host.to_string_lossy())
    )
}

/// A `[limits]` table with the given `key = value` lines.
pub fn limits(lines: &[&str]) -> String {
    format!("[limits]\n{}\n\n", lines.join("\n"))
}

/// `s` as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
