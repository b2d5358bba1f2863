//! The reviewers' blocklist: records a reviewer flagged (`gatehouse qa signoff` writes them to
//! `{exports}/blocklists/{version}.json`) are left out of every later build. The build reads
//! every blocklist there, removes the listed record ids (counted per object as removed by
//! policy) and names the blocklists with their sha256 in the manifest.

use std::collections::HashSet;

use super::BuildError;
pub use crate::contract::{
    BlockedRecord, BlocklistFile, BlocklistSource as Source, BlocklistSummary,
};
use crate::digest::sha256;
use crate::store::Store;

/// Where signoffs write their blocklists.
pub fn prefix(store: &Store) -> String {
    crate::layout::blocklists_prefix(store.exports_prefix())
}

#[derive(Debug, Default)]
pub struct Blocklist {
    pub ids: HashSet<String>,
    pub summary: BlocklistSummary,
}

/// Reads every blocklist; an unreadable one fails the build (it must not be skipped).
pub fn load(store: &Store) -> Result<Blocklist, BuildError> {
    let mut keys = Vec::new();
    for info in store.list(&prefix(store)) {
        let info = info?;
        if info.key.ends_with(".json") {
            keys.push(info.key);
        }
    }
    keys.sort();
    let mut out = Blocklist::default();
    for key in keys {
        let bytes = store.get_bytes(&key)?;
        let file: BlocklistFile = serde_json::from_slice(&bytes)
            .map_err(|_| BuildError::BadBlocklist { key: key.clone() })?;
        out.ids
            .extend(file.records.iter().map(|r| r.record_id.clone()));
        out.summary.sources.push(Source {
            sha256: sha256(&bytes),
            records: file.records.len() as u64,
            key,
        });
    }
    out.summary.records_listed = out.ids.len() as u64;
    Ok(out)
}
