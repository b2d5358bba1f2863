//! Token counting throughput, single thread: the ASCII fast path with its fallback
//! (`TokenCounter::count`) against `tiktoken-rs` alone (`encode_reference`).
//!
//! `cargo bench -p gatehouse-text --bench tokens` counts the messages of
//! `GATEHOUSE_BENCH_CONVERSATIONS` generated conversations (default 20,000). Set
//! `GATEHOUSE_BENCH_TEXT=FILE` to count the lines of a file instead (one message per line,
//! e.g. text exported from a real source), which measures the non-ASCII fallback share too.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use gatehouse_synth::{Corpus, Family};
use gatehouse_text::{TokenCounter, TokenizerName};

fn main() {
    let texts: Vec<String> = match std::env::var("GATEHOUSE_BENCH_TEXT") {
        Ok(path) => std::fs::read_to_string(&path)
            .expect("read GATEHOUSE_BENCH_TEXT")
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => {
            let n: u64 = std::env::var("GATEHOUSE_BENCH_CONVERSATIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20_000);
            let corpus = Corpus::new(7);
            (0..n)
                .flat_map(|i| corpus.conversation(Family::ALL[(i % 5) as usize], i).turns)
                .map(|(_, text)| text)
                .collect()
        }
    };
    let bytes: usize = texts.iter().map(String::len).sum();
    let ascii = texts.iter().filter(|t| t.is_ascii()).count();
    println!(
        "{} messages, {:.1} MB, {:.1}% pure ASCII",
        texts.len(),
        bytes as f64 / 1e6,
        100.0 * ascii as f64 / texts.len().max(1) as f64
    );
    for name in TokenizerName::ALL {
        let counter = TokenCounter::new(name);
        let started = Instant::now();
        let fast: u64 = texts.iter().map(|t| counter.count(t)).sum();
        let fast_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let reference: u64 = texts
            .iter()
            .map(|t| counter.encode_reference(t).len() as u64)
            .sum();
        let reference_s = started.elapsed().as_secs_f64();
        assert_eq!(fast, reference, "{name}: the two paths disagree");
        println!(
            "{name}: {fast} tokens; count {:.0} MB/s, tiktoken-rs {:.0} MB/s ({:.1}x)",
            bytes as f64 / 1e6 / fast_s,
            bytes as f64 / 1e6 / reference_s,
            reference_s / fast_s
        );
    }
}
