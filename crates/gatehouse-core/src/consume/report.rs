//! `gatehouse consume`: the consumption test and its report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::batches::{self, Item};
use super::open::{Binding, ConsumeError, ManifestShard, OpenRelease, Record};
use crate::build::split::Split;
use crate::report::codes::consume::{
    DIGEST_UNBOUND, NOT_A_CONTRACT_RECORD, OVER_MAX_SEQ_LENGTH, PARQUET_NOT_AS_MANIFEST,
    RECORDS_NOT_ROUTED, RELEASE_FAMILY_NOT_ROUTED, ROUTING_FAMILY_NOT_IN_RELEASE,
    ROUTING_STAGE_MISMATCH, SHARD_MISSING, SHARD_NOT_AS_MANIFEST, TOKENIZER_DIFFERS,
    WEIGHTS_NOT_NORMALISED,
};
use crate::report::{Code, Severity, Verdict, generated_by};
use gatehouse_text::{TokenCounter, TokenizerSpec};

pub use crate::contract::consume::{
    ConsumeFinding, ConsumeReport, RoutingCheck, ShardResult, SplitResult, Throughput,
};

/// Report schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// ChatML, the default chat template.
pub const CHATML: &str = "<|im_start|>{role}\n{content}<|im_end|>\n";

/// `[consume]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumeConfig {
    /// How one message is rendered; `{role}` and `{content}` are replaced. Default ChatML.
    pub template: String,
    /// Records per training batch.
    pub batch_size: usize,
    /// Rendered conversations longer than this many tokens are counted (and listed).
    pub max_seq_length: u64,
    /// Locators listed per finding.
    pub max_locators: usize,
}

impl ConsumeConfig {
    /// Every problem with `[consume]` (the template is parsed as the test will parse it).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.batch_size == 0 || self.max_seq_length == 0 {
            out.push("batch_size and max_seq_length must be at least 1".to_string());
        }
        if Template::parse(&self.template).is_err() {
            out.push("template must contain {content}".to_string());
        }
        out
    }
}

impl Default for ConsumeConfig {
    fn default() -> Self {
        Self {
            template: CHATML.to_string(),
            batch_size: 32,
            max_seq_length: 4096,
            max_locators: 20,
        }
    }
}

/// The template split at its placeholders, so message text is never searched for them.
#[derive(Debug, Clone)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Role,
    Content,
}

impl Template {
    fn parse(t: &str) -> Result<Self, ConsumeError> {
        if !t.contains("{content}") {
            return Err(ConsumeError::Config(
                "consume.template must contain {content}".into(),
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = t;
        while !rest.is_empty() {
            let next = [("{role}", Piece::Role), ("{content}", Piece::Content)]
                .into_iter()
                .filter_map(|(p, kind)| rest.find(p).map(|i| (i, p.len(), kind)))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, len, kind)) => {
                    if i > 0 {
                        pieces.push(Piece::Text(rest[..i].to_string()));
                    }
                    pieces.push(kind);
                    rest = &rest[i + len..];
                }
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        Ok(Self { pieces })
    }

    fn render(&self, r: &Record, out: &mut String) {
        out.clear();
        for m in &r.messages {
            for p in &self.pieces {
                match p {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Role => out.push_str(&m.role),
                    Piece::Content => out.push_str(&m.content),
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumeOutcome {
    pub report: ConsumeReport,
    pub written: Vec<String>,
}

/// What one shard gave.
struct ShardOut {
    result: ShardResult,
    tokens: u64,
    over: Vec<String>,
    over_count: u64,
    max_tokens: u64,
    items: Vec<Item>,
    error: Option<ConsumeError>,
    bad: Vec<ConsumeError>,
    bad_count: u64,
}

fn consume_shard(
    release: &OpenRelease,
    split: Split,
    shard: &ManifestShard,
    template: &Template,
    tokens: &TokenCounter,
    config: &ConsumeConfig,
) -> ShardOut {
    let mut out = ShardOut {
        result: ShardResult {
            key: shard.key.clone(),
            split,
            records: 0,
            bytes: 0,
            verified: false,
        },
        tokens: 0,
        over: Vec::new(),
        over_count: 0,
        max_tokens: 0,
        items: Vec::new(),
        error: None,
        bad: Vec::new(),
        bad_count: 0,
    };
    let bytes = match release.verified_shard(shard) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    out.result.verified = true;
    out.result.bytes = bytes.len() as u64;
    let mut rendered = String::new();
    for (i, line) in bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let at = format!("{}:{}", shard.key, i + 1);
        let record = match Record::parse(line, split, &at) {
            Ok(r) => r,
            Err(e) => {
                out.bad_count += 1;
                if out.bad.len() < config.max_locators {
                    out.bad.push(e);
                }
                continue;
            }
        };
        out.result.records += 1;
        template.render(&record, &mut rendered);
        let n = tokens.count(&rendered);
        out.tokens += n;
        out.max_tokens = out.max_tokens.max(n);
        if n > config.max_seq_length {
            out.over_count += 1;
            if out.over.len() < config.max_locators {
                out.over
                    .push(format!("{at} ({} tokens, id {})", n, record.id));
            }
        }
        if split == Split::Train {
            out.items.push(Item {
                id: record.id,
                family: record.metadata.source_family,
                tokens: n,
            });
        }
    }
    out
}

/// What is wrong with a Parquet twin, if anything.
fn parquet_problem(store: &crate::store::Store, shard: &ManifestShard) -> Option<String> {
    let bytes = match store.get_bytes(&shard.key) {
        Ok(b) => b,
        Err(crate::store::StoreError::NotFound { .. }) => {
            return Some(format!("{} is missing", shard.key));
        }
        Err(e) => return Some(format!("{}: {e}", shard.key)),
    };
    let actual = crate::digest::sha256(&bytes);
    if actual != shard.sha256 {
        return Some(format!(
            "{}: sha256 is {actual}, the manifest says {}",
            shard.key, shard.sha256
        ));
    }
    match crate::build::parquet::rows(bytes) {
        Ok(n) if n == shard.records => None,
        Ok(n) => Some(format!(
            "{}: {n} rows, the manifest says {}",
            shard.key, shard.records
        )),
        Err(e) => Some(format!("{}: not a readable Parquet file ({e})", shard.key)),
    }
}

fn finding(code: &Code, severity: Severity, message: String) -> ConsumeFinding {
    ConsumeFinding {
        code: code.id,
        name: code.name,
        severity,
        message,
        evidence: Vec::new(),
    }
}

/// Runs the consumption test over the release at `location` and writes its report.
pub fn run(
    store: &crate::store::Store,
    location: &str,
    config: &ConsumeConfig,
    tokenizer: &TokenizerSpec,
    allow_draft: bool,
) -> Result<ConsumeOutcome, ConsumeError> {
    if let Some(p) = config.problems().into_iter().next() {
        return Err(ConsumeError::Config(format!("consume.{p}")));
    }
    let template = Template::parse(&config.template)?;
    let tokens = tokenizer.counter().map_err(ConsumeError::Config)?;
    let started = Instant::now();
    let release = OpenRelease::open(store, location, allow_draft)?;
    let mut findings = binding_and_tokenizer(&release, &tokens);
    let routing = check_routing(&release, location, &mut findings);

    // Every shard, in parallel, verified before it is read.
    let jobs: Vec<(Split, &ManifestShard)> = release
        .manifest
        .contents
        .iter()
        .flat_map(|c| c.shards.iter().map(move |s| (c.split, s)))
        .collect();
    let outs: Vec<ShardOut> = jobs
        .par_iter()
        .map(|(split, shard)| consume_shard(&release, *split, shard, &template, &tokens, config))
        .collect();
    let read = Read::tally(outs, &mut findings);
    read.findings(config, &mut findings);
    let parquet_files_verified = check_parquet(store, &release, &mut findings);
    let records_read: u64 = read.splits.values().map(|s| s.records).sum();
    let tokens_read: u64 = read.splits.values().map(|s| s.tokens).sum();
    let plan = batches::plan(read.items, &release.routing, config.batch_size);
    if plan.unrouted_records > 0 {
        findings.push(finding(
            &RECORDS_NOT_ROUTED,
            Severity::Error,
            format!(
                "{} training record(s) belong to no stage of the routing config",
                plan.unrouted_records
            ),
        ));
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let report = ConsumeReport {
        schema_version: SCHEMA_VERSION,
        generated_by: generated_by(),
        release_version: release.manifest.release_version.clone(),
        release_digest: release.digest.clone(),
        digest_bound_by: release.binding,
        verdict: verdict(&findings),
        tokenizer: tokens.label(),
        chat_template: config.template.clone(),
        max_seq_length: config.max_seq_length,
        shards: read.shards,
        parquet_files_verified,
        splits: read.splits.into_values().collect(),
        routing,
        batches: plan,
        throughput: Throughput {
            seconds: (seconds * 1e3).round() / 1e3,
            records_per_second: (records_read as f64 / seconds).round(),
            megabytes_per_second: ((read.bytes as f64 / 1e6 / seconds) * 100.0).round() / 100.0,
            tokens_per_second: (tokens_read as f64 / seconds).round(),
        },
        findings,
    };
    let key = write_report(store, location, &release, &report)?;
    Ok(ConsumeOutcome {
        report,
        written: vec![key],
    })
}

/// What binds the digest, and whether the release was counted with the configured tokenizer.
fn binding_and_tokenizer(release: &OpenRelease, tokens: &TokenCounter) -> Vec<ConsumeFinding> {
    let mut findings = Vec::new();
    if release.binding == Binding::Unbound {
        findings.push(finding(
            &DIGEST_UNBOUND,
            Severity::Warning,
            "a draft without a signoff or publication: its digest is computed but nothing binds it yet".into(),
        ));
    }
    if tokens.label() != release.manifest.tokens.tokenizer {
        findings.push(finding(
            &TOKENIZER_DIFFERS,
            Severity::Error,
            format!(
                "the configured tokenizer is {}, the release was counted with {}: training would see different lengths",
                tokens.label(),
                release.manifest.tokens.tokenizer
            ),
        ));
    }
    findings
}

/// Routing: the same families as the manifest, weights normalised, stages consistent.
fn check_routing(
    release: &OpenRelease,
    location: &str,
    findings: &mut Vec<ConsumeFinding>,
) -> RoutingCheck {
    let in_manifest: BTreeSet<String> = release
        .manifest
        .contents
        .iter()
        .flat_map(|c| c.families.keys().cloned())
        .collect();
    let in_routing: BTreeSet<String> = release
        .routing
        .families
        .iter()
        .map(|f| f.family.clone())
        .collect();
    let weights_sum: f64 = release.routing.families.iter().map(|f| f.weight).sum();
    let staged: BTreeSet<String> = release
        .routing
        .stages
        .iter()
        .flat_map(|s| s.families.iter().cloned())
        .collect();
    let mut consistent = true;
    for f in in_routing.difference(&in_manifest) {
        consistent = false;
        findings.push(finding(
            &ROUTING_FAMILY_NOT_IN_RELEASE,
            Severity::Error,
            format!(
                "{} names family {f}, which has no records in the manifest",
                crate::layout::ROUTING_CONFIG.at(location)
            ),
        ));
    }
    for f in in_manifest.difference(&in_routing) {
        consistent = false;
        findings.push(finding(
            &RELEASE_FAMILY_NOT_ROUTED,
            Severity::Error,
            format!("family {f} has records in the manifest but no weight in {location}routing_config.json"),
        ));
    }
    for f in in_routing.symmetric_difference(&staged) {
        consistent = false;
        findings.push(finding(
            &ROUTING_STAGE_MISMATCH,
            Severity::Error,
            format!("family {f} is in routing_config.json's families or stages, not both"),
        ));
    }
    if (weights_sum - 1.0).abs() > 1e-4 || release.routing.families.iter().any(|f| f.weight < 0.0) {
        consistent = false;
        findings.push(finding(
            &WEIGHTS_NOT_NORMALISED,
            Severity::Error,
            format!("routing weights sum to {weights_sum:.6}, not 1"),
        ));
    }
    RoutingCheck {
        families_in_routing: in_routing.into_iter().collect(),
        families_in_manifest: in_manifest.into_iter().collect(),
        weights_sum: (weights_sum * 1e6).round() / 1e6,
        consistent,
    }
}

/// What the shards gave, summed.
struct Read {
    splits: BTreeMap<Split, SplitResult>,
    items: Vec<Item>,
    shards: Vec<ShardResult>,
    bytes: u64,
    over: Vec<String>,
    over_count: u64,
    bad: Vec<ConsumeError>,
    bad_count: u64,
}

impl Read {
    /// Sums the shards' results by split; a shard that could not be read is a finding.
    fn tally(outs: Vec<ShardOut>, findings: &mut Vec<ConsumeFinding>) -> Self {
        let mut read = Read {
            splits: BTreeMap::new(),
            items: Vec::new(),
            shards: Vec::new(),
            bytes: 0,
            over: Vec::new(),
            over_count: 0,
            bad: Vec::new(),
            bad_count: 0,
        };
        for o in outs {
            let s = read.splits.entry(o.result.split).or_insert(SplitResult {
                split: o.result.split,
                records: 0,
                tokens: 0,
                over_max_seq_length: 0,
                max_tokens: 0,
            });
            s.records += o.result.records;
            s.tokens += o.tokens;
            s.over_max_seq_length += o.over_count;
            s.max_tokens = s.max_tokens.max(o.max_tokens);
            read.bytes += o.result.bytes;
            read.over_count += o.over_count;
            read.over.extend(o.over);
            read.bad_count += o.bad_count;
            read.bad.extend(o.bad);
            if let Some(e) = o.error {
                let code = match &e {
                    ConsumeError::MissingShard { .. } => &SHARD_MISSING,
                    _ => &SHARD_NOT_AS_MANIFEST,
                };
                findings.push(finding(code, Severity::Error, e.to_string()));
            }
            read.items.extend(o.items);
            read.shards.push(o.result);
        }
        read
    }

    /// Lines that are not records, and conversations over `max_seq_length`.
    fn findings(&self, config: &ConsumeConfig, findings: &mut Vec<ConsumeFinding>) {
        if self.bad_count > 0 {
            let mut f = finding(
                &NOT_A_CONTRACT_RECORD,
                Severity::Error,
                format!(
                    "{} line(s) are not records of the export contract",
                    self.bad_count
                ),
            );
            f.evidence = self
                .bad
                .iter()
                .take(config.max_locators)
                .map(ToString::to_string)
                .collect();
            findings.push(f);
        }
        if self.over_count > 0 {
            let mut f = finding(
                &OVER_MAX_SEQ_LENGTH,
                Severity::Warning,
                format!(
                    "{} conversation(s) render to more than {} tokens: training truncates or drops them",
                    self.over_count, config.max_seq_length
                ),
            );
            f.evidence = self
                .over
                .iter()
                .take(config.max_locators)
                .cloned()
                .collect();
            findings.push(f);
        }
    }
}

/// The Parquet twins: present, as the manifest says (sha256), with as many rows. Returns how
/// many were checked.
fn check_parquet(
    store: &crate::store::Store,
    release: &OpenRelease,
    findings: &mut Vec<ConsumeFinding>,
) -> u64 {
    let twins: Vec<(Split, &ManifestShard)> = release
        .manifest
        .contents
        .iter()
        .flat_map(|c| c.parquet.iter().map(move |s| (c.split, s)))
        .collect();
    let parquet_problems: Vec<String> = twins
        .par_iter()
        .filter_map(|(_, shard)| parquet_problem(store, shard))
        .collect();
    for p in parquet_problems {
        findings.push(finding(&PARQUET_NOT_AS_MANIFEST, Severity::Error, p));
    }
    twins.len() as u64
}

/// The worst severity among the findings, as a verdict.
fn verdict(findings: &[ConsumeFinding]) -> Verdict {
    findings
        .iter()
        .map(|f| match f.severity {
            Severity::Error => Verdict::Fail,
            Severity::Warning => Verdict::Warn,
            _ => Verdict::Pass,
        })
        .max()
        .unwrap_or(Verdict::Pass)
}

/// Writes the report; returns its key. A published release is never modified: its later
/// consumption tests go beside it.
fn write_report(
    store: &crate::store::Store,
    location: &str,
    release: &OpenRelease,
    report: &ConsumeReport,
) -> Result<String, ConsumeError> {
    let key = if release.binding == Binding::Published {
        crate::layout::consumption_scratch(
            store.exports_prefix(),
            &release.manifest.release_version,
        )
    } else {
        crate::layout::CONSUMPTION_TEST.at(location)
    };
    let mut bytes =
        serde_json::to_vec_pretty(report).map_err(|e| ConsumeError::Serialise("the report", e))?;
    bytes.push(b'\n');
    store.put(&key, bytes)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::open::{Message, RecordMetadata};

    #[test]
    fn templates_replace_placeholders_but_never_inside_content() {
        let t = Template::parse(CHATML).unwrap();
        let r = Record {
            id: "x".into(),
            messages: vec![
                Message {
                    role: "user".into(),
                    content: "say {role} and {content}".into(),
                },
                Message {
                    role: "assistant".into(),
                    content: "ok".into(),
                },
            ],
            metadata: RecordMetadata {
                source_family: "f".into(),
                dataset: "d".into(),
                stage: "s".into(),
                split: "train".into(),
                other: serde_json::Map::new(),
            },
        };
        let mut out = String::new();
        t.render(&r, &mut out);
        assert_eq!(
            out,
            "<|im_start|>user\nsay {role} and {content}<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"
        );
        assert!(Template::parse("{role}: no content").is_err());
    }
}
