//! `moat-config` owns `Moat.toml`: what a workload is given (arguments, environment, file
//! descriptors, sockets, directories) and the limits it runs under.
//!
//! `Moat.toml` is a strict superset of Enarx's `Enarx.toml` (enarx-config 0.7.1): every Enarx
//! config parses and means the same thing. Moat adds `[[dirs]]` (pre-opened directories),
//! `[limits]`, per-socket TLS options, and lets `prot` be omitted (it defaults to `"tls"`).
//! Unknown keys are errors, never warnings: a config grants capabilities, and a misspelt key
//! must not silently grant or withhold one. The full reference is `docs/config.md`.
//!
//! ```
//! let config = moat_config::Config::from_toml_str(r#"
//!     [[files]]
//!     kind = "stdin"
//!     [[files]]
//!     kind = "stdout"
//!     [[files]]
//!     kind = "stderr"
//!     [[files]]
//!     kind = "listen"
//!     name = "web"
//!     port = 8443
//! "#, std::path::Path::new(".")).unwrap();
//! assert_eq!(config.fd_names(), "stdin:stdout:stderr:web");
//! assert_eq!(config.guest_args(), vec!["main.wasm"]);
//! ```
//!
//! Errors ([`ConfigError`]) name the file, line and column and say what is allowed; command-line
//! flags are applied on top of a file with [`Config::apply`] and [`Overrides`]; with the `clap`
//! feature, `OverrideArgs` declares those flags for a command to flatten in.

mod error;
mod model;
mod overrides;
mod parse;
mod template;
pub mod units;

use std::collections::{HashMap, HashSet};

use std::io::Read;
use std::path::Path;

pub use error::{ConfigError, Origin};
pub use model::*;
#[cfg(feature = "clap")]
pub use overrides::OverrideArgs;
pub use overrides::Overrides;
pub use template::template;

/// A config file larger than this is refused before parsing (1 MiB: real configs are a few
/// hundred bytes, and the parser must not be handed unbounded input).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// `argv[0]` of every workload, as in Enarx.
pub const GUEST_ARGV0: &str = "main.wasm";

impl Config {
    /// Read, parse and validate a config file. Relative paths in it resolve against the file's
    /// directory. Works for `Moat.toml` and `Enarx.toml` alike.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            let size = std::fs::metadata(path)
                .map(|m| m.len())
                .unwrap_or(bytes.len() as u64);
            return Err(ConfigError::TooLarge {
                path: Some(path.to_path_buf()),
                size,
                max: MAX_CONFIG_BYTES,
            });
        }
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
        Self::from_bytes(&bytes, Some(path), &base_dir)
    }

    /// Parse and validate a config held in memory. Relative paths resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
        Self::from_bytes(text.as_bytes(), None, &base_dir)
    }

    fn from_bytes(
        bytes: &[u8],
        file: Option<&Path>,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: file.map(Path::to_path_buf),
                size: bytes.len() as u64,
                max: MAX_CONFIG_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|err| {
            let valid = std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default();
            let src = parse::Source::new(valid, file, base_dir);
            ConfigError::Syntax {
                at: src.origin(&(valid.len()..valid.len())),
                message: "the file is not UTF-8 text".into(),
            }
        })?;
        let src = parse::Source::new(text, file, base_dir);
        let config = parse::parse(&src)?;
        config.validate()?;
        Ok(config)
    }

    /// Check the rules that span entries; [`Config::load`] and [`Config::apply`] call this.
    ///
    /// - socket names are unique: no two `listen`/`connect` entries share a name, and no other
    ///   entry has a socket's name (several `null` or stdio entries may share theirs, as in Enarx);
    /// - no two listeners bind the same address and port (port 0 excepted);
    /// - guest paths of pre-opened directories are unique, and their host directories exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let is_socket =
            |e: &FileEntry| matches!(e.kind, FileKind::Listen(_) | FileKind::Connect(_));
        let mut first_by_name: HashMap<&str, &FileEntry> = HashMap::new();
        for entry in &self.files {
            match first_by_name.get(entry.name.as_str()) {
                None => {
                    first_by_name.insert(&entry.name, entry);
                }
                Some(first) if is_socket(first) || is_socket(entry) => {
                    // Blame the entry a command-line flag wrote, else the later one.
                    return Err(match (&first.origin, &entry.origin) {
                        (Origin::Flag(_), origin) if !matches!(origin, Origin::Flag(_)) => {
                            clash(first, entry)
                        }
                        _ => clash(entry, first),
                    });
                }
                // Several stdio or null entries may share a name, as in Enarx.
                Some(_) => {}
            }
        }
        let mut binds = HashMap::new();
        for entry in &self.files {
            if let FileKind::Listen(listen) = &entry.kind
                && listen.port != 0
                && let Some(first) = binds.insert((listen.addr, listen.port), entry)
            {
                return Err(ConfigError::invalid(
                    entry.origin.clone(),
                    format!(
                        "listen `{}` binds {} port {}, which listen `{}` (at {}) already binds",
                        entry.name, listen.addr, listen.port, first.name, first.origin
                    ),
                ));
            }
        }
        let mut guests = HashSet::new();
        for dir in &self.dirs {
            if !guests.insert(dir.guest.as_str()) {
                return Err(ConfigError::invalid(
                    dir.origin.clone(),
                    format!(
                        "guest path `{}` is pre-opened twice; each directory needs its own guest path",
                        dir.guest
                    ),
                ));
            }
            if !dir.host.is_dir() {
                return Err(ConfigError::invalid(
                    dir.origin.clone(),
                    format!("no such host directory {}", dir.host.display()),
                ));
            }
        }
        Ok(())
    }

    /// `FD_COUNT`: the number of `files` entries (pre-opened directories come after them and are
    /// not counted, as Enarx had none).
    pub fn fd_count(&self) -> usize {
        self.files.len()
    }

    /// `FD_NAMES`: the entries' names joined with `:`.
    pub fn fd_names(&self) -> String {
        self.files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The guest fd of pre-opened directory `index` (`dirs[index]`): right after the files.
    pub fn dir_fd(&self, index: usize) -> u32 {
        (self.files.len() + index) as u32
    }

    /// The workload's argv: `main.wasm`, then `args`.
    pub fn guest_args(&self) -> Vec<String> {
        std::iter::once(GUEST_ARGV0.to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The workload's environment: `env`, then `FD_COUNT` and `FD_NAMES`.
    pub fn guest_env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain([
                ("FD_COUNT".to_string(), self.fd_count().to_string()),
                ("FD_NAMES".to_string(), self.fd_names()),
            ])
            .collect()
    }
}

fn clash(entry: &FileEntry, first: &FileEntry) -> ConfigError {
    ConfigError::invalid(
        entry.origin.clone(),
        format!(
            "name `{}` of this {} entry is already used by the {} entry at {}; socket names must be unique",
            entry.name,
            entry.kind.as_str(),
            first.kind.as_str(),
            first.origin
        ),
    )
}
