//! Resource limits of a Keep: memory (wasmtime's resource limiter), CPU and wall-clock time
//! (epoch interruption). Defaults suit long-running servers: a memory cap, no time limit.

use std::time::Duration;

/// How often the engine's epoch advances; the granularity of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest linear memory (bytes) the workload may grow to.
    pub max_memory: u64,
    /// Time spent executing wasm (measured in epoch ticks), `None` for no limit.
    pub max_cpu_time: Option<Duration>,
    /// Total time from `_start` to exit, `None` for no limit.
    pub max_wall_time: Option<Duration>,
    /// Table elements a workload may grow its tables to.
    pub max_table_elements: usize,
}

impl Limits {
    /// 1 GiB of linear memory.
    pub const DEFAULT_MAX_MEMORY: u64 = 1 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: Self::DEFAULT_MAX_MEMORY,
            max_cpu_time: None,
            max_wall_time: None,
            max_table_elements: 1_000_000,
        }
    }
}

/// A limit that stopped the workload; carried as the trap's error so the CLI can name it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimitExceeded {
    #[error(
        "memory limit exceeded: the workload tried to grow its memory to {requested} bytes; the \
         limit is {limit} bytes (raise it with --max-memory or `max_memory` in [limits])"
    )]
    Memory { limit: u64, requested: u64 },
    #[error(
        "CPU time limit of {limit:?} exceeded: the workload executed wasm for longer (raise it \
         with --cpu-time or `cpu_time` in [limits])"
    )]
    CpuTime { limit: Duration },
    #[error(
        "wall-clock time limit of {limit:?} exceeded (raise it with --wall-time or `wall_time` in \
         [limits])"
    )]
    WallTime { limit: Duration },
    #[error("table limit exceeded: {requested} elements requested, the limit is {limit}")]
    Table { limit: usize, requested: usize },
}

/// wasmtime resource limiter enforcing [`Limits`]: growing past a limit traps with a
/// [`LimitExceeded`] (rather than failing `memory.grow`, whose -1 most guests turn into an
/// opaque abort).
#[derive(Debug)]
pub struct Limiter {
    max_memory: u64,
    max_table_elements: usize,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Limiter {
            max_memory: limits.max_memory,
            max_table_elements: limits.max_table_elements,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.max_memory {
            return Err(LimitExceeded::Memory {
                limit: self.max_memory,
                requested: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            return Err(LimitExceeded::Table {
                limit: self.max_table_elements,
                requested: desired,
            }
            .into());
        }
        Ok(true)
    }
}
