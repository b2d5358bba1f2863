//! `croissant.json`: the published release described in Croissant 1.1 (MLCommons), the
//! JSON-LD vocabulary dataset hubs and loaders read (`mlcroissant`, TFDS, Hugging Face).
//!
//! Written by publication beside the dataset card, from what the release knows and nothing
//! else: the manifest (Parquet shards with their sha256 and size, split and dedup method,
//! inputs), the registry (licence and provenance of each included dataset), the privacy
//! gate's report (PII policy, detections, measured recall) and the signoff (review types and
//! reviewers). No record text: fields are described, not sampled.
//!
//! Layout: one `cr:FileObject` per Parquet shard (checksums), one `cr:FileSet` that claims
//! them all (`shards/*/*.parquet`) and is the source of the record set `conversations`, whose
//! fields are the shard columns (`messages` an array of `{role, content}`). The
//! responsible-AI properties (`rai:`) are filled from the same evidence the release notes use.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::contract::Manifest;
use crate::contract::gates::PrivacyReport;
use crate::contract::signoff::Signoff;
use crate::registry::{Dataset, Registry};

/// The Croissant version this file conforms to.
pub const CONFORMS_TO: &str = "http://mlcommons.org/croissant/1.1";

/// The release file name.
pub const FILE_NAME: &str = crate::layout::CROISSANT.name();

/// The JSON-LD context of Croissant 1.1 with its responsible-AI extension, as the
/// specification gives it.
pub fn context() -> Value {
    json!({
        "@language": "en",
        "@vocab": "https://schema.org/",
        "arrayShape": "cr:arrayShape",
        "citeAs": "cr:citeAs",
        "column": "cr:column",
        "conformsTo": "dct:conformsTo",
        "containedIn": "cr:containedIn",
        "cr": "http://mlcommons.org/croissant/",
        "rai": "http://mlcommons.org/croissant/RAI/",
        "data": { "@id": "cr:data", "@type": "@json" },
        "dataType": { "@id": "cr:dataType", "@type": "@vocab" },
        "dct": "http://purl.org/dc/terms/",
        "examples": { "@id": "cr:examples", "@type": "@json" },
        "equivalentProperty": "cr:equivalentProperty",
        "extract": "cr:extract",
        "field": "cr:field",
        "fileProperty": "cr:fileProperty",
        "fileObject": "cr:fileObject",
        "fileSet": "cr:fileSet",
        "format": "cr:format",
        "includes": "cr:includes",
        "isArray": "cr:isArray",
        "isLiveDataset": "cr:isLiveDataset",
        "jsonPath": "cr:jsonPath",
        "key": "cr:key",
        "md5": "cr:md5",
        "parentField": "cr:parentField",
        "path": "cr:path",
        "recordSet": "cr:recordSet",
        "references": "cr:references",
        "regex": "cr:regex",
        "repeated": "cr:repeated",
        "replace": "cr:replace",
        "samplingRate": "cr:samplingRate",
        "sc": "https://schema.org/",
        "separator": "cr:separator",
        "source": "cr:source",
        "subField": "cr:subField",
        "transform": "cr:transform"
    })
}

/// What publication hands over: the release's own evidence, already read.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The release folder (`exports/releases/<version>/`): shard keys are given relative to it.
    pub location: &'a str,
    pub version: &'a str,
    pub digest: &'a str,
    pub registry: &'a Registry,
    pub manifest: &'a Manifest,
    /// `gates/pii_detection_report.json`, when the privacy gate ran.
    pub privacy: Option<&'a PrivacyReport>,
    /// `qa/signoff_record.json`.
    pub signoff: &'a Signoff,
    /// The exclusions the release notes list.
    pub exclusions: &'a [String],
}

/// The `croissant.json` document of a release.
pub fn document(i: &Inputs<'_>) -> Value {
    let m = i.manifest;
    let datasets = included_datasets(i);
    let licences: BTreeSet<String> = datasets
        .iter()
        .filter_map(|d| d.license_tag.clone())
        .collect();

    let mut doc = json!({
        "@context": context(),
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": format!("gatehouse-release-{}", i.version),
        "description": format!("Training conversations for a therapy-assistant model, compiled to ChatML, redacted, deduplicated, split by group, gated and reviewed. Release {} (digest {}, the sha256 of manifest.json).", i.version, i.digest),
        "datePublished": m.release_date,
        "license": licences.into_iter().collect::<Vec<_>>(),
        "inLanguage": "en",
        "keywords": ["mental health", "counselling", "ChatML", "supervised fine-tuning"],
        "isLiveDataset": false,
        "distribution": distribution(i),
        "recordSet": [{
            "@type": "cr:RecordSet",
            "@id": "conversations",
            "name": "conversations",
            "description": "One training conversation per record, as in the JSONL and Parquet shards.",
            "key": { "@id": "conversations/id" },
            "field": fields(),
        }],
        "rai:dataCollection": data_collection(&datasets).trim_end(),
        "rai:dataCollectionType": datasets.iter().filter_map(|d| d.provenance.as_ref().map(|p| p.method.clone())).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>(),
        "rai:dataPreprocessingProtocol": preprocessing(m),
        "rai:dataAnnotationProtocol": annotation(i),
        "rai:personalSensitiveInformation": personal_information(i),
        "rai:dataUseCases": "Supervised fine-tuning and evaluation of a therapy-assistant model under clinical oversight. The test split and holdout families are for evaluation only.",
        "rai:dataLimitations": limitations(i.exclusions),
        "rai:dataBiases": "A bias and cultural review sampled the release; it did not exhaust it. Synthetic and third-party sources carry their own biases.",
        "rai:dataSocialImpact": "Intended to make a supportive assistant safer; misuse as a clinical substitute could harm people in crisis.",
        "rai:dataReleaseMaintenancePlan": "Versions are write-once: a published version is never overwritten; corrections are new versions with their own digest and evidence.",
        "citeAs": format!("@misc{{gatehouse_release_{key}, title = {{gatehouse release {v}}}, note = {{release digest {d}}}, year = {{{y}}}}}", key = i.version.replace(|c: char| !c.is_ascii_alphanumeric(), "_"), v = i.version, d = i.digest, y = m.release_date.as_deref().and_then(|d| d.get(..4)).unwrap_or("n.d.")),
    });
    doc["version"] = json!(croissant_version(i.version));
    doc
}

/// One `cr:FileObject` per Parquet shard (relative to the release folder), then the
/// `cr:FileSet` that claims them all.
fn distribution(i: &Inputs<'_>) -> Vec<Value> {
    let mut distribution = Vec::new();
    for c in &i.manifest.contents {
        for s in &c.parquet {
            let key = s.key.strip_prefix(i.location).unwrap_or(&s.key);
            let sha256 = s.sha256.as_str();
            distribution.push(json!({
                "@type": "cr:FileObject",
                "@id": key,
                "name": key,
                "contentUrl": key,
                "encodingFormat": "application/x-parquet",
                "contentSize": format!("{} B", s.bytes),
                "sha256": sha256.strip_prefix("sha256:").unwrap_or(sha256),
            }));
        }
    }
    distribution.push(json!({
        "@type": "cr:FileSet",
        "@id": "parquet-shards",
        "name": "parquet-shards",
        "description": "Every Parquet shard of the release, all splits (the split is a column).",
        "encodingFormat": "application/x-parquet",
        "includes": "shards/*/*.parquet",
    }));
    distribution
}

/// A field of the record set read from the shard column of the same name.
fn column(id: &str, data_type: &str, description: &str) -> Value {
    json!({
        "@type": "cr:Field",
        "@id": format!("conversations/{id}"),
        "name": id,
        "description": description,
        "dataType": data_type,
        "source": { "fileSet": { "@id": "parquet-shards" }, "extract": { "column": id } },
    })
}

/// The fields of the record set `conversations`: the shard columns, in their order.
fn fields() -> Vec<Value> {
    let messages = json!({
        "@type": "cr:Field",
        "@id": "conversations/messages",
        "name": "messages",
        "description": "The conversation in ChatML order: one {role, content} per message; roles are system, user or assistant. Personal identifiers are replaced by typed placeholders ([NAME_1], [PHONE_1], …).",
        "isArray": true,
        "arrayShape": "-1",
        "subField": [
            {
                "@type": "cr:Field",
                "@id": "conversations/messages/role",
                "name": "role",
                "dataType": "sc:Text",
                "source": { "fileSet": { "@id": "parquet-shards" }, "extract": { "column": "messages" }, "transform": { "jsonPath": "role" } },
            },
            {
                "@type": "cr:Field",
                "@id": "conversations/messages/content",
                "name": "content",
                "dataType": "sc:Text",
                "source": { "fileSet": { "@id": "parquet-shards" }, "extract": { "column": "messages" }, "transform": { "jsonPath": "content" } },
            },
        ],
    });
    vec![
        column(
            "id",
            "sc:Text",
            "Stable record id: sha256 of the source key, line and content.",
        ),
        messages,
        column("source_family", "sc:Text", "Dataset family."),
        column("dataset", "sc:Text", "Registry dataset name."),
        column("stage", "sc:Text", "Curriculum stage (stage<N>_<name>)."),
        column("split", "sc:Text", "train, val or test."),
        column(
            "source_key",
            "sc:Text",
            "Object key of the source in the store.",
        ),
        column(
            "source_line",
            "sc:Integer",
            "Line (or row) of the record in its source object.",
        ),
        column("license_tag", "sc:Text", "Licence of the source dataset."),
        column(
            "tokens",
            "sc:Integer",
            "Tokens of the conversation (see the manifest's tokenizer).",
        ),
        column(
            "metadata",
            "sc:Text",
            "The record's whole metadata as JSON text (provenance, redaction counts).",
        ),
    ]
}

/// The registry's datasets the manifest lists as inputs, in registry order.
fn included_datasets<'a>(i: &Inputs<'a>) -> Vec<&'a Dataset> {
    let included: BTreeSet<&str> = i
        .manifest
        .inputs
        .iter()
        .map(|x| x.dataset.as_str())
        .collect();
    i.registry
        .datasets
        .iter()
        .filter(|d| included.contains(d.name.as_str()))
        .collect()
}

/// Each dataset's family and provenance, one sentence each.
fn data_collection(datasets: &[&Dataset]) -> String {
    let mut collection = String::new();
    for d in datasets {
        let _ = write!(collection, "{} (family {}): ", d.name, d.family);
        match &d.provenance {
            Some(p) => {
                let _ = write!(
                    collection,
                    "origin {}; method {}; consent {}. ",
                    p.origin, p.method, p.consent
                );
            }
            None => collection.push_str("no provenance recorded. "),
        }
    }
    collection
}

/// What the build did to the sources, with the manifest's dedup, split and tokenizer.
fn preprocessing(m: &Manifest) -> String {
    let inputs = m.inputs.len();
    let dedup = serde_json::to_value(&m.dedup).unwrap_or_default();
    let split = &m.split;
    format!(
        "Every source format adapted to ChatML and normalised (Unicode NFC, whitespace); personal identifiers redacted with typed placeholders, the redacted text re-scanned until the scan finds nothing; duplicates removed ({}); group-aware split ({}, seed {}); every conversation counted with {}. Source: {inputs} objects, each listed with its sha256 in manifest.json.",
        compact(&dedup),
        split.method,
        split.seed,
        m.tokens.tokenizer,
    )
}

/// The privacy gate's statement, then the human spot-check's figures from the signoff.
fn personal_information(i: &Inputs<'_>) -> String {
    let mut pii = match i.privacy {
        Some(p) => privacy_statement(&as_json(p)),
        None => "The privacy gate did not run.".to_string(),
    };
    let signoff = as_json(i.signoff);
    let spot = &signoff["privacy_spot_check"];
    if let (Some(n), Some(upper)) = (
        spot["records_reviewed"].as_u64(),
        spot["residual_identifier_rate_upper_95"].as_f64(),
    ) {
        let _ = write!(
            pii,
            " Human spot-check (privacy_spot_check): {n} redacted record(s) read by reviewers, {} with an identifier left (marked records are withheld from the next build); residual-identifier rate {}, one-sided 95% upper bound {upper:.4} ({}).",
            spot["records_with_miss"],
            spot["residual_identifier_rate"],
            spot["bound_method"].as_str().unwrap_or("?"),
        );
    }
    pii
}

/// A typed report as JSON, for the statements below, which quote its values as JSON writes
/// them (the report was read with its contract type, so every field is there).
fn as_json<T: serde::Serialize>(report: &T) -> Value {
    serde_json::to_value(report).unwrap_or_default()
}

/// Human QA from the signoff: reviewers, review types, the digest and the decision.
fn annotation(i: &Inputs<'_>) -> String {
    let signoff = as_json(i.signoff);
    let (authenticated, attested) = counted_reviewers(i.signoff);
    let review_types: BTreeSet<&str> = signoff["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["review_type"].as_str().or_else(|| r["role"].as_str()))
        .collect();
    format!(
        "Human QA: {authenticated} authenticated reviewer(s){} scored seeded, stratified samples of the release against rubrics ({}); the signoff (qa/signoff_record.json) is bound to the release digest {}. Decision: {}.",
        if attested == 0 {
            String::new()
        } else {
            format!(" and {attested} reviewer(s) whose reviews the operator attested")
        },
        if review_types.is_empty() {
            "see the signoff record".to_string()
        } else {
            review_types.into_iter().collect::<Vec<_>>().join(", ")
        },
        i.digest,
        signoff["decision"].as_str().unwrap_or("?"),
    )
}

/// Distinct reviewers whose counted reviews were authenticated (the review app's sign-in or
/// a verified signature), and the others whose counted reviews only the operator attested.
fn counted_reviewers(signoff: &Signoff) -> (usize, usize) {
    use crate::contract::signoff::Authentication;
    let mut authenticated = BTreeSet::new();
    let mut attested = BTreeSet::new();
    for a in signoff.authentication.iter().filter(|a| a.counted) {
        match a.method {
            Authentication::AppSession | Authentication::Signature => {
                authenticated.insert(a.reviewer.as_str())
            }
            Authentication::OperatorAttested => attested.insert(a.reviewer.as_str()),
        };
    }
    let attested_only = attested.difference(&authenticated).count();
    (authenticated.len(), attested_only)
}

fn limitations(exclusions: &[String]) -> String {
    let mut limitations = String::from(
        "Automatic redaction is not perfect (see rai:personalSensitiveInformation for the measured figures). Crisis resources (988, 741741, hotline names) are kept on purpose. Conversations may discuss suicide, self-harm and abuse. Not a substitute for clinical judgement; not for diagnosis.",
    );
    if !exclusions.is_empty() {
        limitations.push_str(" Known exclusions: ");
        limitations.push_str(&exclusions.join("; "));
        limitations.push('.');
    }
    limitations
}

/// Croissant's `version` is semantic (MAJOR.MINOR.PATCH). A semantic release version is
/// given as is; a date (`v2026-11-26`) as its calendar version (`2026.11.26`); any other as
/// build metadata of 0.0.0 (`0.0.0+nightly_3` → the release name stays readable).
fn croissant_version(version: &str) -> String {
    if let Some(v) = semantic_version(version) {
        return v.to_string();
    }
    let v = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<&str> = v.split('-').collect();
    if let [y, m, d] = parts[..]
        && y.len() == 4
        && [y, m, d]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let n = |p: &str| p.trim_start_matches('0').to_string();
        return format!("{y}.{}.{}", n(m), n(d));
    }
    let meta: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("0.0.0+{meta}")
}

/// `1.2.3` from `v1.2.3` or `1.2.3` (pre-release and build suffixes allowed), else `None`.
fn semantic_version(version: &str) -> Option<&str> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let core = v.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then_some(v)
}

/// Method and parameters of a JSON object, as `key=value` pairs (numbers and strings only).
fn compact(v: &Value) -> String {
    v.as_object()
        .into_iter()
        .flatten()
        .filter(|(_, x)| x.is_string() || x.is_number())
        .map(|(k, x)| match x.as_str() {
            Some(s) => format!("{k}={s}"),
            None => format!("{k}={x}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The PII policy, what the gate's full re-scan found and how well detection was measured.
fn privacy_statement(p: &Value) -> String {
    let mut s = format!(
        "Personal identifiers (names, addresses, phones, emails, cards, SSNs, IBANs, IPs, ID numbers, {}dates of birth) are replaced by typed placeholders before export. Policy: {}. The privacy gate re-scanned 100% of the export: {} record(s) with a detection.",
        if p["policy"]["dates"] == "all" {
            "every date element but the year, ages over 89, "
        } else {
            ""
        },
        compact(&p["policy"]),
        p["metrics"]["records_with_detections"]
            .as_u64()
            .map_or_else(|| "?".to_string(), |n| n.to_string()),
    );
    let spot = &p["spot_check"];
    if let Some(size) = spot["size"].as_u64() {
        let _ = write!(
            s,
            " A seeded sample of {size} of {} records (rate {}) was drawn for a human spot-check.",
            spot["population"], spot["rate"]
        );
    }
    let sets = p["evaluation"]["sets"].as_array();
    match sets {
        Some(sets) if !sets.is_empty() => {
            s.push_str(" Measured on labelled sets in the store:");
            for set in sets {
                let r = &set["scores"]["recall_direct"];
                let _ = write!(
                    s,
                    " {} ({} documents): direct-identifier recall {}/{}, precision {}/{};",
                    set["key"].as_str().unwrap_or("?"),
                    set["scores"]["documents"],
                    r["hits"],
                    r["total"],
                    set["scores"]["precision"]["hits"],
                    set["scores"]["precision"]["total"],
                );
            }
            s.pop();
            s.push('.');
        }
        _ => s.push_str(" No labelled evaluation set was configured for this release ([privacy.evaluation]); recall on its own data is unmeasured."),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_semantic_versions_are_given_as_versions() {
        assert_eq!(semantic_version("v1.2.3"), Some("1.2.3"));
        assert_eq!(semantic_version("2.0.0-rc.1"), Some("2.0.0-rc.1"));
        assert_eq!(semantic_version("v2026-11-26"), None);
        assert_eq!(semantic_version("1.2"), None);
        assert_eq!(croissant_version("v1.2.3"), "1.2.3");
        assert_eq!(croissant_version("v2026-11-06"), "2026.11.6");
        assert_eq!(croissant_version("nightly_3"), "0.0.0+nightly-3");
    }
}
