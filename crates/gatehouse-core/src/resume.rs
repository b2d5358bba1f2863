//! Resume: a stage whose inputs and outputs are unchanged since it last completed is skipped.
//!
//! When a resumable stage (build, gates, consume) completes, `release` writes a stamp,
//! `{exports}/_gatehouse/resume/{version}/{stage}.json`: the digests of its named inputs
//! (tool version, policy config, registry, the source listing, the manifest, the signoff…)
//! and the identity (size and etag) of every object it wrote, with its verdict. The next run
//! skips the stage when every input digest is the same and every output is still there,
//! unchanged; otherwise it says which input or output differs and runs the stage. The stamp
//! is removed before a stage runs, so a run killed mid-stage never leaves a stamp that
//! vouches for half-written outputs.
//!
//! Coverage (a listing) and QA (people's reviews arrive at any time) always run; publication
//! runs once, when every stage passed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::Verdict;
use crate::store::{Store, StoreError};

pub const SCHEMA_VERSION: u32 = 1;

/// One object a stage wrote, as the store identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

/// What a completed stage leaves for the next run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub schema_version: u32,
    pub stage: String,
    /// Input name → digest.
    pub inputs: BTreeMap<String, String>,
    pub outputs: Vec<Output>,
    pub verdict: Verdict,
    pub passed: bool,
    /// The release digest the stage produced or judged.
    pub release_digest: String,
}

/// Whether a stage runs, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run { reason: String },
    Skip { stamp: Box<Stamp> },
}

impl Stamp {
    /// Why a stage with this stamp is skipped.
    pub fn skip_reason(&self) -> String {
        format!(
            "unchanged since it last completed ({}; {} inputs, {} outputs checked)",
            self.verdict.as_str(),
            self.inputs.len(),
            self.outputs.len()
        )
    }
}

/// `{exports}/_gatehouse/resume/{version}/{stage}.json`.
pub fn stamp_key(store: &Store, version: &str, stage: &str) -> String {
    crate::layout::resume_stamp(store.exports_prefix(), version, stage)
}

/// Decides whether `stage` can be skipped: its stamp exists, every input digest matches and
/// every output is unchanged. Reads only (the stamp and one HEAD per output).
pub fn decide(
    store: &Store,
    version: &str,
    stage: &str,
    inputs: &BTreeMap<String, String>,
) -> Result<Decision, StoreError> {
    let run = |reason: String| Ok(Decision::Run { reason });
    let key = stamp_key(store, version, stage);
    let bytes = match store.get_bytes(&key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => {
            return run("no completed run of this stage for this version".into());
        }
        Err(e) => return Err(e),
    };
    let Ok(stamp) = serde_json::from_slice::<Stamp>(&bytes) else {
        return run(format!("{key} is unreadable"));
    };
    if stamp.schema_version != SCHEMA_VERSION {
        return run("the stamp is from another version of gatehouse".into());
    }
    let changed: Vec<&str> = inputs
        .iter()
        .filter(|(name, digest)| stamp.inputs.get(*name) != Some(digest))
        .map(|(name, _)| name.as_str())
        .collect();
    if !changed.is_empty() {
        return run(format!("changed: {}", changed.join(", ")));
    }
    if let Some(name) = stamp.inputs.keys().find(|n| !inputs.contains_key(*n)) {
        return run(format!("{name} is no longer an input"));
    }
    for out in &stamp.outputs {
        match store.head(&out.key) {
            Ok(o) if o.size == out.size && o.etag == out.etag => {}
            Ok(_) => return run(format!("output {} changed since", out.key)),
            Err(StoreError::NotFound { .. }) => {
                return run(format!("output {} is missing", out.key));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Decision::Skip {
        stamp: Box::new(stamp),
    })
}

/// Removes a stage's stamp before it runs.
pub fn invalidate(store: &Store, version: &str, stage: &str) -> Result<(), StoreError> {
    match store.delete(&stamp_key(store, version, stage)) {
        Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Records a completed stage: its inputs and the identity of every object it wrote.
pub fn record(
    store: &Store,
    version: &str,
    stage: &str,
    inputs: BTreeMap<String, String>,
    written: &[String],
    verdict: Verdict,
    release_digest: &str,
) -> Result<Stamp, StoreError> {
    let passed = verdict != Verdict::Fail;
    let mut keys: Vec<&String> = written.iter().collect();
    keys.sort();
    keys.dedup();
    let outputs = keys
        .into_iter()
        .map(|k| {
            store.head(k).map(|o| Output {
                key: k.clone(),
                size: o.size,
                etag: o.etag,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stamp = Stamp {
        schema_version: SCHEMA_VERSION,
        stage: stage.to_string(),
        inputs,
        outputs,
        verdict,
        passed,
        release_digest: release_digest.to_string(),
    };
    let key = stamp_key(store, version, stage);
    // Never an empty stamp: a stamp that cannot be written is an error, not a skip later.
    let mut bytes = serde_json::to_vec_pretty(&stamp).map_err(|e| StoreError::Other {
        op: "encode",
        target: key.clone(),
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    store.put(&key, bytes)?;
    Ok(stamp)
}

/// Digest of a listing under `prefix` (keys, sizes, etags), skipping keys under `exclude`.
pub fn listing_digest(
    store: &Store,
    prefix: &str,
    exclude: Option<&str>,
    keep: impl Fn(&str) -> bool,
) -> Result<String, StoreError> {
    let mut entries = Vec::new();
    for o in store.list(prefix) {
        let o = o?;
        if exclude.is_some_and(|x| o.key.starts_with(x)) || !keep(&o.key) {
            continue;
        }
        entries.push(format!(
            "{}\t{}\t{}",
            o.key,
            o.size,
            o.etag.unwrap_or_default()
        ));
    }
    entries.sort();
    Ok(crate::digest::sha256(entries.join("\n").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(config: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("config".to_string(), config.to_string()),
            ("tool".to_string(), "t".to_string()),
        ])
    }

    #[test]
    fn skips_only_when_inputs_and_outputs_are_unchanged() {
        let store = Store::memory();
        let d = decide(&store, "v1", "build", &inputs("a")).unwrap();
        assert!(matches!(d, Decision::Run { .. }));
        store.put("exports/releases/v1/x", "1").unwrap();
        let written = vec!["exports/releases/v1/x".to_string()];
        record(
            &store,
            "v1",
            "build",
            inputs("a"),
            &written,
            Verdict::Pass,
            "d",
        )
        .unwrap();
        assert!(matches!(
            decide(&store, "v1", "build", &inputs("a")).unwrap(),
            Decision::Skip { .. }
        ));
        match decide(&store, "v1", "build", &inputs("b")).unwrap() {
            Decision::Run { reason } => assert_eq!(reason, "changed: config"),
            d => panic!("{d:?}"),
        }
        store.put("exports/releases/v1/x", "22").unwrap();
        match decide(&store, "v1", "build", &inputs("a")).unwrap() {
            Decision::Run { reason } => assert!(reason.contains("changed since"), "{reason}"),
            d => panic!("{d:?}"),
        }
        store.delete("exports/releases/v1/x").unwrap();
        match decide(&store, "v1", "build", &inputs("a")).unwrap() {
            Decision::Run { reason } => assert!(reason.contains("missing"), "{reason}"),
            d => panic!("{d:?}"),
        }
        invalidate(&store, "v1", "build").unwrap();
        assert!(matches!(
            decide(&store, "v1", "build", &inputs("a")).unwrap(),
            Decision::Run { .. }
        ));
    }
}
