//! A Keep running several instances of one workload, for stateless servers that should use
//! more than one core.
//!
//! A `wasm32-wasip1` workload is one thread, so one instance uses at most one core however
//! many the Keep has. With `instances = N` the Keep compiles the module once and runs N
//! instances of it, each a store of its own on a thread (and current-thread runtime) of its
//! own, all serving the same listeners: the listeners are bound once, and each connection the
//! Keep accepts goes to one instance, in turn (`moat_wasi::net::Listener`). Nothing else is
//! shared: each instance has its own linear memory, limits (memory, CPU time, wall time) and
//! outgoing `connect` sockets, and only the first reads the host's stdin. So state does not
//! carry from one connection to the next unless the same instance serves both: a workload that
//! keeps state across connections (a game, a chat room) runs as one instance.
//!
//! The first instance to end ends the Keep: the others are stopped (their connections closed
//! after a flush), and the first one's outcome is the Keep's. A server that exits or traps in
//! one instance therefore does not go on half-served.

use std::sync::Arc;
use std::sync::mpsc;

use moat_wasi::{Home, MoatWasi, SharedSockets};
use tokio::sync::watch;

use crate::KeepError;
use crate::run::{Prepared, RunOutcome, RunSpec, Served, instance_runtime};

/// Run `spec.instances` instances of `module` and return the first one's outcome.
pub(crate) fn run(module: &[u8], spec: RunSpec) -> Result<RunOutcome, KeepError> {
    let count = spec.instances.get();
    let prepared = Arc::new(Prepared::new(module, &spec.cache)?);
    let runtimes = (0..count)
        .map(|_| instance_runtime())
        .collect::<Result<Vec<_>, _>>()?;
    let homes: Vec<Home> = runtimes
        .iter()
        .map(|runtime| Home {
            runtime: runtime.handle().clone(),
            guest: Arc::new(tokio::sync::Notify::new()),
        })
        .collect();
    let sockets = SharedSockets::bind(&spec.wasi.fds, &homes)?.into_instances();

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ended_tx, ended_rx) = mpsc::channel();
    let mut announce = spec.on_listening;
    let mut threads = Vec::with_capacity(count);
    for (index, (runtime, own)) in runtimes.into_iter().zip(sockets).enumerate() {
        let wasi_spec = spec.wasi.clone();
        let limits = spec.limits.clone();
        let prepared = prepared.clone();
        let mut stop = stop_rx.clone();
        let ended = ended_tx.clone();
        // The first instance announces the listeners once its module's imports check out.
        let announce = announce.take();
        let thread = std::thread::Builder::new()
            .name(format!("moat-keep-{index}"))
            .spawn(move || {
                let served = runtime.block_on(async {
                    let wasi = match MoatWasi::instance(wasi_spec, own) {
                        Ok(wasi) => wasi,
                        Err(e) => return Served::Ended(Err(e.into())),
                    };
                    let stopped = async {
                        let _ = stop.wait_for(|stop| *stop).await;
                    };
                    prepared.serve(wasi, &limits, announce, stopped).await
                });
                // A stdin reader may sit in a blocking read: do not wait for it.
                runtime.shutdown_background();
                let _ = ended.send((index, served));
            })
            .map_err(KeepError::Runtime);
        match thread {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                stop_tx.send_replace(true);
                return Err(e);
            }
        }
    }
    drop(ended_tx);

    let mut first = None;
    for (index, served) in ended_rx.iter() {
        if let (None, Served::Ended(outcome)) = (&first, served) {
            tracing::info!(
                instance = index,
                "a workload instance ended; stopping the others"
            );
            first = Some(outcome);
            stop_tx.send_replace(true);
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    first.unwrap_or(Err(KeepError::Engine(
        "every workload instance stopped without an outcome".into(),
    )))
}
