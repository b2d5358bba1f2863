//! Shared by the benchmarks.

/// Peak resident memory of this process in MB (`VmHWM` from /proc/self/status).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .to_string();
            v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
