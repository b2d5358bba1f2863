//! Command-line interface definition (clap). Help text is written for someone who has never
//! used gatehouse.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gatehouse_core::config::{BackendKind, Overrides};

/// gatehouse turns raw mental-health conversation data in object storage into versioned,
/// gated, training-ready dataset releases.
///
/// Run `gatehouse release` from a directory with a gatehouse.toml (the repository root has
/// one for the bundled sample store). Store settings come from flags, then the environment
/// (DATASET_STORAGE_BACKEND, OVH_S3_* / AWS_* / DATASET_S3_*, DATASET_STORAGE_LOCAL_PATH,
/// DATASET_EXPORTS_PREFIX), then gatehouse.toml. `gatehouse doctor` shows what was resolved.
///
/// Exit codes: 0 success, 1 blocked by a gate or a coverage gap, 2 gatehouse could not do
/// its job (bad configuration, store unreachable, …), 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file [default: ./gatehouse.toml if present; env: GATEHOUSE_CONFIG]
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Registry file [default: from the config file; env: GATEHOUSE_REGISTRY]
    #[arg(long, global = true, value_name = "PATH")]
    pub registry: Option<PathBuf>,
    /// Storage backend, `local` or `s3` [env: DATASET_STORAGE_BACKEND]
    #[arg(long, global = true, value_name = "KIND")]
    pub backend: Option<BackendKind>,
    /// Root directory of the local backend [env: DATASET_STORAGE_LOCAL_PATH]
    #[arg(long, global = true, value_name = "DIR")]
    pub local_path: Option<PathBuf>,
    /// S3 bucket [env: OVH_S3_BUCKET, AWS_S3_BUCKET, DATASET_S3_BUCKET]
    #[arg(long, global = true, value_name = "NAME")]
    pub bucket: Option<String>,
    /// S3 endpoint URL, for OVH or any S3-compatible store [env: OVH_S3_ENDPOINT, AWS_ENDPOINT_URL, DATASET_S3_ENDPOINT]
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region [env: OVH_S3_REGION, AWS_REGION, DATASET_S3_REGION]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Key prefix releases are written under [env: DATASET_EXPORTS_PREFIX; default: exports]
    #[arg(long, global = true, value_name = "PREFIX")]
    pub exports_prefix: Option<String>,
    /// Tokenizer of the token counts: o200k_base, cl100k_base, or a model's tokenizer.json [default: [build] tokenizer, else o200k_base]
    #[arg(long, global = true, value_name = "NAME|FILE")]
    pub tokenizer: Option<String>,
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug) [env: GATEHOUSE_LOG]
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress display
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

impl Global {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            registry: self.registry.clone(),
            backend: self.backend,
            local_path: self.local_path.clone(),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            exports_prefix: self.exports_prefix.clone(),
            tokenizer: self.tokenizer.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the release pipeline: coverage → build → gates → qa → consume → publish.
    ///
    /// Writes every report into {exports}/releases/{version}/ in the store. After the gates
    /// it draws the human review packets and stops (exit 1) until reviewers sign off this
    /// exact manifest (`gatehouse qa …`); run it again after the signoff to test training
    /// consumption and publish (exit 0). A published version is never written again.
    ///
    /// The build, the gates and the consumption test are skipped when nothing they depend on
    /// changed since they last completed (--dry-run shows which and why; --no-resume runs
    /// all). Each run is recorded in a hash-chained audit log (`gatehouse audit verify`).
    Release(ReleaseArgs),
    /// Build the compiled ChatML export of a release (the draft's shards, manifest, routing
    /// config, build report and quarantine list), without the other stages.
    ///
    /// Every object of every dataset with a licence and provenance is read, adapted to
    /// ChatML, assigned to a split by its conversation group, and written to
    /// {exports}/releases/{version}/. Exits 1 when a source fails (too many quarantined
    /// records, or an object that cannot be read to its end).
    Build(BuildArgs),
    /// Verify a built release: the privacy, provenance, dedup, leakage and distribution
    /// gates over 100% of its export.
    ///
    /// Reads every shard the release's manifest lists once (checking each shard's sha256 and
    /// record count): scans every message for PII again, checks every record's provenance
    /// and licence, looks for duplicates left and for duplicates across splits, and
    /// measures turns and tokens against expected ranges and the last published release.
    /// Writes gates/*.json, a seeded PII spot-check sample and report.html into the
    /// release's folder. Reports hold counts and locators, never text. Exits 1 when a gate
    /// fails.
    Gates(GatesArgs),
    /// Human QA: review packets, reviews and the signoff of a built release.
    #[command(subcommand)]
    Qa(QaCommand),
    /// Load a release the way training will, and prove it loads.
    ///
    /// Opens the release by its store prefix only; checks the manifest's digest against its
    /// publication (or, with --draft, its QA signoff), every shard's sha256 and record count,
    /// every line against the export contract, and the routing config against the manifest;
    /// renders every conversation with the chat template ([consume] template, ChatML by
    /// default), tokenises it, counts those over max_seq_length, and builds curriculum
    /// batches. Writes tests/training_consumption_test.json. Exits 1 when a check fails.
    Consume(ConsumeArgs),
    /// Report which dataset families exist in the store, judged against the registry.
    ///
    /// Lists the store (nothing is downloaded), maps keys to datasets, families and stages,
    /// and reports each family as present, partial, missing or waived. Exits 1 when a
    /// required family is missing and not waived.
    Coverage(CoverageArgs),
    /// Check the configuration and the store: every setting (the checks `release` makes
    /// before its first stage), reachability, writes, and whether the store really refuses
    /// a second create-only write (needed for write-once publishing). Exits 2 when a setting
    /// is invalid or the store unusable, 1 when the store ignores create-only writes.
    Doctor,
    /// Validate the registry, import the prototype's dataset_registry.json, or propose entries
    /// for objects no dataset claims.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// The audit log of a release's runs: every object read or written, every stage,
    /// verdict, waiver, signoff and publication, hash-chained.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// PII detection: measure how well redaction works on your own labelled text.
    #[command(subcommand)]
    Pii(PiiCommand),
}

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Measure PII redaction on a labelled file: how much of what people marked as personal
    /// data the build would replace (recall), and how much of what it replaces was marked
    /// (precision).
    ///
    /// FILE is JSON Lines, one labelled document per line:
    ///
    ///   {"text": "Call me on 415-555-0132, I'm Dana.", "spans": [{"start": 11, "end": 23, "type": "PHONE"}, {"start": 29, "end": 33, "type": "PERSON"}]}
    ///
    /// `start` and `end` count Unicode code points (Python's str indices), end exclusive;
    /// `type` is your own label (PERSON, ADDRESS, PHONE, EMAIL, SSN, IBAN, ID, …; direct
    /// identifiers are marked * in the table). Each document is redacted exactly as the
    /// build redacts a message, with the [privacy] policy of gatehouse.toml (dates,
    /// disabled types). A label is caught when at least half of its characters were
    /// replaced; a replaced region is correct when it overlaps any label.
    ///
    /// Prints recall per labelled type and for direct identifiers together, precision per
    /// placeholder type and overall, each with its 95% Wilson interval, and F2 (recall
    /// weighs four times precision). Never prints the documents' text.
    ///
    /// Exit codes: 0 measured; 1 below a minimum (--min-recall-direct / --min-precision,
    /// else [privacy.evaluation] in gatehouse.toml); 2 the file cannot be read or a line is
    /// not a labelled document (the line number is named).
    Eval(PiiEvalArgs),
}

#[derive(Debug, Args)]
pub struct PiiEvalArgs {
    /// The labelled JSON Lines file
    pub file: PathBuf,
    /// Exit 1 when recall over direct identifiers is below R (0 to 1) [default: [privacy.evaluation] min_recall_direct]
    #[arg(long, value_name = "R")]
    pub min_recall_direct: Option<f64>,
    /// Exit 1 when precision is below P (0 to 1) [default: [privacy.evaluation] min_precision]
    #[arg(long, value_name = "P")]
    pub min_precision: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain of every run's audit log of a release (and the anchor its
    /// publication marker holds); exits 1 naming the first broken line when it was edited,
    /// reordered or cut.
    Verify(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
    /// Print the plan (each stage: run or skip, and why) and stop; nothing is written
    #[arg(long)]
    pub dry_run: bool,
    /// Run every stage, even those whose inputs and outputs are unchanged since they last
    /// completed (by default such stages are skipped)
    #[arg(long)]
    pub no_resume: bool,
    /// Keep going after a failed stage to collect every verdict (never publishes)
    #[arg(long)]
    pub no_fail_fast: bool,
    /// Publish even though the store ignores create-only writes (so it cannot stop a
    /// published version being overwritten); the reason is recorded in the marker and notes
    #[arg(long, value_name = "REASON")]
    pub allow_unenforced_store: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
    /// Consume an unpublished draft (bound by its QA signoff when it has one)
    #[arg(long)]
    pub draft: bool,
    /// Records per batch [default: [consume] batch_size, 32]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct GatesArgs {
    /// Release version to verify (built before with `gatehouse build`) [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QaCommand {
    /// Draw seeded, stratified review packets: whole redacted conversations per family ×
    /// split, with content warnings, for the review types each family needs.
    ///
    /// Writes qa/qa_samples.json and qa/review_template.json (a blank review per sample and
    /// review type, with the rubrics), both bound to the release digest.
    Sample(QaSampleArgs),
    /// Invite a reviewer: prints their secret sign-in link once (only its hash is stored)
    /// and assigns them samples of their review type.
    Invite(QaInviteArgs),
    /// Revoke a reviewer: their link stops working, a running `qa serve` ends their
    /// sessions at their next request, and their reviews no longer count in the signoff.
    Revoke(QaRevokeArgs),
    /// Make a reviewer's key pair: writes the private key to a file and prints the public key
    /// to register with `qa invite --public-key`. For reviewers who review offline.
    Keygen(QaKeygenArgs),
    /// Sign a review file with your private key: writes FILE.sig for `qa import`.
    Sign(QaSignArgs),
    /// Serve the reviewer web app: reviewers sign in with their link, read the redacted
    /// conversations assigned to them, score, comment, flag and submit.
    ///
    /// Listens on 127.0.0.1 by default; put it behind an HTTPS proxy (with --secure-cookie)
    /// to reach reviewers elsewhere. Stop it with Ctrl-C; saved work is in the store.
    Serve(QaServeArgs),
    /// Import reviews made elsewhere: a JSON file shaped like qa/review_template.json (with
    /// the reviewer's name and review type), or a CSV shaped like qa/review_template.csv,
    /// checked against the packets and rubrics.
    Import(QaImportArgs),
    /// Compute the signoff from every imported review: complete coverage per review type,
    /// rubric minimums, exceptions, inter-rater agreement, flagged records, and the privacy
    /// spot-check (every sampled record read; identifiers left, with the residual rate).
    ///
    /// Writes qa/signoff_record.json and qa/blocklist.json, bound to the release digest.
    /// Exits 1 unless the release is approved.
    Signoff(QaSignoffArgs),
}

#[derive(Debug, Args)]
pub struct QaInviteArgs {
    /// The reviewer's name, as it will appear in the signoff record
    #[arg(long)]
    pub name: String,
    /// Their review type
    #[arg(long, value_enum)]
    pub role: ReviewerType,
    /// Assign at most this many samples (those with the fewest reviewers of this type so
    /// far) [default: every sample of the type]
    #[arg(long, value_name = "N")]
    pub max_samples: Option<usize>,
    /// Where reviewers reach `gatehouse qa serve`, for the printed link
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The link stops working after this many days [default: `[qa] invitation_days`, else 14]
    #[arg(long, value_name = "DAYS")]
    pub expires_days: Option<u32>,
    /// The reviewer's public key (`ed25519:…`, from their `gatehouse qa keygen`): files
    /// imported in their name must then carry their signature
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct QaRevokeArgs {
    /// The reviewer's id (rv-…, as `qa invite` printed it; see qa/reviewers.json)
    #[arg(long, value_name = "ID")]
    pub reviewer: String,
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

/// A reviewer's review type.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReviewerType {
    /// Licensed clinician: foundation therapy conversations
    ClinicianFoundation,
    /// Crisis-trained clinician: crisis and edge-case conversations
    ClinicianEdge,
    /// Bias and cultural reviewer
    BiasCultural,
    /// Privacy spot-checker: marks identifiers the redaction left in the privacy gate's
    /// spot-check sample
    PrivacySpotCheck,
}

#[derive(Debug, Args)]
pub struct QaServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Sign a reviewer out after this many idle minutes
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub session_idle_minutes: u64,
    /// Sign a reviewer out this many hours after sign-in, however active
    #[arg(long, value_name = "HOURS", default_value_t = 12)]
    pub session_max_hours: u64,
    /// Mark the session cookie Secure (when served over HTTPS through a proxy)
    #[arg(long)]
    pub secure_cookie: bool,
    /// Close a connection whose request headers take longer than this (slow clients)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Close a connection with no traffic and no request in progress for this long
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Connections one client address may hold at once (more are closed at once)
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub max_connections_per_ip: usize,
    /// Connections the app holds at once (keep it under the open-file limit)
    #[arg(long, value_name = "N", default_value_t = 768)]
    pub max_connections: usize,
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct QaImportArgs {
    /// The reviewer's file: JSON, or CSV (by its .csv extension)
    pub file: PathBuf,
    /// The reviewer's signature of a JSON file (`gatehouse qa sign`) [default: FILE.sig when
    /// it exists]. Without one the reviews are recorded as attested by whoever runs this
    /// (GATEHOUSE_ACTOR or the login name) and count only with `[qa] count_attested = true`.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// Release version [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct QaKeygenArgs {
    /// Where to write the private key (created, never overwritten; keep it to yourself)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct QaSignArgs {
    /// The review file (JSON) to sign, exactly as it will be imported
    pub file: PathBuf,
    /// Your private key (from `gatehouse qa keygen`)
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct QaSampleArgs {
    /// Release version to sample (built before) [default: vYYYY-MM-DD, today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct QaSignoffArgs {
    /// Release version to sign off (its review packets drawn before) [default: vYYYY-MM-DD,
    /// today in UTC]
    #[arg(long, value_name = "VERSION")]
    pub release_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Also write coverage_report.json and coverage_report.md into this local directory
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Load and validate the registry; print its datasets and families.
    Check,
    /// Convert the prototype's dataset_registry.json into a gatehouse registry (TOML).
    ///
    /// Works from that file alone (paths, stages, types), never reads the store. Maps what it
    /// can and lists every decision a human must make. The prototype format has no licence or
    /// provenance, so imported datasets stay excluded until those are filled in. To map the
    /// objects themselves, use `registry suggest`.
    Import(ImportArgs),
    /// Propose registry entries for objects in the store that no dataset claims (COV004),
    /// from a bounded sample of each.
    ///
    /// Lists the store under PREFIX (default: all of it but the exports prefix), reads the
    /// first --max-bytes of each unclaimed object (at most --records records; for Parquet the
    /// footer and first row group), decompressing gzip/zstd, and recognises its shape: a list
    /// of turns under any key (role and text keys told by value types, speaker values mapped
    /// by common labels), one exchange per record (Context/Response, prompt/response, …),
    /// CSV columns or utterances, `Speaker: text` transcripts. Objects of one folder and shape
    /// share one entry.
    ///
    /// Prints a TOML entry per group to paste into the registry, with the format, fields and
    /// speaker_roles, then runs the build's own adapter over the sampled records and prints
    /// "adapts K of N sampled records" and the quarantine codes and reasons of the rest.
    /// Speaker values no common label maps, the family, licence and provenance, and any
    /// source_fields are left for you to decide (marked `decision needed`).
    ///
    /// Never writes to the store or the registry. Never prints record text: key names, value
    /// types, counts, and speaker values only when they look like labels.
    Suggest(SuggestArgs),
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// Key prefix to look under [default: the whole store, without the exports prefix]
    pub prefix: Option<String>,
    /// Bytes read from the start of each object (and kept after decompression)
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_bytes: u64,
    /// Records sampled per object
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub records: usize,
    /// Objects sampled per folder; the others are assumed to share their folder's shape
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_objects: usize,
    /// Bytes a Parquet file's footer and first row group may take
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_parquet_bytes: u64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The prototype's dataset_registry.json
    pub source: PathBuf,
    /// Where to write the registry [default: print to stdout]
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Overwrite --output if it exists
    #[arg(long)]
    pub force: bool,
}
