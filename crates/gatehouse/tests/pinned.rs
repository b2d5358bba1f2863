//! The release's bytes are pinned: the sample store, released at a fixed path and version,
//! reviewed and published, gives exactly the files listed in `pins/sample_store.txt` (path
//! and sha256). A refactor that changes any byte of the export, the manifest or a report
//! fails here. Measured times and reviewer ids (drawn at random) are masked before hashing;
//! files made of nothing but such things (the reviewers, the signoff record, the marker) are
//! pinned by name, and the review files by count. The commit gatehouse is built from (named
//! in the manifest) and so the release digest are replaced by placeholders first.
//!
//! After a deliberate change of output, rewrite the pins with
//! `GATEHOUSE_PIN_WRITE=1 cargo test -p gatehouse --test pinned` and explain it in the commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Project, sign_off};
use sha2::{Digest, Sha256};

const V: &str = "v2026-01-01";
const PINS: &str = "tests/pins/sample_store.txt";
/// 2026-01-01T00:00:00Z, the day `V` names.
const SOURCE_DATE: &[(&str, &str)] = &[("SOURCE_DATE_EPOCH", "1767225600")];

/// Files whose bytes depend on reviewer ids drawn at random (their order, hashes of files
/// that name them): their presence is pinned, not their hash.
fn unpinned(path: &str) -> bool {
    [
        "qa/reviewers.json",
        "qa/signoff_record.json",
        "release_notes.json",
        "release_notes.md",
        "_PUBLISHED",
    ]
    .contains(&path)
}

/// Files that carry measured times or reviewer ids: pinned after those are masked.
fn masked(path: &str) -> bool {
    [
        "gates/pii_detection_report.json",
        "gates/provenance_validation_report.json",
        "gates/combined_gate_report.json",
        "release_summary.json",
        "tests/training_consumption_test.json",
    ]
    .contains(&path)
}

/// Times, rates and reviewer ids masked; the signoff record's hash (which covers reviewer
/// ids and times) masked where it is quoted.
fn mask(text: &str) -> String {
    let rules = [
        (
            r#""(\w*seconds?|\w*_per_second)": [0-9.e+-]+"#,
            r#""$1": 0"#,
        ),
        (r#""(\w*_at)": "[^"]*""#, r#""$1": """#),
        (r"rv-[0-9a-f]{12}", "rv-*"),
        (
            r#""signoff_sha256": "sha256:[0-9a-f]{64}""#,
            r#""signoff_sha256": "*""#,
        ),
        (r"record sha256 `sha256:[0-9a-f]{64}`", "record sha256 `*`"),
    ];
    let mut out = text.to_string();
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The build's identity, which changes with every commit: the manifest names the commit, so
/// the release digest (the manifest's sha256) changes with it too. Both are replaced by
/// placeholders wherever they appear before hashing; every other byte is pinned.
struct Identity {
    commit: String,
    digest: String,
}

impl Identity {
    fn of(release: &Path) -> Self {
        let bytes = std::fs::read(release.join("manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        Self {
            commit: manifest["tool"]["git_commit"].as_str().unwrap().to_string(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        }
    }

    fn neutral(&self, bytes: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(bytes) {
            Ok(text) => text
                .replace(&self.digest, "sha256:<release-digest>")
                .replace(
                    &format!("\"git_commit\": \"{}\"", self.commit),
                    "\"git_commit\": \"<commit>\"",
                )
                .replace(
                    &format!("\"git_commit\":\"{}\"", self.commit),
                    "\"git_commit\":\"<commit>\"",
                )
                .replace(&format!("({})", self.commit), "(<commit>)")
                .into_bytes(),
            Err(_) => bytes.to_vec(), // Parquet: records only, no digest
        }
    }
}

fn files(root: &Path) -> BTreeMap<String, String> {
    let identity = Identity::of(root);
    let mut out = BTreeMap::new();
    gatehouse_test::for_each_file(root, &mut |key, bytes| {
        let bytes = identity.neutral(&bytes);
        let hash = if masked(key) {
            Sha256::digest(mask(std::str::from_utf8(&bytes)?).as_bytes())
        } else {
            Sha256::digest(&bytes)
        };
        out.insert(key.to_string(), hex::encode(hash));
        Ok(())
    })
    .unwrap();
    out
}

/// The fixed path is shared by every checkout on the machine: a lock directory (created
/// atomically, removed on drop, taken over when older than ten minutes) keeps two runs from
/// writing into one project.
struct PathLock(std::path::PathBuf);

impl PathLock {
    fn take(path: &Path) -> Self {
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => return Self(path.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > std::time::Duration::from_secs(600));
                    if stale {
                        let _ = std::fs::remove_dir(path);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) => panic!("cannot take the lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn the_sample_release_is_byte_identical_to_its_pins() {
    // The coverage report names the store's root, so the project sits at a fixed path.
    let _lock = PathLock::take(&std::env::temp_dir().join("gatehouse-pinned-outputs.lock"));
    let p = Project::at(&std::env::temp_dir().join("gatehouse-pinned-outputs"));
    // The day waivers are judged on, and the coverage report's `as_of`, come from the clock
    // unless SOURCE_DATE_EPOCH is set: fixed here (to the version's day), or the pins would
    // change at midnight.
    let release = |p: &Project| p.run_env(&["release", "--release-version", V], SOURCE_DATE);
    assert_eq!(release(&p).code, 1);
    let before_qa = files(&p.path().join(format!("store/exports/releases/{V}")));
    sign_off(&p, V);
    let r = release(&p);
    assert_eq!(r.code, 0, "{r:?}");
    let release = p.path().join(format!("store/exports/releases/{V}"));
    let after = files(&release);
    // A copy of this run's release beside the project, to diff against when a pin breaks.
    let last = std::env::temp_dir().join("gatehouse-pinned-outputs.last");
    let _ = std::fs::remove_dir_all(&last);
    gatehouse_test::for_each_file(&release, &mut |key, bytes| {
        let path = last.join(key);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(path, bytes)?;
        Ok(())
    })
    .unwrap();
    evidence_reads_back_as_its_contract_types(&release);
    // Nothing written before QA changes during QA and publication.
    for (k, h) in &before_qa {
        assert_eq!(after.get(k), Some(h), "{k} changed after the QA stop");
    }
    let mut lines = String::new();
    for (k, h) in &after {
        if k.starts_with("qa/reviews/") || k.starts_with("qa/review_proofs/") {
            continue; // named by reviewer ids drawn at random; counted below
        }
        let h = if unpinned(k) { "-" } else { h.as_str() };
        lines.push_str(&format!("{k} {h}\n"));
    }
    let reviews = after
        .keys()
        .filter(|k| k.starts_with("qa/reviews/"))
        .count();
    let proofs = after
        .keys()
        .filter(|k| k.starts_with("qa/review_proofs/"))
        .count();
    lines.push_str(&format!(
        "qa/reviews/* {reviews} files\nqa/review_proofs/* {proofs} files\n"
    ));
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join(PINS);
    if std::env::var_os("GATEHOUSE_PIN_WRITE").is_some() {
        std::fs::create_dir_all(pins.parent().unwrap()).unwrap();
        std::fs::write(&pins, &lines).unwrap();
        eprintln!("wrote {}", pins.display());
        return;
    }
    let want = std::fs::read_to_string(&pins).unwrap();
    let want: BTreeMap<&str, &str> = want.lines().filter_map(|l| l.split_once(' ')).collect();
    let got: BTreeMap<&str, &str> = lines.lines().filter_map(|l| l.split_once(' ')).collect();
    let mut diffs = Vec::new();
    for k in want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if want.get(k) != got.get(k) {
            diffs.push(format!(
                "{k}: pinned {:?}, now {:?}",
                want.get(k),
                got.get(k)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "outputs differ from {PINS}:\n{}",
        diffs.join("\n")
    );
}

/// The publication's evidence reads back as its contract types, and written again gives
/// the same bytes.
fn evidence_reads_back_as_its_contract_types(release: &Path) {
    use gatehouse_core::contract::publish::{
        CombinedGateReport, Marker, ReleaseNotes, ReleaseSummary,
    };
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(path: &Path) -> T {
        let bytes = std::fs::read(path).unwrap();
        let typed: T =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut again = serde_json::to_vec_pretty(&typed).unwrap();
        again.push(b'\n');
        assert!(again == bytes, "{} does not round-trip", path.display());
        typed
    }
    let combined: CombinedGateReport = round_trip(&release.join("gates/combined_gate_report.json"));
    assert_eq!(combined.gates.len(), 5);
    let notes: ReleaseNotes = round_trip(&release.join("release_notes.json"));
    assert_eq!(notes.verdicts, combined.verdicts);
    assert_eq!(notes.signoff.decision, "approved");
    let summary: ReleaseSummary = round_trip(&release.join("release_summary.json"));
    assert_eq!(summary.release_digest, combined.release_digest);
    let marker: Marker =
        serde_json::from_slice(&std::fs::read(release.join("_PUBLISHED")).unwrap()).unwrap();
    assert_eq!(marker.release_digest, summary.release_digest);
}
