//! What the kernel says about the servers and the machine during a measure: a process's CPU
//! time, each thread's time on a CPU and waiting for one, and the hypervisor's steal.
//!
//! These figures explain a ratio rather than make it. CPU time per request shows how much
//! work a server does for each request. The busiest thread's running and waiting shares tell a
//! server limited by one thread from one that ran out of work. Steal marks the rounds in which
//! other guests on the host took the CPUs.

use std::collections::HashMap;
use std::time::Duration;

/// Above this share of stolen CPU time, a measure says more about the host than the servers.
pub const STEAL_WARNING: f64 = 0.05;

/// The machine's (steal, total) CPU time in ticks, from the first line of `/proc/stat`.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal; guest times are already in user.
    let total = ticks.iter().take(8).sum();
    (ticks.get(7).copied().unwrap_or(0), total)
}

/// The share of the machine's CPU time stolen between two [`machine_ticks`] readings.
pub fn steal_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    after.0.saturating_sub(before.0) as f64 / total.max(1) as f64
}

/// `cpu` spread over `units` (requests, connections), in microseconds each.
pub fn per_unit_us(cpu: Duration, units: f64) -> f64 {
    cpu.as_secs_f64() * 1e6 / units.max(1.0)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (zero where
/// that is missing: the figure is informative, not part of the ratio).
pub fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    Duration::from_millis(ticks * 10)
}

/// How one thread spent a measure, as fractions of its wall time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadShare {
    /// On a CPU.
    pub running: f64,
    /// Runnable but waiting for a CPU (the scheduler ran another thread).
    pub waiting: f64,
}

/// Per thread of `pid`: nanoseconds on a CPU and nanoseconds runnable but waiting for one
/// (`/proc/PID/task/TID/schedstat`, kept by the kernel's scheduler statistics).
pub fn thread_schedstats(pid: u32) -> HashMap<u32, (u64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
            Some((tid, (fields.next()??, fields.next()??)))
        })
        .collect()
}

/// The thread that ran most between two [`thread_schedstats`] snapshots. It tells a server
/// limited by one thread (busiest thread near 1.0 running + waiting) from one that ran out of
/// work (both well below).
pub fn busiest_thread(
    before: &HashMap<u32, (u64, u64)>,
    after: &HashMap<u32, (u64, u64)>,
    elapsed: Duration,
) -> ThreadShare {
    let wall = elapsed.as_nanos().max(1) as f64;
    after
        .iter()
        .map(|(tid, &(run, wait))| {
            let (run0, wait0) = before.get(tid).copied().unwrap_or_default();
            ThreadShare {
                running: run.saturating_sub(run0) as f64 / wall,
                waiting: wait.saturating_sub(wait0) as f64 / wall,
            }
        })
        .max_by(|a, b| a.running.total_cmp(&b.running))
        .unwrap_or_default()
}

/// A server watched through one measure: its CPU time and threads' scheduler statistics at the
/// start, compared with the same readings at [`ServerWatch::finish`].
pub struct ServerWatch {
    pid: u32,
    cpu: Duration,
    threads: HashMap<u32, (u64, u64)>,
    started: std::time::Instant,
}

/// What a [`ServerWatch`] saw.
pub struct Watched {
    /// Server CPU time (user + system, all threads) per unit of work, in microseconds.
    pub cpu_us_per_unit: f64,
    pub busiest: ThreadShare,
    pub elapsed: Duration,
}

impl ServerWatch {
    pub fn start(pid: u32) -> Self {
        ServerWatch {
            pid,
            cpu: process_cpu(pid),
            threads: thread_schedstats(pid),
            started: std::time::Instant::now(),
        }
    }

    /// The readings since [`ServerWatch::start`], with the CPU time spread over `units` (the
    /// requests or connections the measure served).
    pub fn finish(&self, units: f64) -> Watched {
        let elapsed = self.started.elapsed();
        Watched {
            cpu_us_per_unit: per_unit_us(process_cpu(self.pid).saturating_sub(self.cpu), units),
            busiest: busiest_thread(&self.threads, &thread_schedstats(self.pid), elapsed),
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::{busiest_thread, steal_share};

    #[test]
    fn the_busiest_thread_is_the_one_that_ran_most_between_snapshots() {
        let before = HashMap::from([(1, (100, 0)), (2, (5_000, 1_000))]);
        // Thread 3 started after the first snapshot; thread 2 ran most in between.
        let after = HashMap::from([(1, (300, 0)), (2, (8_000, 1_500)), (3, (2_000, 0))]);
        let busiest = busiest_thread(&before, &after, Duration::from_nanos(4_000));
        assert_eq!((busiest.running, busiest.waiting), (0.75, 0.125));
        let idle = busiest_thread(&HashMap::new(), &HashMap::new(), Duration::from_secs(1));
        assert_eq!((idle.running, idle.waiting), (0.0, 0.0));
    }

    #[test]
    fn steal_is_a_share_of_the_ticks_in_between() {
        assert_eq!(steal_share((10, 1_000), (60, 1_200)), 0.25);
        // A counter that did not move (or went back) is no steal, not a panic.
        assert_eq!(steal_share((10, 1_000), (10, 1_000)), 0.0);
        assert_eq!(steal_share((10, 1_000), (5, 900)), 0.0);
    }
}
