//! The fuzz targets (`gatehouse_core::fuzz`, run under libFuzzer from `fuzz/`) on stable, in
//! the ordinary test run: over the committed corpus `fuzz/corpus/NAME/` (seeds, and every
//! input a fuzz run found failing, kept as a regression test), and over random inputs
//! biased towards the bytes the parsers care about.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;

use gatehouse_core::fuzz::TARGETS;
use proptest::prelude::*;

#[test]
fn every_target_replays_its_committed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in TARGETS {
        let mut files: Vec<_> = std::fs::read_dir(root.join(name))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "fuzz/corpus/{name} is empty");
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            let caught = std::panic::catch_unwind(|| target(&bytes));
            assert!(caught.is_ok(), "{name} fails on {}", f.display());
        }
    }
}

fn structured_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(b"\",\n\r{}[]:\\ \tua#".to_vec()),
            2 => proptest::sample::select(
                b"\"role\":\"user\",\"content\":\"assistant\"messagesprompt response".to_vec()
            ),
            1 => any::<u8>(),
        ],
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn targets_hold_on_random_inputs(data in structured_bytes(), which in 0..TARGETS.len()) {
        (TARGETS[which].1)(&data);
    }
}
