//! The dataset card `README.md`: Hugging Face front matter, then what the release holds, its
//! intended use and limitations, and its gate results.

use std::collections::BTreeSet;

use super::Judged;
use super::notes::{families_table, list, verdicts_table};
use crate::registry::Registry;

fn size_category(n: u64) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        _ => "10M<n<100M",
    }
}

/// The YAML front matter: licences of the datasets used, size, and the splits with data.
fn front_matter(r: &Judged<'_>, registry: &Registry) -> String {
    let datasets: BTreeSet<&str> = r
        .manifest
        .inputs
        .iter()
        .map(|i| i.dataset.as_str())
        .collect();
    let licences: BTreeSet<String> = registry
        .datasets
        .iter()
        .filter(|d| datasets.contains(d.name.as_str()))
        .filter_map(|d| d.license_tag.as_deref())
        .map(str::to_ascii_lowercase)
        .collect();
    let total: u64 = r.manifest.contents.iter().map(|c| c.records).sum();
    let mut y = String::from("---\n");
    y.push_str("license:\n");
    for l in &licences {
        y.push_str(&format!("- {l}\n"));
    }
    y.push_str(&format!(
        "language:\n- en\ntask_categories:\n- text-generation\nsize_categories:\n- {}\npretty_name: gatehouse release {}\ntags:\n- mental-health\n- counselling\n- chatml\n",
        size_category(total),
        r.version
    ));
    y.push_str("configs:\n- config_name: default\n  data_files:\n");
    for s in ["train", "val", "test"] {
        if r.families
            .values()
            .any(|f| f.get(s).copied().unwrap_or(0) > 0)
        {
            y.push_str(&format!("  - split: {s}\n    path: shards/{s}/*.parquet\n"));
        }
    }
    y.push_str("---\n\n");
    y
}

/// `README.md`, from the judged release and the combined gate report.
pub(super) fn dataset_card(
    r: &Judged<'_>,
    registry: &Registry,
    combined: &super::CombinedGateReport,
) -> String {
    let mut y = front_matter(r, registry);
    y.push_str(&format!(
        "# gatehouse release {}\n\nTraining conversations for a therapy-assistant model, compiled to ChatML, redacted, deduplicated, split by group, gated and reviewed by clinicians. Release digest `{}` (the sha256 of `manifest.json`; every file is listed there with its sha256).\n\n",
        r.version, r.digest
    ));
    y.push_str("## Contents\n\n");
    y.push_str(&families_table(&r.families));
    y.push_str("\nEach record: `id`, `messages` (a list of `{role, content}`, roles system/user/assistant) and `metadata` (family, dataset, stage, split, source key and line, licence, tokens, redactions, provenance). JSONL and Parquet shards hold the same records; `routing_config.json` gives the curriculum stages and family weights; `croissant.json` describes the release in Croissant 1.1 metadata (record set, fields, shards with sha256, responsible-AI properties).\n\n");
    y.push_str("## Intended use\n\nSupervised fine-tuning and evaluation of a therapy-assistant model under clinical oversight. The test split and holdout families are for evaluation only.\n\n");
    y.push_str("## Limitations\n\n- Personal data was redacted automatically (typed placeholders such as `[NAME_1]`) and checked by a full re-scan and a human spot-check; detection is not perfect.\n- Crisis resources (e.g. 988, 741741) are kept on purpose. Conversations may discuss suicide, self-harm and abuse.\n- Synthetic and third-party sources carry their own licences (front matter) and biases; the bias and cultural review sampled, not exhausted, the data.\n- Not a substitute for clinical judgement; not for diagnosis.\n\n");
    y.push_str("## Known exclusions\n\n");
    y.push_str(&list(&r.exclusions));
    y.push_str("\n## Gate results\n\n");
    y.push_str(&verdicts_table(&combined.verdicts));
    y.push_str("\n## Review\n\nClinician (foundation and crisis) and bias/cultural reviewers scored seeded, stratified samples against their rubrics; the signoff (`qa/signoff_record.json`) is bound to this release digest. See `release_notes.md`.\n");
    y
}
