//! Running one module: instantiate with Moat's WASI imports, call `_start` under the limits,
//! and turn the result into an exit code or a typed error.

use std::num::NonZeroUsize;
use std::time::Duration;

use moat_wasi::{BoundListener, MoatWasi, WasiSpec};
use wasmtime::{Engine, Linker, Module, Store, UpdateDeadline};

use crate::KeepError;
use crate::engine::{CacheSetting, KeepEngine};
use crate::limits::{EPOCH_TICK, LimitExceeded, Limiter, Limits};

/// How long the host keeps sending what the workload wrote before exiting.
const EXIT_FLUSH: Duration = Duration::from_secs(2);

/// Called once with the bound listeners, before the workload starts.
pub type OnListening = Box<dyn FnOnce(&[BoundListener]) + Send>;

/// Everything a run needs besides the module bytes.
pub struct RunSpec {
    /// argv (with `argv[0]`), environment, the fd layout (sockets carry their TLS
    /// configurations, built from the Keep's identity by the caller) and pre-opened dirs.
    pub wasi: WasiSpec,
    pub limits: Limits,
    pub cache: CacheSetting,
    /// Called once the listeners are bound, before the workload starts (e.g. to print the
    /// ports the OS chose for `port = 0`).
    pub on_listening: Option<OnListening>,
    /// Copies of the workload that serve the same listeners, each on its own thread (see
    /// `instances.rs`). One for any workload that keeps state between connections.
    pub instances: NonZeroUsize,
}

impl std::fmt::Debug for RunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSpec")
            .field("wasi", &self.wasi)
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

/// How the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// `proc_exit`'s code, or 0 when `_start` returned.
    pub exit_code: i32,
}

pub(crate) struct KeepData {
    wasi: MoatWasi,
    limiter: Limiter,
}

/// [`run`] on a fresh current-thread tokio runtime: the workload and its connections' traffic
/// share this thread, TLS handshakes get their own threads (`moat_wasi::net::HandshakePool`).
/// With more than one instance, each gets a thread and a runtime of its own (`instances.rs`).
pub fn run_blocking(module: &[u8], spec: RunSpec) -> Result<RunOutcome, KeepError> {
    if spec.instances.get() > 1 {
        return crate::instances::run(module, spec);
    }
    // A wasm workload is one thread, and every hand-off between it and a socket task on another
    // thread costs a wake-up on both sides. With the socket work on the workload's own thread
    // (the workload sends what it writes itself, and the pumps run whenever it waits) keep-alive
    // requests/s went from ~0.58 to ~0.70 of native and server CPU per request from ~25 to ~20 us
    // (docs/BENCHMARKS.md).
    let runtime = instance_runtime()?;
    let outcome = runtime.block_on(run(module, spec));
    // A stdin reader may sit in a blocking read: do not wait for it.
    runtime.shutdown_background();
    outcome
}

/// The runtime one instance and its connections run on.
pub(crate) fn instance_runtime() -> Result<tokio::runtime::Runtime, KeepError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("moat-keep")
        .build()
        .map_err(KeepError::Runtime)
}

/// Compile (or load from cache), set up WASI, run `_start`, as one instance whatever
/// `spec.instances` says. Must be called inside a tokio runtime.
pub async fn run(module_bytes: &[u8], spec: RunSpec) -> Result<RunOutcome, KeepError> {
    let prepared = Prepared::new(module_bytes, &spec.cache)?;
    let wasi = MoatWasi::new(spec.wasi)?;
    let served = prepared.serve(
        wasi,
        &spec.limits,
        spec.on_listening,
        std::future::pending(),
    );
    match served.await {
        Served::Ended(outcome) => outcome,
        Served::Stopped => unreachable!("a pending future never stops the run"),
    }
}

/// What every instance of a run shares: the engine (with its epoch thread), the compiled module
/// and the linker.
pub(crate) struct Prepared {
    // Keeps the epoch thread running.
    _keep_engine: KeepEngine,
    engine: Engine,
    module: Module,
    linker: Linker<KeepData>,
}

/// How [`Prepared::serve`] came back.
pub(crate) enum Served {
    /// The workload ended (exit, trap or limit).
    Ended(Result<RunOutcome, KeepError>),
    /// `stop` resolved first.
    Stopped,
}

impl Prepared {
    pub(crate) fn new(module_bytes: &[u8], cache: &CacheSetting) -> Result<Self, KeepError> {
        let keep_engine = KeepEngine::new(cache)?;
        let engine = keep_engine.engine().clone();
        let module = keep_engine.compile(module_bytes)?;
        let mut linker: Linker<KeepData> = Linker::new(&engine);
        moat_wasi::add_to_linker(&mut linker, |d: &mut KeepData| &mut d.wasi)
            .map_err(|e| KeepError::Engine(format!("{e:#}")))?;
        Ok(Prepared {
            _keep_engine: keep_engine,
            engine,
            module,
            linker,
        })
    }

    /// Instantiate the module over `wasi` and run `_start` under `limits` until it ends or
    /// `stop` resolves; then close its connections (flushing what it wrote). `announce` is
    /// called with the listeners once the module's imports check out.
    pub(crate) async fn serve(
        &self,
        wasi: MoatWasi,
        limits: &Limits,
        announce: Option<OnListening>,
        stop: impl Future<Output = ()>,
    ) -> Served {
        let mut store = Store::new(
            &self.engine,
            KeepData {
                wasi,
                limiter: Limiter::new(limits),
            },
        );
        store.limiter(|d| &mut d.limiter);
        let served = tokio::select! {
            outcome = self.start(&mut store, limits, announce) => Served::Ended(outcome),
            () = stop => Served::Stopped,
        };
        store.data_mut().wasi.close_all(EXIT_FLUSH).await;
        served
    }

    async fn start(
        &self,
        store: &mut Store<KeepData>,
        limits: &Limits,
        announce: Option<OnListening>,
    ) -> Result<RunOutcome, KeepError> {
        for import in self.module.imports() {
            if self.linker.get_by_import(&mut *store, &import).is_none() {
                return Err(KeepError::MissingImport {
                    module: import.module().to_string(),
                    name: import.name().to_string(),
                });
            }
        }

        if let Some(announce) = announce {
            announce(store.data().wasi.listeners());
        }

        // Every epoch tick spent inside wasm counts against the CPU budget; at each tick the
        // workload also yields to the executor so host tasks keep running.
        let cpu_limit = limits.max_cpu_time;
        let cpu_ticks_allowed =
            cpu_limit.map(|d| (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
        let mut ticks_used = 0u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks_used += 1;
            if let (Some(allowed), Some(limit)) = (cpu_ticks_allowed, cpu_limit)
                && ticks_used > allowed
            {
                return Err(LimitExceeded::CpuTime { limit }.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let instance = self
            .linker
            .instantiate_async(&mut *store, &self.module)
            .await
            .map_err(|e| match e.downcast_ref::<LimitExceeded>() {
                Some(limit) => KeepError::Limit(limit.clone()),
                None => KeepError::InvalidModule(format!("{e:#}")),
            })?;
        let start = instance
            .get_typed_func::<(), ()>(&mut *store, "_start")
            .map_err(|_| KeepError::NoStart)?;

        let call = start.call_async(&mut *store, ());
        let result = match limits.max_wall_time {
            Some(limit) => match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => return Err(LimitExceeded::WallTime { limit }.into()),
            },
            None => call.await,
        };
        classify(result)
    }
}

fn classify(result: wasmtime::Result<()>) -> Result<RunOutcome, KeepError> {
    let err = match result {
        Ok(()) => return Ok(RunOutcome { exit_code: 0 }),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Ok(RunOutcome { exit_code: exit.0 });
    }
    if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
        return Err(KeepError::Limit(limit.clone()));
    }
    let backtrace = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| b.to_string())
        .filter(|b| !b.trim().is_empty());
    let message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{}", err.root_cause()),
    };
    Err(KeepError::Trap { message, backtrace })
}
