//! The contract: the wire types of a release, declared once. Every file gatehouse writes and
//! later reads back (the manifest and what it holds, the build's statements about dedup and
//! blocklists, the blocklist files, the routing config, the export record) is a type here that derives both `Serialize` and
//! `Deserialize`; the writer and every reader use the same type, so a field cannot be
//! renamed on one side only. Serialising what was read gives the same bytes back (tested).

pub mod build;
pub mod consume;
pub mod coverage;
pub mod gates;
pub mod manifest;
pub mod publish;
pub mod record;
pub mod routing;
pub mod signoff;
pub mod split;
pub mod store;

pub use build::{
    BlockedRecord, BlocklistFile, BlocklistSource, BlocklistSummary, BuildPrivacy, BuildReport,
    DedupSummary, Exclusion, FamilyDedup, ObjectReport, ShardInfo, Tally,
};
pub use manifest::{
    Artefact, InputObject, Manifest, RELEASE_DIGEST_NOTE, SCHEMA_VERSION, SplitContents, SplitInfo,
    TokensInfo, Tool,
};
pub use routing::{FamilyRoute, RoutingConfig, StageRoute};
pub use split::{Holdout, Ratios, Split};
