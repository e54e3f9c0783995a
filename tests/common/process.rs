//! Processes of a running agent, their RSS, and the soaks' RSS trend.

use std::time::Duration;

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A soak's length: EXALATE_SOAK_SECONDS, else `default`.
pub fn soak_duration(default: u64) -> Duration {
    let seconds = std::env::var("EXALATE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(seconds)
}

/// Whether a process's command line has `arg` as one of its arguments.
pub fn has_arg(pid: u32, arg: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        .unwrap_or(false)
}

/// Processes whose command line has `arg` (e.g. a plugin's socket path).
pub fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| has_arg(*pid, arg))
        .collect()
}

/// A process and its children (an agent's parent and its forks, or agent
/// 2 and its plugin processes).
pub fn process_and_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    pids.extend(children_of(pid));
    pids
}

/// Agent 2's plugin processes in their operational run (`PATH SOCKET
/// false`): a 6.0 agent 2 also has, for half a second after its start, the
/// registration run's reap guard as a child.
pub fn plugin_processes(agent2: u32) -> Vec<u32> {
    children_of(agent2)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(b"\0false\0"))
        })
        .collect()
}

/// The children of a process, whichever of its threads started them (agent
/// 2 is a Go program: any thread may).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    children.sort_unstable();
    children
}

/// Growth of a process's RSS allowed after the warm-up in the soaks. RSS
/// moves by a few MiB as answers of MBs are parsed and kept-alive
/// connections come and go; the heap tests (`robustness/heap.rs`) bound
/// what the library keeps by bytes.
pub const RSS_SLACK_KIB: u64 = 2048;

/// A soak's RSS samples of one process, as (second, KiB), after a warm-up of
/// half the run: on a slow machine allocator arenas, thread stacks and
/// connections settle over most of a minute.
pub struct RssTrend {
    pub first: u64,
    /// Median of the first half after the warm-up.
    pub warm: u64,
    /// Median of the second half.
    pub late: u64,
    pub end: u64,
    pub max: u64,
    /// The seconds the medians cover: warm-up end, middle, end.
    pub windows: (u64, u64, u64),
}

impl RssTrend {
    pub fn of(samples: &[(u64, u64)], duration: Duration) -> RssTrend {
        let total = duration.as_secs();
        let (warm_from, half) = (total / 2, total / 2 + total / 4);
        let median = |from: u64, to: u64| {
            let mut v: Vec<u64> = samples
                .iter()
                .filter(|(t, _)| (from..to).contains(t))
                .map(|(_, k)| *k)
                .collect();
            assert!(!v.is_empty(), "no RSS samples in {from}-{to} s");
            v.sort_unstable();
            v[v.len() / 2]
        };
        RssTrend {
            first: samples[0].1,
            warm: median(warm_from, half),
            late: median(half, u64::MAX),
            end: samples.last().unwrap().1,
            max: samples.iter().map(|(_, k)| *k).max().unwrap(),
            windows: (warm_from, half, total),
        }
    }

    /// The medians, and the end: the soaks take their last sample after
    /// the load, when no parse is making a peak.
    pub fn grew(&self) -> bool {
        self.late > self.warm + RSS_SLACK_KIB || self.end > self.warm + RSS_SLACK_KIB
    }
}
