//! This process's own figures from `/proc`, for the benches that run the broker in-process
//! (`eidas`, `sqlite_handoff`): CPU, context switches, resident memory.

use std::collections::HashMap;

/// utime + stime of this process, in seconds (clock ticks of 1/100 s on Linux).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Context switches of each of this process's threads (`/proc/self/task/*/status`), by thread
/// id. Every statement handed to a SQLite connection thread, or work to a blocking thread,
/// costs some, so their count shows hand-offs that the noisy CPU figure hides.
pub fn context_switches() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert(task.file_name().to_string_lossy().into_owned(), n);
    }
    out
}

/// Switches since an earlier [`context_switches`]: threads that started in between count from
/// zero (a thread that ended in between is not counted).
pub fn switches_since(before: &HashMap<String, u64>) -> u64 {
    context_switches()
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// Resident memory of this process, in MiB.
#[allow(dead_code)] // not every bench reports memory
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
