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

/// Where a benchmark runs: `GATEHOUSE_BENCH_CONVERSATIONS` conversations (default given) in
/// `GATEHOUSE_BENCH_DIR` (default `target/bench-data/{name}-{n}`), and whether this process
/// is the measured child.
#[allow(dead_code)] // each benchmark compiles this module; not all use every item
pub struct Setup {
    pub n: u64,
    pub root: std::path::PathBuf,
    pub child: bool,
}

const CHILD: &str = "GATEHOUSE_BENCH_CHILD";

#[allow(dead_code)]
pub fn setup(name: &str, default_n: u64) -> Setup {
    let n = std::env::var("GATEHOUSE_BENCH_CONVERSATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_n);
    let root = std::env::var("GATEHOUSE_BENCH_DIR").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../target/bench-data/{name}-{n}"))
        },
        std::path::PathBuf::from,
    );
    Setup {
        n,
        root,
        child: std::env::var(CHILD).is_ok(),
    }
}

/// Runs this benchmark again in a fresh child process (so its peak RSS is the measured
/// work's alone), prints the child's output and returns its wall time in seconds.
#[allow(dead_code, clippy::unwrap_used)]
pub fn run_child(s: &Setup) -> f64 {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .env("GATEHOUSE_BENCH_CONVERSATIONS", s.n.to_string())
        .env("GATEHOUSE_BENCH_DIR", &s.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    started.elapsed().as_secs_f64()
}
