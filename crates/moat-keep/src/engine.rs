//! The wasmtime engine of a Keep: async execution, epoch interruption for time limits, and a
//! compile cache so that the second run of a module does not recompile it.
//!
//! The cache is wasmtime's own: entries are keyed by a hash of the module bytes together with
//! the engine's compiler configuration and version, so a changed module or engine never gets a
//! stale artifact. It lives in `$XDG_CACHE_HOME/moat/wasmtime` (else `~/.cache/moat/wasmtime`)
//! unless told otherwise.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::Digest as _;
use wasmtime::{Cache, CacheConfig, Config, Engine, Module};

use crate::KeepError;
use crate::limits::EPOCH_TICK;

/// Where compiled modules are cached.
#[derive(Debug, Clone, Default)]
pub enum CacheSetting {
    /// `$XDG_CACHE_HOME/moat/wasmtime`, else `$HOME/.cache/moat/wasmtime`; no cache if neither
    /// variable is set.
    #[default]
    Default,
    Dir(PathBuf),
    Disabled,
}

impl CacheSetting {
    fn directory(&self) -> Option<PathBuf> {
        match self {
            CacheSetting::Disabled => None,
            CacheSetting::Dir(d) => Some(d.clone()),
            CacheSetting::Default => std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .filter(|v| !v.is_empty())
                        .map(|h| PathBuf::from(h).join(".cache"))
                })
                .map(|base| base.join("moat").join("wasmtime")),
        }
    }
}

/// A configured engine plus the thread that advances its epoch.
pub struct KeepEngine {
    engine: Engine,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for KeepEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepEngine").finish_non_exhaustive()
    }
}

impl Drop for KeepEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl KeepEngine {
    pub fn new(cache: &CacheSetting) -> Result<Self, KeepError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Fill function tables at instantiation instead of on first use: every `call_indirect`
        // then skips the lazy-initialisation check. Rust guests make many indirect calls (trait
        // objects, and wakers in async runtimes); the price is microseconds at start-up.
        config.table_lazy_init(false);
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        if let Some(dir) = cache.directory() {
            let mut cache_config = CacheConfig::new();
            cache_config.with_directory(&dir);
            match Cache::new(cache_config) {
                Ok(c) => {
                    config.cache(Some(c));
                }
                // A broken cache directory costs start-up time, never the run.
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "compile cache disabled")
                }
            }
        }
        let engine = Engine::new(&config).map_err(|e| KeepError::Engine(format!("{e:#}")))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("moat-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| KeepError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(KeepEngine {
            engine,
            ticker_stop,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile (or load from the cache) a module.
    pub fn compile(&self, bytes: &[u8]) -> Result<Module, KeepError> {
        let started = std::time::Instant::now();
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| KeepError::InvalidModule(format!("{e:#}")))?;
        tracing::debug!(
            digest = %module_digest(bytes),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "module ready"
        );
        Ok(module)
    }
}

/// `sha256:<hex>` of the module bytes, as logged and as content addresses elsewhere in Moat.
pub fn module_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
