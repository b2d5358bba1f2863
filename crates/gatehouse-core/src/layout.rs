//! Where everything lives in the store: the release folder and every file name in it, the
//! blocklists beside the releases, and gatehouse's own bookkeeping (audit logs, resume
//! stamps, the doctor's canary). A leaf module: it imports nothing of the crate, and no other
//! module spells one of these names.
//!
//! Keys are built from a release folder's `location` (`{exports}/releases/{version}/`, with
//! its trailing slash) and a [`File`] constant: `layout::MANIFEST.at(&location)`.

/// The folder of every release.
pub const RELEASES: &str = "releases";

/// `{exports}/releases/{version}/`: one release's folder (with its trailing slash).
pub fn release_location(exports_prefix: &str, version: &str) -> String {
    format!("{exports_prefix}/{RELEASES}/{version}/")
}

/// `{exports}/work/{version}/`: a build's intermediate objects when its map runs in other
/// processes (one fragment per source object); never part of a release, and removed when
/// the build that wrote them completes.
pub fn work_location(exports_prefix: &str, version: &str) -> String {
    format!("{exports_prefix}/work/{version}/")
}

/// The map fragment of the source object at `index` in key order: its mapped lines and
/// its shingle sets. Named by the object's place, never by the worker that wrote it.
pub fn map_fragment(work: &str, index: usize) -> (String, String) {
    (
        format!("{work}map/{index:08}.lines"),
        format!("{work}map/{index:08}.shingles"),
    )
}

/// `{exports}/releases/`: where every release's folder is.
pub fn releases_prefix(exports_prefix: &str) -> String {
    format!("{exports_prefix}/{RELEASES}/")
}

/// The version of a release whose completion marker is `key`
/// (`{exports}/releases/{version}/_PUBLISHED`), if `key` is one.
pub fn published_version<'a>(exports_prefix: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(exports_prefix)?
        .strip_prefix('/')?
        .strip_prefix(RELEASES)?
        .strip_prefix('/')?
        .strip_suffix(PUBLISHED_MARKER.name)?
        .strip_suffix('/')
        .filter(|v| !v.is_empty() && !v.contains('/'))
}

/// A file of a release, named relative to its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File {
    name: &'static str,
}

impl File {
    const fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// The name relative to the release folder, e.g. `gates/distribution_report.json`.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The key of this file in the release at `location` (`{exports}/releases/{version}/`).
    pub fn at(self, location: &str) -> String {
        format!("{location}{}", self.name)
    }
}

// Coverage and build.
pub const COVERAGE_REPORT: File = File::new("coverage_report.json");
pub const COVERAGE_REPORT_MD: File = File::new("coverage_report.md");
/// Its sha256 is the release digest.
pub const MANIFEST: File = File::new("manifest.json");
pub const COMPILED_EXPORT: File = File::new("compiled_export.jsonl");
pub const QUARANTINE: File = File::new("quarantine.jsonl");
pub const DEDUP_REMOVED: File = File::new("dedup_removed.jsonl");
pub const BUILD_REPORT: File = File::new("build_report.json");
pub const ROUTING_CONFIG: File = File::new("routing_config.json");
/// The folder of the shards: `shards/{split}/part-NNNNN.{jsonl,parquet}`.
pub const SHARDS: File = File::new("shards/");

/// `shards/{split}/` in the release at `location`.
pub fn shard_prefix(location: &str, split: &str) -> String {
    format!("{}{split}/", SHARDS.at(location))
}

/// The `index`th JSONL shard under a split's `prefix` (from [`shard_prefix`]).
pub fn shard_key(prefix: &str, index: usize) -> String {
    format!("{prefix}part-{index:05}.jsonl")
}

// Gates.
pub const PII_REPORT: File = File::new("gates/pii_detection_report.json");
pub const PII_SPOT_CHECK_SAMPLE: File = File::new("gates/pii_spot_check_sample.jsonl");
pub const PROVENANCE_REPORT: File = File::new("gates/provenance_validation_report.json");
pub const DEDUP_REPORT: File = File::new("gates/deduplication_report.json");
pub const LEAKAGE_REPORT: File = File::new("gates/cross_split_leakage_report.json");
pub const DISTRIBUTION_REPORT: File = File::new("gates/distribution_report.json");
/// The gates' reports, in the order they are run and shown.
pub const GATE_REPORTS: [File; 5] = [
    PII_REPORT,
    PROVENANCE_REPORT,
    DEDUP_REPORT,
    LEAKAGE_REPORT,
    DISTRIBUTION_REPORT,
];
pub const COMBINED_GATE_REPORT: File = File::new("gates/combined_gate_report.json");
/// Every report of the release rendered as one page.
pub const REPORT_HTML: File = File::new("report.html");

// Human QA.
/// The folder of the QA files.
pub const QA: File = File::new("qa/");
pub const QA_SAMPLES: File = File::new("qa/qa_samples.json");
pub const REVIEW_TEMPLATE: File = File::new("qa/review_template.json");
pub const REVIEW_TEMPLATE_CSV: File = File::new("qa/review_template.csv");
pub const REVIEWERS: File = File::new("qa/reviewers.json");
pub const REVIEWS: File = File::new("qa/reviews/");
pub const REVIEW_PROOFS: File = File::new("qa/review_proofs/");
pub const SIGNOFF_RECORD: File = File::new("qa/signoff_record.json");
pub const QA_BLOCKLIST: File = File::new("qa/blocklist.json");

// Consumption and publication.
pub const CONSUMPTION_TEST: File = File::new("tests/training_consumption_test.json");
pub const RELEASE_NOTES: File = File::new("release_notes.json");
pub const RELEASE_NOTES_MD: File = File::new("release_notes.md");
pub const RELEASE_SUMMARY: File = File::new("release_summary.json");
/// The Hugging Face dataset card.
pub const DATASET_CARD: File = File::new("README.md");
pub const CROISSANT: File = File::new("croissant.json");
/// The create-only completion marker: a release is published when, and only when, it exists.
pub const PUBLISHED_MARKER: File = File::new("_PUBLISHED");

/// `{exports}/blocklists/`: reviewers' blocklists, read by every build.
pub fn blocklists_prefix(exports_prefix: &str) -> String {
    format!("{exports_prefix}/{BLOCKLISTS}/")
}

/// The folder name of [`blocklists_prefix`].
pub const BLOCKLISTS: &str = "blocklists";

/// `{exports}/_gatehouse/audit/{version}/`: the audit logs of one version's runs.
pub fn audit_prefix(exports_prefix: &str, version: &str) -> String {
    format!("{exports_prefix}/_gatehouse/audit/{version}/")
}

/// `{exports}/_gatehouse/resume/{version}/{stage}.json`: a stage's resume stamp.
pub fn resume_stamp(exports_prefix: &str, version: &str, stage: &str) -> String {
    format!("{exports_prefix}/_gatehouse/resume/{version}/{stage}.json")
}

/// `{exports}/_gatehouse/consume/{version}/training_consumption_test.json`: the report of a
/// consumption test run on a release that is not a draft gatehouse writes into.
pub fn consumption_scratch(exports_prefix: &str, version: &str) -> String {
    format!("{exports_prefix}/_gatehouse/consume/{version}/training_consumption_test.json")
}

/// `{exports}/_gatehouse/doctor/`: where `doctor` writes (and deletes) its canaries.
pub fn doctor_prefix(exports_prefix: &str) -> String {
    format!("{exports_prefix}/_gatehouse/doctor/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_built_under_the_release_folder() {
        let loc = release_location("exports", "v1");
        assert_eq!(loc, "exports/releases/v1/");
        assert_eq!(MANIFEST.at(&loc), "exports/releases/v1/manifest.json");
        assert_eq!(
            SIGNOFF_RECORD.at(&loc),
            "exports/releases/v1/qa/signoff_record.json"
        );
        let shards = shard_prefix(&loc, "train");
        assert_eq!(shards, "exports/releases/v1/shards/train/");
        assert_eq!(
            shard_key(&shards, 3),
            "exports/releases/v1/shards/train/part-00003.jsonl"
        );
    }

    #[test]
    fn a_published_marker_names_its_version() {
        assert_eq!(
            published_version("exports", "exports/releases/v1/_PUBLISHED"),
            Some("v1")
        );
        assert_eq!(
            published_version("exports", "exports/releases/v1/x/_PUBLISHED"),
            None
        );
        assert_eq!(published_version("exports", "exports/releases/v1/a"), None);
        assert_eq!(
            published_version("other", "exports/releases/v1/_PUBLISHED"),
            None
        );
    }
}
