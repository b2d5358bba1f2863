//! Converts the Python prototype's `dataset_registry.json` into a gatehouse registry.
//!
//! The prototype groups entries (`{path, stage, type, focus, ...}`) by category under
//! `datasets`, plus top-level groups such as `edge_case_sources`, `voice_persona` and
//! `supplementary`, some nested. Any JSON object with a string `path` is an entry, wherever it
//! sits. The importer maps what it can (key prefix from the `s3://` URI, family from the
//! group or the stage, format from the file extension) and lists every decision it could not
//! make. That format has no licence or provenance, so every imported dataset says so and
//! stays excluded until a human fills them in. Entries it cannot turn into a valid dataset
//! are written as comments, never dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::{Registry, stage_number};
use crate::digest::sha256;

/// The Release-0 families every imported registry starts with.
const DEFAULT_FAMILIES: &str = r#"[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
holdout = "none"
review = ["clinician_foundation", "bias_cultural"]

[families.priority_datasets]
stage = "stage1_foundation"
required = true
holdout = "none"
review = ["clinician_foundation", "bias_cultural"]

[families.cot_reasoning]
stage = "stage2_therapeutic_expertise"
required = true
holdout = "none"
review = ["clinician_foundation"]

[families.edge_cases]
stage = "stage3_edge_stress_test"
required = true
holdout = "strict"
review = ["clinician_edge", "bias_cultural"]

[families.voice_persona]
stage = "stage4_voice_persona"
required = true
holdout = "strict"
review = ["bias_cultural"]
"#;

/// The outcome of an import: the registry text and what a human must still decide.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub toml: String,
    /// Entries written as active datasets.
    pub imported: usize,
    /// Entries written only as comments.
    pub commented_out: usize,
    /// One line per open decision, naming the entry.
    pub decisions: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    /// Group path, e.g. `datasets.professional_therapeutic`.
    group: Vec<String>,
    name: String,
    path: String,
    stage: Option<String>,
    kind: Option<String>,
    focus: Option<String>,
}

fn collect(value: &Value, group: &mut Vec<String>, out: &mut Vec<Entry>) {
    let Value::Object(map) = value else { return };
    for (key, child) in map {
        let Value::Object(obj) = child else { continue };
        if let Some(Value::String(path)) = obj.get("path") {
            let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            out.push(Entry {
                group: group.clone(),
                name: key.clone(),
                path: path.clone(),
                stage: s("stage"),
                kind: s("type"),
                focus: s("focus"),
            });
        } else {
            group.push(key.clone());
            collect(child, group, out);
            group.pop();
        }
    }
}

fn family_for(entry: &Entry) -> (Option<&'static str>, Option<String>) {
    for g in entry.group.iter().rev() {
        let g = g.to_ascii_lowercase();
        let fam = match g.as_str() {
            "professional_therapeutic" => Some("professional_therapeutic"),
            "priority_datasets" | "priority" => Some("priority_datasets"),
            "cot_reasoning" | "reasoning" | "cot" => Some("cot_reasoning"),
            "edge_cases" | "edge_case_sources" => Some("edge_cases"),
            "voice_persona" | "voice" => Some("voice_persona"),
            _ if g.contains("priority") => Some("priority_datasets"),
            _ => None,
        };
        if fam.is_some() {
            return (fam, None);
        }
    }
    let by_stage = match entry.stage.as_deref().and_then(stage_number) {
        Some(2) => Some("cot_reasoning"),
        Some(3) => Some("edge_cases"),
        Some(4) => Some("voice_persona"),
        _ => None,
    };
    match by_stage {
        Some(f) => (
            Some(f),
            Some(format!(
                "family {f} was inferred from stage {}; confirm it",
                entry.stage.as_deref().unwrap_or_default()
            )),
        ),
        None => (
            None,
            Some(format!(
                "no family for group {:?} (stage {:?}): choose one and uncomment the entry",
                entry.group.join("."),
                entry.stage.as_deref().unwrap_or("none")
            )),
        ),
    }
}

/// Key prefix inside the store for an `s3://bucket/key` URI or a bare key.
fn key_of(path: &str) -> (String, Option<String>) {
    if let Some(rest) = path.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (key.to_string(), Some(bucket.to_string()))
    } else {
        (path.trim_start_matches("./").to_string(), None)
    }
}

fn format_for(key: &str, kind: Option<&str>) -> Result<&'static str, String> {
    let kind = kind.unwrap_or_default().to_ascii_lowercase();
    if kind.contains("dpo") || kind.contains("preference") {
        return Err(format!(
            "type {kind:?} (preference pairs) has no ChatML adapter"
        ));
    }
    let ext = Path::new(key)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" => Ok("text_transcript"),
        "csv" => Err("CSV needs its column names (fields.user / fields.assistant)".into()),
        "jsonl" | "json" | "" => Ok("chatml"),
        other => Err(format!("no adapter for .{other} files")),
    }
}

fn toml_str(s: &str) -> String {
    // serde_json string syntax is valid TOML basic-string syntax for these values.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Converts prototype registry JSON into gatehouse registry TOML.
pub fn import_prototype(json: &str, source_name: &str) -> Result<ImportOutcome, String> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| format!("{source_name} is not valid JSON (line {}): {e}", e.line()))?;
    let mut entries = Vec::new();
    collect(&value, &mut Vec::new(), &mut entries);
    if entries.is_empty() {
        return Err(format!(
            "{source_name} has no entries with a \"path\"; is it a prototype dataset_registry.json?"
        ));
    }

    let mut out = String::new();
    let mut decisions = Vec::new();
    let _ = writeln!(
        out,
        "# Imported by `gatehouse registry import` from {source_name}.\n\
         # Review every `# decision needed` note. The prototype format has no licence or\n\
         # provenance: each dataset below is excluded from releases (and the provenance gate\n\
         # fails) until `license_tag` and `provenance` are filled in.\n\n\
         schema_version = 1\n"
    );
    out.push_str(DEFAULT_FAMILIES);

    let mut used = BTreeSet::new();
    let mut buckets = BTreeSet::new();
    let (mut imported, mut commented_out) = (0, 0);
    for e in &entries {
        let mut name = sanitize(&e.name);
        if !used.insert(name.clone()) {
            name = sanitize(&format!("{}.{}", e.group.join("."), e.name));
            used.insert(name.clone());
        }
        let (key, bucket) = key_of(&e.path);
        if let Some(b) = bucket {
            buckets.insert(b);
        }
        let (family, family_note) = family_for(e);
        let format = format_for(&key, e.kind.as_deref());
        let mut notes: Vec<String> = family_note.into_iter().collect();
        let format = match format {
            Ok(f) => {
                notes.push(format!(
                    "format {f} was guessed from the file name; confirm it"
                ));
                Some(f)
            }
            Err(why) => {
                notes.push(format!("{why}: choose a format and uncomment the entry"));
                None
            }
        };
        if key.is_empty() {
            notes.push("the path names a whole bucket; narrow it to a prefix".into());
        }
        let active = family.is_some() && format.is_some() && !key.is_empty();
        let c = if active { "" } else { "# " };
        let _ = writeln!(out, "\n# from {}.{}", e.group.join("."), e.name);
        if let Some(k) = &e.kind {
            let _ = writeln!(out, "# prototype type: {k}");
        }
        if let Some(f) = &e.focus {
            let _ = writeln!(out, "# prototype focus: {f}");
        }
        for n in &notes {
            let _ = writeln!(out, "# decision needed: {n}");
            decisions.push(format!("{name}: {n}"));
        }
        let _ = writeln!(out, "{c}[[datasets]]");
        let _ = writeln!(out, "{c}name = {}", toml_str(&name));
        let _ = writeln!(out, "{c}family = {}", toml_str(family.unwrap_or("CHOOSE")));
        if let (Some(stage), Some(fam)) = (&e.stage, family) {
            let fam_stage = DEFAULT_FAMILIES
                .split("[families.")
                .find(|s| s.starts_with(&format!("{fam}]")))
                .and_then(|s| s.lines().find(|l| l.starts_with("stage = ")))
                .unwrap_or_default();
            if stage_number(stage).is_some() && fam_stage != format!("stage = {}", toml_str(stage))
            {
                let _ = writeln!(out, "{c}stage = {}", toml_str(stage));
            }
        }
        let _ = writeln!(out, "{c}include = [{}]", toml_str(&key));
        let _ = writeln!(out, "{c}format = {}", toml_str(format.unwrap_or("CHOOSE")));
        let _ = writeln!(out, "# license_tag = \"\"   # decision needed");
        let _ = writeln!(
            out,
            "# provenance = {{ origin = \"\", method = \"\", consent = \"\" }}   # decision needed"
        );
        if active {
            imported += 1;
        } else {
            commented_out += 1;
        }
    }
    if buckets.len() > 1 {
        decisions.push(format!(
            "entries point at {} buckets ({}); a registry describes one store: split it",
            buckets.len(),
            buckets.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    decisions.push(format!(
        "all {imported} imported dataset(s) lack license_tag and provenance (not in the prototype format)"
    ));

    // The result must load; whatever stops it is one more decision, not a failed import.
    if let Err(err) = Registry::parse(Path::new("imported registry"), &out, sha256(out.as_bytes()))
    {
        decisions.push(format!("the imported registry does not load yet: {err}"));
    }
    Ok(ImportOutcome {
        toml: out,
        imported,
        commented_out,
        decisions,
    })
}

/// Counts entries per top-level group, for the importer's summary.
pub fn groups_of(json: &str) -> BTreeMap<String, usize> {
    let mut entries = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(json) {
        collect(&v, &mut Vec::new(), &mut entries);
    }
    let mut out = BTreeMap::new();
    for e in entries {
        *out.entry(e.group.first().cloned().unwrap_or_default())
            .or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOTYPE: &str = r#"{
      "last_updated": "2026-04-03T16:15:00.000000Z",
      "datasets": {
        "professional_therapeutic": {
          "therapy_sessions": {"path": "s3://pixel-data/datasets/therapy/sessions.jsonl",
                               "stage": "stage1_foundation", "type": "conversation", "focus": "therapy"}
        },
        "cot_reasoning": {
          "clinical_cot": {"path": "s3://pixel-data/datasets/cot/", "stage": "stage2_therapeutic_expertise",
                           "type": "reasoning", "focus": "diagnosis"}
        },
        "misc": {
          "counsel_csv": {"path": "s3://pixel-data/datasets/counsel/answers.csv", "stage": "stage1_foundation",
                          "type": "qa"}
        }
      },
      "edge_case_sources": {
        "crisis_scenarios": {"path": "s3://pixel-data/edge/crisis.jsonl", "stage": "stage3_edge_stress_test",
                             "type": "conversation"},
        "safety_dpo_pairs": {"path": "s3://pixel-data/edge/policy.jsonl", "stage": "stage3_edge_stress_test",
                             "type": "dpo_pairs"}
      },
      "voice_persona": {
        "transcripts": {
          "tim_fletcher": {"path": "s3://pixel-data/voice/tim/", "stage": "stage4_voice_persona", "type": "transcript"}
        }
      },
      "supplementary": {
        "psych_kb": {"path": "s3://pixel-data/kb/psychology.json", "stage": "stage1_foundation",
                     "type": "knowledge_base"}
      }
    }"#;

    #[test]
    fn maps_what_it_can_and_lists_the_rest() {
        let out = import_prototype(PROTOTYPE, "dataset_registry.json").unwrap();
        // therapy_sessions, clinical_cot, crisis_scenarios and the nested voice entry map.
        assert_eq!(out.imported, 4, "{}", out.toml);
        // CSV without columns, DPO pairs and the unclassifiable knowledge base do not.
        assert_eq!(out.commented_out, 3, "{}", out.toml);
        let reg = Registry::parse(Path::new("t"), &out.toml, String::new()).unwrap();
        let voice = reg
            .datasets
            .iter()
            .find(|d| d.name == "tim_fletcher")
            .unwrap();
        assert_eq!(voice.family, "voice_persona");
        assert_eq!(voice.include, ["voice/tim/"]);
        let crisis = reg
            .datasets
            .iter()
            .find(|d| d.name == "crisis_scenarios")
            .unwrap();
        assert_eq!(crisis.family, "edge_cases");
        assert!(
            reg.datasets
                .iter()
                .all(|d| d.license_tag.is_none() && d.provenance.is_none())
        );
        let decisions = out.decisions.join("\n");
        assert!(
            decisions.contains("counsel_csv: CSV needs its column names"),
            "{decisions}"
        );
        assert!(decisions.contains("safety_dpo_pairs"), "{decisions}");
        assert!(decisions.contains("psych_kb: no family"), "{decisions}");
        assert!(
            decisions.contains("lack license_tag and provenance"),
            "{decisions}"
        );
        assert!(!decisions.contains("does not load"), "{decisions}");
    }

    #[test]
    fn not_a_registry_is_an_error() {
        assert!(import_prototype("{\"a\": 1}", "x.json").is_err());
        assert!(
            import_prototype("not json", "x.json")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn groups_are_counted() {
        let g = groups_of(PROTOTYPE);
        assert_eq!(g["datasets"], 3);
        assert_eq!(g["voice_persona"], 1);
    }
}
