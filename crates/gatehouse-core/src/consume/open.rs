//! Opening a release by its store prefix, and iterating its verified records.

use bytes::Bytes;
use serde::Deserialize;
use thiserror::Error;

use crate::build::split::Split;
use crate::digest::sha256;
use crate::layout;
use crate::store::{Store, StoreError};

pub use crate::contract::consume::Binding;

#[derive(Debug, Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: no manifest; release {version} was never built here")]
    NotBuilt { key: String, version: String },
    #[error("{key} is not a readable manifest ({detail}; truncated or edited?)")]
    BadManifest { key: String, detail: String },
    #[error("release {version} is not published ({marker} does not exist)")]
    NotPublished { version: String, marker: String },
    #[error("{key} is not a publication marker naming the release digest")]
    BadMarker { key: String },
    #[error(
        "the manifest's sha256 is {actual}, but {against} binds {expected}: the manifest changed"
    )]
    DigestMismatch {
        actual: String,
        expected: String,
        against: String,
    },
    #[error("{key} is not a routing config ({detail})")]
    BadRouting { key: String, detail: String },
    #[error("shard {key} is missing")]
    MissingShard { key: String },
    #[error("shard {key}: {what}")]
    ShardMismatch { key: String, what: String },
    #[error("{at}: not a record of the export contract ({detail})")]
    BadRecord { at: String, detail: String },
    #[error("invalid [consume] configuration: {0}")]
    Config(String),
    #[error("cannot serialise {0}")]
    Serialise(&'static str, #[source] serde_json::Error),
}

impl Binding {
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Published => "publication marker",
            Binding::Signoff => "QA signoff",
            Binding::Unbound => "nothing (draft)",
        }
    }
}

impl ConsumeError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConsumeError::Store(e) => e.hint(),
            ConsumeError::NotBuilt { .. } => {
                Some("check --release-version and the store; list releases under {exports}/releases/".into())
            }
            ConsumeError::BadManifest { .. } | ConsumeError::DigestMismatch { .. } => Some(
                "do not train on this release: rebuild it (`gatehouse release`) or restore the manifest from the publication".into(),
            ),
            ConsumeError::NotPublished { .. } => Some(
                "publish it with `gatehouse release`, or test the draft with `gatehouse consume --draft`".into(),
            ),
            ConsumeError::BadMarker { .. } => Some(
                "the publication marker was edited: restore it, or re-publish under a new version".into(),
            ),
            ConsumeError::BadRouting { .. } => Some("rebuild the release".into()),
            ConsumeError::MissingShard { .. }
            | ConsumeError::ShardMismatch { .. }
            | ConsumeError::BadRecord { .. } => Some(
                "the shard is damaged or incomplete: do not train on it; rebuild, or restore it from a copy whose sha256 matches the manifest".into(),
            ),
            ConsumeError::Config(_) => Some("fix [consume] in gatehouse.toml (see README.md)".into()),
            ConsumeError::Serialise(..) => None,
        }
    }
}

/// The manifest as a consumer reads it: the contract's one type.
pub use crate::contract::{Manifest, ShardInfo as ManifestShard};

/// `routing_config.json` as a consumer reads it: the contract's one type.
pub use crate::contract::{
    FamilyRoute as RoutingFamily, RoutingConfig, StageRoute as RoutingStage,
};

pub use crate::contract::record::{Message, Record, RecordMetadata};

impl Record {
    /// Parses one export line and checks it against the contract.
    pub fn parse(line: &[u8], split: Split, at: &str) -> Result<Record, ConsumeError> {
        let bad = |detail: String| ConsumeError::BadRecord {
            at: at.to_string(),
            detail,
        };
        let r: Record = serde_json::from_slice(line)
            .map_err(|e| bad(format!("{:?} error at column {}", e.classify(), e.column())))?;
        if r.id.is_empty() {
            return Err(bad("empty id".into()));
        }
        if r.messages.is_empty() {
            return Err(bad("no messages".into()));
        }
        // Values read from the line are never echoed: a damaged line could hold any text.
        if let Some(i) = r
            .messages
            .iter()
            .position(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
        {
            return Err(bad(format!(
                "message {i}: the role is not system, user or assistant"
            )));
        }
        if !r.messages.iter().any(|m| m.role == "assistant") {
            return Err(bad("no assistant turn".into()));
        }
        if r.metadata.split != split.as_str() {
            return Err(bad(format!(
                "metadata.split is not {} in a {} shard",
                split.as_str(),
                split.as_str()
            )));
        }
        Ok(r)
    }
}

/// A release opened for reading.
#[derive(Debug, Clone)]
pub struct OpenRelease {
    store: Store,
    pub location: String,
    pub manifest: Manifest,
    /// sha256 of `manifest.json`: the release digest.
    pub digest: String,
    pub binding: Binding,
    pub routing: RoutingConfig,
}

impl OpenRelease {
    /// Opens the release at `location` (`{exports}/releases/{version}/`). A published release
    /// must match its marker's digest; a draft is opened only with `allow_draft`, and must
    /// then match its signoff when it has one.
    pub fn open(store: &Store, location: &str, allow_draft: bool) -> Result<Self, ConsumeError> {
        let version = location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let key = layout::MANIFEST.at(location);
        let bytes = match store.get_bytes(&key) {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(ConsumeError::NotBuilt { key, version });
            }
            Err(e) => return Err(e.into()),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ConsumeError::BadManifest {
                key: key.clone(),
                detail: format!(
                    "{:?} error at line {}, column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            })?;
        let digest = sha256(&bytes);
        let binding = bind(store, location, &version, &digest, allow_draft)?;
        let routing_key = layout::ROUTING_CONFIG.at(location);
        let routing: RoutingConfig = match store.get_bytes(&routing_key) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ConsumeError::BadRouting {
                key: routing_key.clone(),
                detail: format!("{:?} error at line {}", e.classify(), e.line()),
            })?,
            Err(StoreError::NotFound { .. }) => {
                return Err(ConsumeError::BadRouting {
                    key: routing_key,
                    detail: "missing".into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            store: store.clone(),
            location: location.to_string(),
            manifest,
            digest,
            binding,
            routing,
        })
    }

    /// The shards of a split, in manifest order.
    pub fn shards(&self, split: Split) -> &[ManifestShard] {
        self.manifest
            .contents
            .iter()
            .find(|c| c.split == split)
            .map_or(&[], |c| c.shards.as_slice())
    }

    /// Reads one shard whole and verifies its sha256 and record count.
    pub fn verified_shard(&self, shard: &ManifestShard) -> Result<Bytes, ConsumeError> {
        let bytes = match self.store.get_bytes(&shard.key) {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(ConsumeError::MissingShard {
                    key: shard.key.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        verify(shard, &bytes)?;
        Ok(bytes)
    }

    /// The split's records, each from a shard verified before any of its records is given.
    pub fn records(&self, split: Split) -> impl Iterator<Item = Result<Record, ConsumeError>> + '_ {
        self.shards(split).iter().flat_map(move |shard| {
            let lines: Vec<Result<Record, ConsumeError>> = match self.verified_shard(shard) {
                Err(e) => vec![Err(e)],
                Ok(bytes) => bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                    .map(|(i, line)| {
                        Record::parse(line, split, &format!("{}:{}", shard.key, i + 1))
                    })
                    .collect(),
            };
            lines
        })
    }

    /// The split's records of one curriculum stage.
    pub fn stage_records<'a>(
        &'a self,
        split: Split,
        stage: &'a str,
    ) -> impl Iterator<Item = Result<Record, ConsumeError>> + 'a {
        self.records(split)
            .filter(move |r| r.as_ref().map_or(true, |r| r.metadata.stage == stage))
    }
}

/// Checks a shard's bytes against the manifest.
pub(super) fn verify(shard: &ManifestShard, bytes: &[u8]) -> Result<(), ConsumeError> {
    let actual = sha256(bytes);
    if actual != shard.sha256 {
        return Err(ConsumeError::ShardMismatch {
            key: shard.key.clone(),
            what: format!(
                "sha256 is {actual}, the manifest says {} (damaged or replaced)",
                shard.sha256
            ),
        });
    }
    let lines = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    if lines != shard.records {
        return Err(ConsumeError::ShardMismatch {
            key: shard.key.clone(),
            what: format!("{lines} records, the manifest says {}", shard.records),
        });
    }
    Ok(())
}

fn bind(
    store: &Store,
    location: &str,
    version: &str,
    digest: &str,
    allow_draft: bool,
) -> Result<Binding, ConsumeError> {
    #[derive(Deserialize)]
    struct Bound {
        release_digest: String,
    }
    let check = |key: String, against: &str| -> Result<bool, ConsumeError> {
        match store.get_bytes(&key) {
            Ok(b) => {
                let bound: Bound = serde_json::from_slice(&b)
                    .map_err(|_| ConsumeError::BadMarker { key: key.clone() })?;
                if bound.release_digest == digest {
                    Ok(true)
                } else {
                    Err(ConsumeError::DigestMismatch {
                        actual: digest.to_string(),
                        expected: bound.release_digest,
                        against: format!("{against} {key}"),
                    })
                }
            }
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    let marker = layout::PUBLISHED_MARKER.at(location);
    if check(marker.clone(), "the publication marker")? {
        return Ok(Binding::Published);
    }
    if !allow_draft {
        return Err(ConsumeError::NotPublished {
            version: version.to_string(),
            marker,
        });
    }
    if check(layout::SIGNOFF_RECORD.at(location), "the signoff")? {
        return Ok(Binding::Signoff);
    }
    Ok(Binding::Unbound)
}
