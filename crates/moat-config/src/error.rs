//! Config errors: one typed enum, each variant saying where the problem is (file, line, column or
//! the command-line flag) and what is allowed instead, so that `moat config check` and `moat run`
//! can print it as is.

use std::fmt;
use std::path::PathBuf;

/// Where a config value came from: a position in a config file (or string), or a command-line flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A position in a TOML source. `file` is `None` for configs loaded from a string.
    Source {
        /// The config file, as it was given.
        file: Option<PathBuf>,
        /// 1-based line.
        line: usize,
        /// 1-based column, counted in characters.
        column: usize,
    },
    /// A command-line override, e.g. `--listen web=tls://0.0.0.0:8443`.
    Flag(String),
    /// Built in: the default stdio entries used when there is no config at all.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Source { file, line, column } => {
                let file = file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "<config>".to_string());
                write!(f, "{file}:{line}:{column}")
            }
            Origin::Flag(flag) => write!(f, "`{flag}`"),
            Origin::Default => f.write_str("<default>"),
        }
    }
}

impl serde::Serialize for Origin {
    /// As its display form (`Moat.toml:12:1`, `` `--listen web=...` ``, `<default>`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Everything that can be wrong with a config, its files, or a command-line override.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config is larger than [`crate::MAX_CONFIG_BYTES`].
    #[error("config {} is {size} bytes; a config may be at most {max} bytes", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<config>".into()))]
    TooLarge {
        /// The file, if any.
        path: Option<PathBuf>,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The text is not valid TOML (or not UTF-8).
    #[error("{at}: invalid TOML: {message}")]
    Syntax {
        /// Where.
        at: Origin,
        /// What the TOML parser said.
        message: String,
    },
    /// Valid TOML that is not a valid config: unknown key, wrong type, bad value, or a rule
    /// between entries (name clash, duplicate directory) broken.
    #[error("{at}: {message}")]
    Invalid {
        /// Where (the offending key or value, or the flag).
        at: Origin,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    /// Where the error is, when it has a place.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Syntax { at, .. } | ConfigError::Invalid { at, .. } => Some(at),
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => None,
        }
    }

    pub(crate) fn invalid(at: Origin, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            at,
            message: message.into(),
        }
    }
}
