//! The registry of finding codes: every code any stage reports, declared once with its
//! documentation.
//!
//! A [`Code`] is a finding's identity on the wire (`code` and `name` in every report, and
//! what waivers name) together with what it means and, where there is advice, what to do.
//! Stages report findings by these constants (`tally.add(&EXACT_DUPLICATE, …)`,
//! `Finding::new(&REGISTRY_CHANGED, …)`), never by spelling an id. The README's tables of
//! codes are rendered from here ([`readme`], `cargo xtask docs`), and a test fails when they
//! are stale.
//!
//! The registry sits in the bottom layer, next to [`Finding`](super::Finding): it imports no
//! stage. The codes are grouped by [`Area`], one module per area; each module's `ALL` lists
//! its codes in the order the README shows them, and is written by the same macro that
//! declares them, so a code cannot be declared without being listed.
//!
//! Ids and names are wire format: never renumber, rename or reuse one. A new code takes the
//! next free number of its area.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

pub mod readme;

/// A finding code and its documentation.
///
/// Two codes are the same code when their id and name are equal. One id with several names
/// is a single finding told apart by name on the wire (only `CON005` is, for historical
/// reasons): such codes are declared next to each other with [`Code::named`], and the
/// README shows them as one row.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    /// Stable id: the area's prefix and three digits, e.g. `DUP001`.
    pub id: &'static str,
    /// Stable kebab-case name written next to the id in reports, e.g.
    /// `exact-duplicate-in-export`.
    pub name: &'static str,
    /// The stage or gate that reports it, which is also its README table.
    pub area: Area,
    /// What it means: one line of Markdown, the README's row.
    pub summary: &'static str,
    /// What to do about it, when there is advice: one line of Markdown.
    pub action: Option<&'static str>,
}

impl Code {
    pub const fn new(
        area: Area,
        id: &'static str,
        name: &'static str,
        summary: &'static str,
    ) -> Code {
        Code {
            id,
            name,
            area,
            summary,
            action: None,
        }
    }

    /// The same code with advice on what to do.
    pub const fn with_action(self, action: &'static str) -> Code {
        Code {
            action: Some(action),
            ..self
        }
    }

    /// The same finding (id, meaning, advice) under another name.
    pub const fn named(self, name: &'static str) -> Code {
        Code { name, ..self }
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        (self.id, self.name) == (other.id, other.name)
    }
}

impl Eq for Code {}

impl Hash for Code {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.id, self.name).hash(state);
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By id, then name: the order of a report's `counts` and `locators`.
impl Ord for Code {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.id, self.name).cmp(&(other.id, other.name))
    }
}

/// Which stage or gate reports a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// `gatehouse coverage`: what the store holds against the registry.
    Coverage,
    /// The build's quarantine (`quarantine.jsonl`): records that could not be adapted.
    Quarantine,
    Privacy,
    Provenance,
    Dedup,
    Leakage,
    Distribution,
    /// The export's integrity, checked while every gate reads the shards: fails them all.
    Export,
    /// `gatehouse consume`: the training-consumption test.
    Consume,
}

impl Area {
    pub const ALL: [Area; 9] = [
        Area::Coverage,
        Area::Quarantine,
        Area::Privacy,
        Area::Provenance,
        Area::Dedup,
        Area::Leakage,
        Area::Distribution,
        Area::Export,
        Area::Consume,
    ];

    /// The letters every id of the area starts with.
    pub const fn prefix(self) -> &'static str {
        match self {
            Area::Coverage => "COV",
            Area::Quarantine => "Q",
            Area::Privacy => "PII",
            Area::Provenance => "PRV",
            Area::Dedup => "DUP",
            Area::Leakage => "LEAK",
            Area::Distribution => "DIST",
            Area::Export => "EXP",
            Area::Consume => "CON",
        }
    }

    /// The gate whose report holds the area's findings (`all` for the export's integrity),
    /// or the stage's name.
    pub const fn label(self) -> &'static str {
        match self {
            Area::Coverage => "coverage",
            Area::Quarantine => "quarantine",
            Area::Privacy => "privacy",
            Area::Provenance => "provenance",
            Area::Dedup => "dedup",
            Area::Leakage => "leakage",
            Area::Distribution => "distribution",
            Area::Export => "all",
            Area::Consume => "consume",
        }
    }

    /// The area's codes, in documentation order.
    pub const fn codes(self) -> &'static [&'static Code] {
        match self {
            Area::Coverage => coverage::ALL,
            Area::Quarantine => quarantine::ALL,
            Area::Privacy => privacy::ALL,
            Area::Provenance => provenance::ALL,
            Area::Dedup => dedup::ALL,
            Area::Leakage => leakage::ALL,
            Area::Distribution => distribution::ALL,
            Area::Export => export::ALL,
            Area::Consume => consume::ALL,
        }
    }
}

/// Every code, area by area, in documentation order.
pub fn all() -> impl Iterator<Item = &'static Code> {
    Area::ALL
        .into_iter()
        .flat_map(|area| area.codes().iter().copied())
}

/// Declares an area's codes as constants and lists them, in order, in the area's `ALL`.
macro_rules! codes {
    ($( $(#[$attr:meta])* $konst:ident = $code:expr; )*) => {
        $( $(#[$attr])* pub const $konst: Code = $code; )*

        /// This area's codes, in the order the README lists them.
        pub const ALL: &[&Code] = &[$(&$konst),*];
    };
}

/// `gatehouse coverage` (`coverage_report.json`).
pub mod coverage {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Coverage, id, name, summary)
    }

    codes! {
        REQUIRED_FAMILY_MISSING = code("COV001", "required-family-missing",
            "a required family has no objects (error, exit 1, unless waived)");
        FAMILY_PARTIAL = code("COV002", "family-partial",
            "some datasets of a family have objects, others none (warning for a required family, info otherwise)");
        DATASET_EMPTY = code("COV003", "dataset-no-objects",
            "a dataset's patterns match no object (warning)");
        UNMAPPED_OBJECTS = code("COV004", "unmapped-objects",
            "objects no dataset claims (warning): unmapped objects are excluded, never defaulted into a family");
        MISSING_LICENCE = code("COV005", "dataset-missing-licence",
            "a dataset has no `license_tag` (warning here; the build excludes it and the provenance gate will fail)");
        MISSING_PROVENANCE = code("COV006", "dataset-missing-provenance",
            "a dataset has no provenance (warning here; the build excludes it and the provenance gate will fail)");
        OPTIONAL_FAMILY_MISSING = code("COV007", "optional-family-missing",
            "an optional family has no objects (info)");
        UNUSABLE_KEYS = code("COV008", "unusable-keys",
            "objects whose keys gatehouse cannot read back (a tab, newline, ESC or other control character, an empty or `.`/`..` segment; on local disk also `name#123`, which object_store reserves) are named, escaped (`\\t`, `\\u{1b}`), and excluded; nothing else stops (warning)");
    }
}

/// Why the build quarantined a record (`quarantine.jsonl`, by `key` and `line`); see
/// `source::Reason`, whose codes and names these are.
pub mod quarantine {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Quarantine, id, name, summary)
    }

    codes! {
        INVALID_UTF8 = code("Q001", "invalid-utf8",
            "a record, CSV cell or transcript is not valid UTF-8");
        INVALID_JSON = code("Q002", "invalid-json", "a record is not valid JSON");
        NOT_AN_OBJECT = code("Q003", "not-an-object", "a record is not a JSON object");
        MISSING_FIELD = code("Q004", "missing-field",
            "a field the registry maps is missing (or a `group_by` cell is empty)");
        WRONG_TYPE = code("Q005", "wrong-type",
            "a mapped field is not of the expected type (text, a list; a Parquet column of a type gatehouse does not read)");
        UNKNOWN_ROLE = code("Q006", "unknown-role",
            "a speaker or role that `speaker_roles` does not map (or text before a transcript's first speaker label)");
        EMPTY_CONVERSATION = code("Q007", "empty-conversation", "the conversation has no non-empty turn");
        NO_ASSISTANT_TURN = code("Q008", "no-assistant-turn", "the conversation has no assistant turn");
        OVERSIZED_RECORD = code("Q009", "oversized-record",
            "a record (line, array element, CSV row) longer than `max_record_bytes`");
        BROKEN_STRUCTURE = code("Q010", "broken-structure",
            "the object could not be read to its end: its source fails the build");
        CONFLICTING_ROWS = code("Q011", "conflicting-rows",
            "two rows of an utterance CSV share an utterance index with different text or speaker");
        INVALID_CSV_ROW = code("Q012", "invalid-csv-row",
            "a CSV row with the wrong number of cells, without a configured cell, or with text after a closing quote");
        DUPLICATE_KEY = code("Q013", "duplicate-key",
            "a JSON object, at any depth, has the same key twice: readers disagree on which value counts");
        PII_REDACTION_UNSETTLED = code("Q014", "pii-redaction-unsettled",
            "set by the build: a scan of the redacted record still found identifiers after the redaction's last round, so it is withheld rather than exported half-redacted; counted in `build_report.json` `privacy.records_unsettled`");
    }
}

/// The privacy gate (`gates/pii_detection_report.json`). The ids and names of detections
/// are the detector's ([`PiiType::code`], [`PiiType::name`]).
pub mod privacy {
    use super::{Area, Code};
    use gatehouse_text::pii::PiiType;

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Privacy, id, name, summary)
    }

    const fn detection(kind: PiiType, summary: &'static str) -> Code {
        code(kind.code(), kind.name(), summary)
    }

    codes! {
        EMAIL = detection(PiiType::Email, "a detection in the export: an email address");
        PHONE = detection(PiiType::Phone, "a detection in the export: a phone number");
        SSN = detection(PiiType::Ssn, "a detection in the export: a US social security number");
        CARD = detection(PiiType::Card, "a detection in the export: a payment card number");
        IP = detection(PiiType::Ip, "a detection in the export: an IP address");
        ADDRESS = detection(PiiType::Address, "a detection in the export: a street address");
        DOB = detection(PiiType::Dob, "a detection in the export: a date of birth");
        ID_NUMBER = detection(PiiType::IdNumber,
            "a detection in the export: a record or licence number");
        URL = detection(PiiType::Url, "a detection in the export: a personal URL");
        HANDLE = detection(PiiType::Handle, "a detection in the export: a handle");
        NAME = detection(PiiType::Name, "a detection in the export: a person name");
        PII_STATUS = code("PII012", "pii-status-not-verified",
            "`pii_status` missing or not `none_detected`/`scrubbed`");
        IBAN = detection(PiiType::Iban, "a detection in the export: an IBAN");
        DATE = detection(PiiType::Date,
            "a detection in the export: a date (only with `[privacy] dates = \"all\"`)");
        AGE = detection(PiiType::Age,
            "a detection in the export: an age over 89 (only with `[privacy] dates = \"all\"`)");
        RECALL_BELOW_MINIMUM = code("PII016", "measured-recall-below-minimum",
            "a labelled set's measured direct-identifier recall is below `[privacy.evaluation] min_recall_direct` (subject: the set's key)");
        PRECISION_BELOW_MINIMUM = code("PII017", "measured-precision-below-minimum",
            "a labelled set's measured precision is below `min_precision`");
        EVALUATION_SET_UNREADABLE = code("PII018", "evaluation-set-unreadable",
            "a labelled set is missing, unreadable, or has a line that is not a labelled document (subject: `key:line`)");
    }

    /// The code of a detection of `kind`.
    pub const fn detected(kind: PiiType) -> &'static Code {
        match kind {
            PiiType::Email => &EMAIL,
            PiiType::Phone => &PHONE,
            PiiType::Ssn => &SSN,
            PiiType::Card => &CARD,
            PiiType::Ip => &IP,
            PiiType::Address => &ADDRESS,
            PiiType::Dob => &DOB,
            PiiType::IdNumber => &ID_NUMBER,
            PiiType::Url => &URL,
            PiiType::Handle => &HANDLE,
            PiiType::Name => &NAME,
            PiiType::Iban => &IBAN,
            PiiType::Date => &DATE,
            PiiType::Age => &AGE,
        }
    }
}

/// The provenance gate (`gates/provenance_validation_report.json`).
pub mod provenance {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Provenance, id, name, summary)
    }

    codes! {
        FIELD_MISSING = code("PRV001", "provenance-field-missing",
            "id, dataset, source key or line, licence tag, source sha256 or pipeline missing");
        UNKNOWN_DATASET = code("PRV002", "dataset-not-in-registry",
            "dataset not in the registry");
        LICENCE_MISMATCH = code("PRV003", "licence-tag-mismatch",
            "licence tag differs from the registry's");
        SOURCE_NOT_IN_MANIFEST = code("PRV004", "source-not-in-manifest",
            "source key not among the manifest's inputs (or under another dataset)");
        SOURCE_DIGEST_MISMATCH = code("PRV005", "source-digest-mismatch",
            "source sha256 differs from the manifest's digest of the source");
        DATASET_UNLICENSED = code("PRV006", "dataset-without-licence-or-provenance",
            "a registry dataset has no licence or provenance (excluded; fails unless waived)");
        EXCLUDED_DATASET_EXPORTED = code("PRV007", "excluded-dataset-exported",
            "a record of such a dataset is in the export");
        REGISTRY_CHANGED = code("PRV008", "registry-changed-since-build",
            "the registry changed since the build (rebuild)");
    }
}

/// The dedup gate (`gates/dedup_report.json`).
pub mod dedup {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Dedup, id, name, summary)
    }

    codes! {
        EXACT_DUPLICATE = code("DUP001", "exact-duplicate-in-export",
            "an exact duplicate left in the export (blocking; the locator names the first copy)");
        NEAR_DUPLICATE = code("DUP002", "near-duplicate-in-export",
            "a near duplicate left in the export (warning; Jaccard and the representative)");
    }
}

/// The leakage gate (`gates/leakage_report.json`).
pub mod leakage {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Leakage, id, name, summary)
    }

    codes! {
        HOLDOUT_LEAK = code("LEAK001", "cross-split-pair-with-holdout",
            "an exact or near pair across splits touching a holdout family (`strict`, `test_only`)");
        SPLIT_LEAK = code("LEAK002", "cross-split-pair",
            "an exact or near pair across splits between other families (blocking; `[gates.leakage] non_holdout = \"warn\"` makes it a warning)");
        TOO_MANY_CANDIDATES = code("LEAK003", "candidates-over-limit",
            "more LSH candidate pairs than `max_candidates`: nothing near verified, no certificate");
        NO_SPLIT = code("LEAK004", "record-without-split",
            "a record without a valid `metadata.split`");
    }
}

/// The distribution gate (`gates/distribution_report.json`).
pub mod distribution {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Distribution, id, name, summary)
    }

    codes! {
        OUT_OF_RANGE = code("DIST001", "outside-expected-range",
            "a family's tokens mean/max or turns mean/max outside its expected range");
        NEAR_BOUND = code("DIST002", "near-expected-bound",
            "less than `warning_margin` inside a bound (warning)");
        MEAN_REGRESSION = code("DIST003", "mean-regression",
            "a token or turn mean moved more than `max_relative_change` from the last published release");
        SHAPE_REGRESSION = code("DIST004", "distribution-shift",
            "the token histogram shifted (PSI over `max_psi`)");
        NO_BASELINE = code("DIST005", "no-published-baseline",
            "no published release to compare with: the first release (info)");
        NO_RANGES = code("DIST006", "no-expected-ranges",
            "a family has no expected ranges (info; `priority_datasets` by default)");
        BAD_BASELINE = code("DIST007", "baseline-unreadable",
            "the last published release has no readable distribution report (blocking)");
    }
}

/// The export's integrity, found while the gates read the shards; in every gate's report.
pub mod export {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Export, id, name, summary)
    }

    codes! {
        SHARD_MISSING = code("EXP001", "shard-missing", "a shard the manifest lists is missing");
        RECORD_UNREADABLE = code("EXP002", "record-unreadable",
            "a line is unreadable (by `shard:line`)");
        SHARD_DIGEST_MISMATCH = code("EXP003", "shard-digest-mismatch",
            "a shard's sha256 differs from the manifest");
        SHARD_COUNT_MISMATCH = code("EXP004", "shard-count-mismatch",
            "a shard's record count differs from the manifest");
    }
}

/// `gatehouse consume` (`consume_report.json`).
pub mod consume {
    use super::{Area, Code};

    const fn code(id: &'static str, name: &'static str, summary: &'static str) -> Code {
        Code::new(Area::Consume, id, name, summary)
    }

    codes! {
        SHARD_MISSING = code("CON001", "shard-missing", "a shard is missing")
            .with_action("restore it from a copy whose sha256 matches the manifest, or rebuild");
        SHARD_NOT_AS_MANIFEST = code("CON002", "shard-not-as-manifest",
            "a shard's sha256 or record count differs from the manifest")
            .with_action("do not train on it; rebuild or restore");
        NOT_A_CONTRACT_RECORD = code("CON004", "not-a-contract-record",
            "a line is not a record of the export contract (`shard:line`)")
            .with_action("rebuild; the export was edited or damaged");
        /// The routing config names a family with no records in the manifest.
        ROUTING_FAMILY_NOT_IN_RELEASE = code("CON005", "routing-family-not-in-release",
            "the routing config names a family not in the release, misses one, or a training record's family has no stage")
            .with_action("rebuild (the routing config is generated from the manifest)");
        /// A family of the manifest has no weight in the routing config.
        RELEASE_FAMILY_NOT_ROUTED = ROUTING_FAMILY_NOT_IN_RELEASE.named("release-family-not-routed");
        /// A family is in the routing config's families or its stages, not both.
        ROUTING_STAGE_MISMATCH = ROUTING_FAMILY_NOT_IN_RELEASE.named("routing-stage-mismatch");
        /// Training records whose family is in no stage.
        RECORDS_NOT_ROUTED = ROUTING_FAMILY_NOT_IN_RELEASE.named("records-not-routed");
        WEIGHTS_NOT_NORMALISED = code("CON006", "weights-not-normalised",
            "routing weights do not sum to 1")
            .with_action("rebuild");
        TOKENIZER_DIFFERS = code("CON007", "tokenizer-differs",
            "the configured tokenizer is not the one the release was counted with")
            .with_action("use the release's tokenizer (`[build] tokenizer`)");
        DIGEST_UNBOUND = code("CON008", "digest-unbound", "a draft nothing binds yet (warning)")
            .with_action("run QA; publish");
        OVER_MAX_SEQ_LENGTH = code("CON009", "over-max-seq-length",
            "conversations over `max_seq_length` (warning, with locators)")
            .with_action("raise it, or expect training to truncate them");
        PARQUET_NOT_AS_MANIFEST = code("CON010", "parquet-not-as-manifest",
            "a Parquet twin is missing, differs from the manifest or is unreadable")
            .with_action("rebuild");
    }
}
