//! From TOML text to [`Config`]. The text is parsed into toml's spanned document tree and walked
//! by hand (not through serde) so that every error points at the exact key or value, names the
//! table it sits in, and lists what is allowed there.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Origin};
use crate::model::*;
use crate::units;

const TOP_KEYS: &[&str] = &[
    "steward",
    "args",
    "env",
    "files",
    "dirs",
    "limits",
    "instances",
];
const STDIO_KEYS: &[&str] = &["kind", "name"];
const LISTEN_KEYS: &[&str] = &[
    "kind",
    "name",
    "prot",
    "addr",
    "port",
    "client_ca",
    "client_auth",
];
const CONNECT_KEYS: &[&str] = &[
    "kind",
    "name",
    "prot",
    "host",
    "port",
    "ca",
    "platform_roots",
    "server_name",
    "present_identity",
];
const DIR_KEYS: &[&str] = &["host", "guest", "read_only"];
const LIMIT_KEYS: &[&str] = &[
    "max_memory",
    "wall_time",
    "cpu_time",
    "max_connections_per_listener",
    "handshake_timeout",
];
const KINDS: &str = "null, stdin, stdout, stderr, listen, connect";

/// The source being parsed: its text (for line/column), its file name and the directory that
/// relative paths resolve against.
pub(crate) struct Source<'s> {
    text: &'s str,
    file: Option<&'s Path>,
    base_dir: &'s Path,
    /// Byte offset where each line starts, so that positions are found by binary search (a
    /// config with thousands of entries must not cost a scan from the top per entry).
    line_starts: Vec<usize>,
}

impl<'s> Source<'s> {
    pub fn new(text: &'s str, file: Option<&'s Path>, base_dir: &'s Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            text,
            file,
            base_dir,
            line_starts,
        }
    }

    pub fn origin(&self, span: &Range<usize>) -> Origin {
        let offset = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        Origin::Source {
            file: self.file.map(Path::to_path_buf),
            line: line_index + 1,
            column,
        }
    }

    fn invalid(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.origin(span), message)
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One table of the document with the words that name it in messages ("the top level",
/// "[[files]] entry 3 (fd 2)").
struct Table<'a, 'i> {
    src: &'a Source<'a>,
    table: &'a DeTable<'i>,
    span: Range<usize>,
    what: String,
}

type Value<'a, 'i> = &'a Spanned<DeValue<'i>>;

impl<'a, 'i> Table<'a, 'i> {
    fn check_keys(&self, allowed: &[&str], why: &str) -> Result<(), ConfigError> {
        for key in self.table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                return Err(self.src.invalid(
                    &key.span(),
                    format!(
                        "unknown key `{}` in {}{why}; expected one of {}",
                        key.get_ref(),
                        self.what,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<Value<'a, 'i>> {
        self.table.get(key)
    }

    fn wrong_type(&self, key: &str, value: Value<'_, '_>, expected: &str) -> ConfigError {
        self.src.invalid(
            &value.span(),
            format!(
                "`{key}` in {} must be {expected}, not {}",
                self.what,
                describe(value.get_ref())
            ),
        )
    }

    fn missing(&self, key: &str, why: &str) -> ConfigError {
        self.src.invalid(
            &self.span,
            format!("missing key `{key}` in {}: {why}", self.what),
        )
    }

    fn string(&self, key: &str) -> Result<Option<(&'a str, Range<usize>)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                DeValue::String(s) => Ok(Some((s.as_ref(), value.span()))),
                _ => Err(self.wrong_type(key, value, "a string")),
            },
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                DeValue::Boolean(b) => Ok(Some(*b)),
                _ => Err(self.wrong_type(key, value, "true or false")),
            },
        }
    }

    fn integer(&self, key: &str) -> Result<Option<(i128, Range<usize>)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                DeValue::Integer(int) => {
                    let n = i128::from_str_radix(int.as_str(), int.radix()).map_err(|_| {
                        self.src.invalid(
                            &value.span(),
                            format!("`{key}` in {} is out of range", self.what),
                        )
                    })?;
                    Ok(Some((n, value.span())))
                }
                _ => Err(self.wrong_type(key, value, "an integer")),
            },
        }
    }

    /// A file name: a string without `:` (which separates names in `FD_NAMES`), not empty.
    fn name(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some((name, span)) = self.string(key)? else {
            return Ok(None);
        };
        check_name(name)
            .map_err(|why| self.src.invalid(&span, format!("{why} in {}", self.what)))?;
        Ok(Some(name.to_string()))
    }

    fn path(&self, key: &str) -> Result<Option<(PathBuf, Range<usize>)>, ConfigError> {
        let Some((text, span)) = self.string(key)? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Err(self
                .src
                .invalid(&span, format!("`{key}` in {} is empty", self.what)));
        }
        Ok(Some((self.src.resolve(text), span)))
    }

    fn existing_file(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let Some((path, span)) = self.path(key)? else {
            return Ok(None);
        };
        if !path.is_file() {
            return Err(self.src.invalid(
                &span,
                format!("`{key}` in {}: no such file {}", self.what, path.display()),
            ));
        }
        Ok(Some(path))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match value.get_ref() {
            DeValue::String(s) => units::parse_size(s),
            DeValue::Integer(_) => {
                let (n, _) = self.integer(key)?.expect("present");
                u64::try_from(n).map_err(|_| format!("`{n}` is negative"))
            }
            _ => {
                return Err(self.wrong_type(
                    key,
                    value,
                    "a size such as \"512MiB\" or a number of bytes",
                ));
            }
        };
        parsed.map(Some).map_err(|why| {
            self.src
                .invalid(&value.span(), format!("`{key}` in {}: {why}", self.what))
        })
    }

    fn duration(&self, key: &str) -> Result<Option<std::time::Duration>, ConfigError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match value.get_ref() {
            DeValue::String(s) => units::parse_duration(s),
            DeValue::Integer(_) => {
                let (n, _) = self.integer(key)?.expect("present");
                u64::try_from(n)
                    .map(std::time::Duration::from_secs)
                    .map_err(|_| format!("`{n}` is negative"))
            }
            _ => {
                return Err(self.wrong_type(
                    key,
                    value,
                    "a duration such as \"30s\" or a number of seconds",
                ));
            }
        };
        let duration = parsed.map_err(|why| {
            self.src
                .invalid(&value.span(), format!("`{key}` in {}: {why}", self.what))
        })?;
        if duration.is_zero() {
            return Err(self.src.invalid(
                &value.span(),
                format!("`{key}` in {} must be longer than zero", self.what),
            ));
        }
        Ok(Some(duration))
    }
}

/// Check a file descriptor name; the error says what is wrong.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("`name` is empty; a name needs at least one character".into())
    } else if name.contains(':') {
        Err(format!(
            "`name` \"{name}\" contains `:`, which separates names in FD_NAMES"
        ))
    } else if name.contains('\0') {
        Err("`name` contains a NUL character".into())
    } else {
        Ok(())
    }
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the float {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// Parse and check a whole config. Rules between entries (name clashes, duplicate guest
/// directories) are checked by [`Config::validate`] afterwards.
pub(crate) fn parse(src: &Source<'_>) -> Result<Config, ConfigError> {
    let doc = DeTable::parse(src.text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        ConfigError::Syntax {
            at: src.origin(&span),
            message: err.message().trim().to_string(),
        }
    })?;
    let top = Table {
        src,
        table: doc.get_ref(),
        span: doc.span(),
        what: "the top level".into(),
    };
    top.check_keys(TOP_KEYS, "")?;

    let mut config = Config {
        steward: None,
        args: Vec::new(),
        env: BTreeMap::new(),
        // An Enarx.toml without `files` gives the workload no fds at all: keep that meaning.
        files: Vec::new(),
        dirs: Vec::new(),
        limits: Limits::default(),
        instances: 1,
        source: src.file.map(Path::to_path_buf),
    };

    if let Some((url, span)) = top.string("steward")? {
        check_steward_url(url).map_err(|why| src.invalid(&span, why))?;
        config.steward = Some(url.to_string());
    }

    if let Some((n, span)) = top.integer("instances")? {
        config.instances = check_instances(n).map_err(|why| src.invalid(&span, why))?;
    }

    if let Some(value) = top.get("args") {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(top.wrong_type("args", value, "an array of strings"));
        };
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => config.args.push(s.to_string()),
                other => {
                    return Err(src.invalid(
                        &item.span(),
                        format!(
                            "`args` must be an array of strings, but item {} is {}",
                            i + 1,
                            describe(other)
                        ),
                    ));
                }
            }
        }
    }

    if let Some(value) = top.get("env") {
        let DeValue::Table(env) = value.get_ref() else {
            return Err(top.wrong_type(
                "env",
                value,
                "a table of strings, e.g. [env] KEY = \"value\"",
            ));
        };
        for (key, item) in env.iter() {
            check_env_key(key.get_ref()).map_err(|why| src.invalid(&key.span(), why))?;
            match item.get_ref() {
                DeValue::String(s) => {
                    if s.contains('\0') {
                        return Err(src.invalid(
                            &item.span(),
                            format!("[env] `{}` contains a NUL character", key.get_ref()),
                        ));
                    }
                    config.env.insert(key.get_ref().to_string(), s.to_string());
                }
                other => {
                    return Err(src.invalid(
                        &item.span(),
                        format!(
                            "[env] `{}` must be a string, not {}; quote it",
                            key.get_ref(),
                            describe(other)
                        ),
                    ));
                }
            }
        }
    }

    for (index, entry) in array_of_tables(&top, "files")?.into_iter().enumerate() {
        config.files.push(parse_file(src, entry, index)?);
    }
    for (index, entry) in array_of_tables(&top, "dirs")?.into_iter().enumerate() {
        config.dirs.push(parse_dir(src, entry, index)?);
    }

    if let Some(value) = top.get("limits") {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(top.wrong_type("limits", value, "a table ([limits])"));
        };
        let limits = Table {
            src,
            table,
            span: value.span(),
            what: "[limits]".into(),
        };
        parse_limits(&limits, &mut config.limits)?;
    }

    Ok(config)
}

fn array_of_tables<'a, 'i>(
    top: &Table<'a, 'i>,
    key: &str,
) -> Result<Vec<(&'a DeTable<'i>, Range<usize>)>, ConfigError> {
    let Some(value) = top.get(key) else {
        return Ok(Vec::new());
    };
    let DeValue::Array(items) = value.get_ref() else {
        return Err(top.wrong_type(key, value, &format!("an array of tables ([[{key}]])")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.get_ref() {
            DeValue::Table(table) => Ok((table, item.span())),
            other => Err(top.src.invalid(
                &item.span(),
                format!(
                    "`{key}` must be an array of tables ([[{key}]]), but item {} is {}",
                    i + 1,
                    describe(other)
                ),
            )),
        })
        .collect()
}

fn parse_file(
    src: &Source<'_>,
    (table, span): (&DeTable<'_>, Range<usize>),
    index: usize,
) -> Result<FileEntry, ConfigError> {
    let entry = Table {
        src,
        table,
        span: span.clone(),
        what: format!("[[files]] entry {} (fd {index})", index + 1),
    };
    let Some((kind, kind_span)) = entry.string("kind")? else {
        return Err(entry.missing("kind", &format!("every entry needs one of {KINDS}")));
    };
    let origin = src.origin(&span);
    let stdio = |kind: FileKind| -> Result<FileEntry, ConfigError> {
        entry.check_keys(STDIO_KEYS, &format!(" (kind = \"{}\")", kind.as_str()))?;
        let name = entry
            .name("name")?
            .unwrap_or_else(|| kind.as_str().to_string());
        Ok(FileEntry {
            name,
            kind,
            origin: origin.clone(),
        })
    };
    match kind {
        "null" => stdio(FileKind::Null),
        "stdin" => stdio(FileKind::Stdin),
        "stdout" => stdio(FileKind::Stdout),
        "stderr" => stdio(FileKind::Stderr),
        "listen" => {
            entry.check_keys(LISTEN_KEYS, " (kind = \"listen\")")?;
            let Some(name) = entry.name("name")? else {
                return Err(entry.missing(
                    "name",
                    "a listen entry needs a name (the workload finds its fd by it in FD_NAMES)",
                ));
            };
            let prot = protocol(&entry)?;
            let addr = match entry.string("addr")? {
                None => DEFAULT_LISTEN_ADDR,
                Some((text, span)) => parse_listen_addr(text)
                    .map_err(|why| src.invalid(&span, format!("{why} in {}", entry.what)))?,
            };
            let port = match entry.integer("port")? {
                None => prot.default_port(),
                Some((n, span)) => u16::try_from(n).map_err(|_| {
                    src.invalid(
                        &span,
                        format!(
                            "`port` {n} in {} is not a port; use 0 to 65535 (0: any free port)",
                            entry.what
                        ),
                    )
                })?,
            };
            let client_ca = entry.existing_file("client_ca")?;
            let client_auth = match entry.string("client_auth")? {
                None => ClientAuthMode::Required,
                Some(("required", _)) => ClientAuthMode::Required,
                Some(("optional", _)) => ClientAuthMode::Optional,
                Some((other, span)) => {
                    return Err(src.invalid(
                        &span,
                        format!(
                            "`client_auth` \"{other}\" in {}; expected \"required\" or \"optional\"",
                            entry.what
                        ),
                    ));
                }
            };
            if entry.get("client_auth").is_some() && client_ca.is_none() {
                return Err(entry.missing(
                    "client_ca",
                    "`client_auth` needs `client_ca`, the CA file client certificates are checked against",
                ));
            }
            tls_only(&entry, prot, &["client_ca", "client_auth"])?;
            Ok(FileEntry {
                name,
                kind: FileKind::Listen(Listen {
                    prot,
                    addr,
                    port,
                    tls: ListenTls {
                        client_ca,
                        client_auth,
                    },
                }),
                origin,
            })
        }
        "connect" => {
            entry.check_keys(CONNECT_KEYS, " (kind = \"connect\")")?;
            let prot = protocol(&entry)?;
            let Some((host, host_span)) = entry.string("host")? else {
                return Err(entry.missing(
                    "host",
                    "a connect entry needs the host (DNS name or IP address) to connect to",
                ));
            };
            check_host(host)
                .map_err(|why| src.invalid(&host_span, format!("{why} in {}", entry.what)))?;
            let port = match entry.integer("port")? {
                None => prot.default_port(),
                Some((n, span)) => match u16::try_from(n) {
                    Ok(port) if port != 0 => port,
                    _ => {
                        return Err(src.invalid(
                            &span,
                            format!("`port` {n} in {} is not a port; use 1 to 65535", entry.what),
                        ));
                    }
                },
            };
            let name = match entry.name("name")? {
                Some(name) => name,
                None => {
                    check_name(host).map_err(|_| {
                        src.invalid(
                            &host_span,
                            format!(
                                "the host \"{host}\" cannot serve as the name of {} because it contains `:`; add a `name`",
                                entry.what
                            ),
                        )
                    })?;
                    host.to_string()
                }
            };
            let server_name = match entry.string("server_name")? {
                None => None,
                Some((text, span)) => {
                    check_host(text)
                        .map_err(|why| src.invalid(&span, format!("`server_name`: {why}")))?;
                    Some(text.to_string())
                }
            };
            let tls = ConnectTls {
                ca: entry.existing_file("ca")?,
                platform_roots: entry.bool("platform_roots")?.unwrap_or(true),
                server_name,
                present_identity: entry.bool("present_identity")?.unwrap_or(false),
            };
            if !tls.platform_roots && tls.ca.is_none() && prot == Protocol::Tls {
                return Err(entry.missing(
                    "ca",
                    "with `platform_roots = false` the connection trusts only `ca`, so it is needed",
                ));
            }
            tls_only(
                &entry,
                prot,
                &["ca", "platform_roots", "server_name", "present_identity"],
            )?;
            Ok(FileEntry {
                name,
                kind: FileKind::Connect(Connect {
                    prot,
                    host: host.to_string(),
                    port,
                    tls,
                }),
                origin,
            })
        }
        other => Err(src.invalid(
            &kind_span,
            format!(
                "unknown kind \"{other}\" in {}; expected one of {KINDS}",
                entry.what
            ),
        )),
    }
}

fn protocol(entry: &Table<'_, '_>) -> Result<Protocol, ConfigError> {
    match entry.string("prot")? {
        // Moat's addition: TLS unless the config says otherwise.
        None | Some(("tls", _)) => Ok(Protocol::Tls),
        Some(("tcp", _)) => Ok(Protocol::Tcp),
        Some((other, span)) => Err(entry.src.invalid(
            &span,
            format!(
                "`prot` \"{other}\" in {}; expected \"tls\" or \"tcp\"",
                entry.what
            ),
        )),
    }
}

fn tls_only(entry: &Table<'_, '_>, prot: Protocol, keys: &[&str]) -> Result<(), ConfigError> {
    if prot == Protocol::Tcp {
        for key in keys {
            if let Some(value) = entry.get(key) {
                return Err(entry.src.invalid(
                    &value.span(),
                    format!(
                        "`{key}` in {} applies only to prot = \"tls\", but this entry has prot = \"tcp\"",
                        entry.what
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A listen address: an IP address, or `localhost` (which Enarx resolved; Moat binds 127.0.0.1).
pub(crate) fn parse_listen_addr(text: &str) -> Result<IpAddr, String> {
    if text == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().map_err(|_| {
        format!("`addr` \"{text}\" is not an IP address; use e.g. \"::\" (all interfaces), \"0.0.0.0\" or \"127.0.0.1\"")
    })
}

/// A host to connect to: a DNS name or an IP address.
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    // A fully qualified name may end in one dot.
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid_dns = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid_dns {
        Ok(())
    } else {
        Err(format!(
            "\"{host}\" is neither an IP address nor a DNS name"
        ))
    }
}

fn check_env_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("[env] has an empty variable name".into())
    } else if key.contains('=') || key.contains('\0') {
        Err(format!(
            "[env] variable name `{key}` contains `=` or NUL, which cannot appear in a name"
        ))
    } else if key == "FD_COUNT" || key == "FD_NAMES" {
        Err(format!(
            "[env] sets `{key}`, which Moat sets from [[files]]; remove it"
        ))
    } else {
        Ok(())
    }
}

fn check_steward_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`steward` \"{url}\" is not an http(s) URL; expected e.g. \"https://steward.example.com\""
        )),
    }
}

fn parse_dir(
    src: &Source<'_>,
    (table, span): (&DeTable<'_>, Range<usize>),
    index: usize,
) -> Result<Dir, ConfigError> {
    let entry = Table {
        src,
        table,
        span: span.clone(),
        what: format!("[[dirs]] entry {}", index + 1),
    };
    entry.check_keys(DIR_KEYS, "")?;
    let Some((host_text, host_span)) = entry.string("host")? else {
        return Err(entry.missing("host", "the host directory to pre-open"));
    };
    if host_text.is_empty() {
        return Err(src.invalid(&host_span, format!("`host` in {} is empty", entry.what)));
    }
    let host = src.resolve(host_text);
    if !host.is_dir() {
        return Err(src.invalid(
            &host_span,
            format!(
                "`host` in {}: no such directory {}",
                entry.what,
                host.display()
            ),
        ));
    }
    let guest = match entry.string("guest")? {
        None => host_text.to_string(),
        Some((text, span)) => {
            check_guest_path(text)
                .map_err(|why| src.invalid(&span, format!("{why} in {}", entry.what)))?;
            text.to_string()
        }
    };
    Ok(Dir {
        host,
        guest,
        read_only: entry.bool("read_only")?.unwrap_or(false),
        origin: src.origin(&span),
    })
}

pub(crate) fn check_guest_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err("the guest path is empty".into())
    } else if path.contains('\0') {
        Err("the guest path contains a NUL character".into())
    } else {
        Ok(())
    }
}

fn parse_limits(table: &Table<'_, '_>, limits: &mut Limits) -> Result<(), ConfigError> {
    table.check_keys(LIMIT_KEYS, "")?;
    if let Some(bytes) = table.size("max_memory")? {
        check_max_memory(bytes).map_err(|why| {
            table
                .src
                .invalid(&table.get("max_memory").expect("present").span(), why)
        })?;
        limits.max_memory = bytes;
    }
    if let Some(d) = table.duration("wall_time")? {
        limits.wall_time = Some(d);
    }
    if let Some(d) = table.duration("cpu_time")? {
        limits.cpu_time = Some(d);
    }
    if let Some(d) = table.duration("handshake_timeout")? {
        limits.handshake_timeout = d;
    }
    if let Some((n, span)) = table.integer("max_connections_per_listener")? {
        limits.max_connections_per_listener = match u32::try_from(n) {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(table.src.invalid(
                    &span,
                    format!(
                        "`max_connections_per_listener` {n} in [limits]; use 1 to {}",
                        u32::MAX
                    ),
                ));
            }
        };
    }
    Ok(())
}

/// `instances` must name 1 to [`MAX_INSTANCES`] instances.
pub(crate) fn check_instances(n: i128) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_INSTANCES).contains(&n) => Ok(n),
        _ => Err(format!(
            "`instances` {n}; use 1 to {MAX_INSTANCES} (one per core is the most that helps)"
        )),
    }
}

/// One wasm page (64 KiB) is the least a module with memory can have.
pub(crate) fn check_max_memory(bytes: u64) -> Result<(), String> {
    if bytes < 64 * 1024 {
        Err(format!(
            "`max_memory` {bytes} bytes is below one wasm page; use at least \"64KiB\""
        ))
    } else {
        Ok(())
    }
}
