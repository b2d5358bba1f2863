//! The committed `examples/sample-store` is generated, not hand-written: regenerating it must
//! give the same bytes. If this fails, run `cargo xtask sample` and commit the result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;

use gatehouse_synth::sample::{SampleSize, write_sample_store};

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let key = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if key == "exports" {
                continue; // output of quick-start runs, git-ignored
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn committed_sample_store_is_exactly_the_generator_output() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample-store");
    let fresh = tempfile::tempdir().unwrap();
    write_sample_store(fresh.path(), SampleSize::default()).unwrap();
    let (a, b) = (files(&committed), files(fresh.path()));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "run `cargo xtask sample`"
    );
    for (key, bytes) in &a {
        assert!(
            bytes == &b[key],
            "{key} differs from the generator's output; run `cargo xtask sample`"
        );
    }
}
