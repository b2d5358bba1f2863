//! Streams one large JSONL object through `Store::open_read` + `LineReader` and reports
//! throughput and peak resident memory, from local disk and from S3 over HTTP.
//!
//! `cargo bench -p gatehouse-core --bench line_reader` (default 2.2 GB; set
//! `GATEHOUSE_BENCH_BYTES` to change it, `GATEHOUSE_BENCH_DIR` to choose where the generated
//! object lives). Each measurement runs in a fresh child process so its peak RSS (`VmHWM`)
//! covers only the reader, not the generator or the in-process S3 server.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use gatehouse_core::store::{Backend, Line, LineReader, Store, StoreConfig};
use gatehouse_synth::formats::{self, Eol};
use gatehouse_synth::{Corpus, Family};

const CHILD: &str = "GATEHOUSE_BENCH_CHILD";
const KEY: &str = "bench/corpus.jsonl";
/// Read buffer and maximum line length used by the reader.
const READ_BUFFER: usize = 1 << 20;
const MAX_LINE: usize = 64 << 20;

fn main() {
    if std::env::var(CHILD).is_ok() {
        return child();
    }
    let target: u64 = std::env::var("GATEHOUSE_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_200_000_000);
    let dir = std::env::var("GATEHOUSE_BENCH_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"),
        PathBuf::from,
    );
    let root = dir.join("local-store");
    let object = root.join(KEY);
    let (size, lines) = ensure_object(&object, target);
    println!("object: {KEY}, {size} bytes, {lines} lines (synthetic ChatML JSONL)");
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let local = measure(&[
        ("BACKEND", "local".into()),
        ("ROOT", root.display().to_string()),
    ]);
    report("local disk", &local, size, lines);

    let s3 = gatehouse_test::TestS3::start_in_process().unwrap();
    let bucket = s3.create_bucket("bench").unwrap();
    let upload_started = Instant::now();
    // Upload through the same store API: multipart in 8 MiB parts.
    let store = s3_store(&s3.endpoint, &bucket, &s3.access_key, &s3.secret_key);
    let mut w = store.writer(KEY, 8 << 20);
    std::io::copy(&mut std::fs::File::open(&object).unwrap(), &mut w).unwrap();
    w.finish().unwrap();
    println!(
        "uploaded to in-process S3 (multipart) in {:.1}s",
        upload_started.elapsed().as_secs_f64()
    );
    let remote = measure(&[
        ("BACKEND", "s3".into()),
        ("ENDPOINT", s3.endpoint.clone()),
        ("BUCKET", bucket.clone()),
        ("AK", s3.access_key.clone()),
        ("SK", s3.secret_key.clone()),
    ]);
    report("S3 over HTTP (s3s-fs, loopback)", &remote, size, lines);
    if let Some(d) = s3.bucket_dir(&bucket) {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn ensure_object(path: &Path, target: u64) -> (u64, u64) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() >= target
    {
        let lines = std::fs::read_to_string(path.with_extension("lines"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        return (meta.len(), lines);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let started = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let corpus = Corpus::new(1);
    let (mut written, mut lines) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(8192);
    while written < target {
        buf.clear();
        let family = Family::ALL[(lines % 5) as usize];
        formats::chatml_jsonl(&mut buf, &corpus.conversation(family, lines / 5), Eol::Lf).unwrap();
        w.write_all(&buf).unwrap();
        written += buf.len() as u64;
        lines += 1;
    }
    w.flush().unwrap();
    std::fs::write(path.with_extension("lines"), lines.to_string()).unwrap();
    println!(
        "generated {written} bytes in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    (written, lines)
}

struct Measured {
    seconds: f64,
    lines: u64,
    bytes: u64,
    peak_rss_kb: u64,
}

fn measure(vars: &[(&str, String)]) -> Measured {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, "1");
    for (k, v) in vars {
        cmd.env(format!("GATEHOUSE_BENCH_{k}"), v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    Measured {
        seconds: f[0].parse().unwrap(),
        lines: f[1].parse().unwrap(),
        bytes: f[2].parse().unwrap(),
        peak_rss_kb: f[3].parse().unwrap(),
    }
}

fn report(what: &str, m: &Measured, size: u64, lines: u64) {
    assert_eq!(m.bytes, size, "{what}: read every byte");
    if lines > 0 {
        assert_eq!(m.lines, lines, "{what}: read every line");
    }
    println!(
        "{what}: {} lines, {:.2} GB in {:.2}s = {:.0} MB/s, peak RSS {:.1} MB",
        m.lines,
        m.bytes as f64 / 1e9,
        m.seconds,
        m.bytes as f64 / 1e6 / m.seconds,
        m.peak_rss_kb as f64 / 1024.0,
    );
}

fn s3_store(endpoint: &str, bucket: &str, ak: &str, sk: &str) -> Store {
    let env: std::collections::BTreeMap<String, String> = [
        ("DATASET_STORAGE_BACKEND", "s3"),
        ("DATASET_S3_ENDPOINT", endpoint),
        ("DATASET_S3_BUCKET", bucket),
        ("DATASET_S3_ACCESS_KEY", ak),
        ("DATASET_S3_SECRET_KEY", sk),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Store::open(&gatehouse_core::config::store_from_env(&env).unwrap()).unwrap()
}

/// Runs in a fresh process: stream the object, print `seconds lines bytes peak_rss_kb`.
fn child() {
    let var = |k: &str| std::env::var(format!("GATEHOUSE_BENCH_{k}")).unwrap();
    let store = if var("BACKEND") == "local" {
        Store::open(&StoreConfig {
            backend: Backend::Local {
                root: var("ROOT").into(),
            },
            exports_prefix: "exports".into(),
        })
        .unwrap()
    } else {
        s3_store(&var("ENDPOINT"), &var("BUCKET"), &var("AK"), &var("SK"))
    };
    let started = Instant::now();
    let reader = store.open_read(KEY).unwrap();
    let mut lines = LineReader::new(BufReader::with_capacity(READ_BUFFER, reader), MAX_LINE);
    let mut count = 0u64;
    let mut checksum = 0u64;
    while let Some(line) = lines.next_line().unwrap() {
        if let Line::Text { bytes, .. } = line {
            checksum = checksum.wrapping_add(bytes.len() as u64);
        }
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    let hwm = (support::peak_rss_mb() * 1024.0) as u64;
    println!("{seconds} {count} {} {hwm}", lines.bytes_read());
}
