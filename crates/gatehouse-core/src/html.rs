//! `report.html`: one self-contained page for a release, rendered from its JSON reports.
//!
//! The page is a *rendering*: it reads `manifest.json`, `coverage_report.json`,
//! `build_report.json` and `gates/*.json` from the release's folder and shows what they say,
//! so it can never disagree with them. It has no JavaScript and loads nothing: styles are
//! inline and charts are inline SVG (histograms of tokens and turns per family × split, with
//! the regression deltas of the distribution gate). The markup is well-formed XML, which the
//! tests check, and every value taken from a report is escaped. Reports hold no conversation
//! text, so neither does the page.

use std::fmt::Write as _;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::contract::coverage::CoverageReport;
use crate::contract::gates::read_gate_report;
use crate::contract::{BuildReport, Manifest};
use crate::layout;
use crate::store::{Store, StoreError};

mod svg;
use svg::histogram_svg;

#[derive(Debug, Error)]
pub enum HtmlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} is not a readable report ({detail}); rebuild the release")]
    BadReport { key: String, detail: String },
}

/// The reports a release folder may hold, in page order: (file, title).
const GATES: [(layout::File, &str); 5] = [
    (layout::PII_REPORT, "Privacy"),
    (layout::PROVENANCE_REPORT, "Provenance"),
    (layout::DEDUP_REPORT, "Deduplication"),
    (layout::LEAKAGE_REPORT, "Cross-split leakage"),
    (layout::DISTRIBUTION_REPORT, "Distribution"),
];

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as display text (strings unquoted), escaped.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "–".into(),
        Value::Number(n) => esc(&n.to_string()),
        other => esc(&other.to_string()),
    }
}

/// Reads a report into its contract type and back to JSON: what the page shows.
type Parse = fn(&[u8]) -> Result<Value, serde_json::Error>;

/// A report read with its contract type `T`, so one that does not match fails (naming the
/// file); the page shows what that type writes, which is what was read.
fn typed<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_slice::<T>(bytes)?)
}

fn bad(key: &str, e: &serde_json::Error) -> HtmlError {
    HtmlError::BadReport {
        key: key.to_string(),
        detail: e.to_string(),
    }
}

/// A report of the release folder: `None` when it is not there (the stage did not run).
fn read(store: &Store, key: &str, parse: Parse) -> Result<Option<Value>, HtmlError> {
    match store.get_bytes(key) {
        Ok(bytes) => parse(&bytes).map(Some).map_err(|e| bad(key, &e)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn verdict_badge(v: &Value) -> String {
    let s = v.as_str().unwrap_or("unknown");
    format!("<span class=\"badge {0}\">{0}</span>", esc(s))
}

/// A table of the given columns over an array of objects.
fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let mut t = String::from("<table><thead><tr>");
    for (_, title) in columns {
        let _ = write!(t, "<th>{}</th>", esc(title));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str("<tr>");
        for (field, _) in columns {
            let v = field.split('.').fold(r, |v, f| &v[f]);
            if *field == "verdict" || field.ends_with("status") {
                let _ = write!(t, "<td>{}</td>", verdict_badge(v));
            } else {
                let _ = write!(t, "<td>{}</td>", show(v));
            }
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table>");
    t
}

fn findings(report: &Value) -> String {
    let list = report["findings"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "<p class=\"muted\">No findings.</p>".into();
    }
    table(
        &list,
        &[
            ("severity", "Severity"),
            ("code", "Code"),
            ("name", "Finding"),
            ("subject", "Subject"),
            ("message", "Message"),
        ],
    )
}

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2433;background:#f6f7f9}\
main{max-width:1100px;margin:0 auto;padding:24px}\
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #d7dce5;padding-bottom:4px}\
h3{font-size:16px;margin:20px 0 6px}\
section{background:#fff;border:1px solid #e1e5ec;border-radius:8px;padding:12px 18px;margin:12px 0}\
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}\
th,td{border-bottom:1px solid #e6e9ef;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f0f2f6}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e3e6eb}\
.badge.pass,.badge.ok,.badge.info{background:#d8f3df;color:#155d2b}.badge.warn,.badge.warning,.badge.near_bound{background:#fff0c2;color:#7a5300}\
.badge.fail,.badge.error,.badge.out_of_range{background:#fbd9d7;color:#8a1c14}\
.muted{color:#667085}.charts{display:flex;flex-wrap:wrap;gap:10px}\
figure{margin:0;background:#fafbfc;border:1px solid #e6e9ef;border-radius:6px;padding:6px}\
figcaption{font-size:12px;color:#475467}\
svg .bar{fill:#4f6fb3}svg .axis{stroke:#98a2b3}svg .tick{font-size:9px;fill:#475467}\
code{font-size:12px;background:#f0f2f6;padding:0 4px;border-radius:4px}";

/// A release's reports, as the page shows them.
struct Reports {
    /// The release digest: the sha256 of the manifest, when there is one.
    digest: Option<String>,
    manifest: Value,
    coverage: Option<Value>,
    build: Option<Value>,
    /// (file, title, report) of each gate that ran, in page order.
    gates: Vec<(&'static str, &'static str, Value)>,
}

/// Renders the page for the release at `location` (its folder, ending in `/`).
pub fn render(store: &Store, location: &str) -> Result<String, HtmlError> {
    let reports = read_reports(store, location)?;
    let version = reports.manifest["release_version"]
        .as_str()
        .unwrap_or("(not built)");
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <title>gatehouse release {v}</title><style>{STYLE}</style></head><body><main>\
         <h1>Release {v}</h1><p class=\"muted\">Rendered from the release's JSON reports; they are the source of truth. \
         No conversation text appears here.</p>",
        v = esc(version)
    );
    h.push_str(&summary_section(&reports));
    if let Some(c) = &reports.coverage {
        h.push_str(&coverage_section(c));
    }
    if let Some(b) = &reports.build {
        h.push_str(&build_section(b));
    }
    for (file, title, r) in &reports.gates {
        h.push_str(&gate_section(file, title, r));
    }
    h.push_str("</main></body></html>\n");
    Ok(h)
}

/// Reads the manifest (once: the page shows it and its digest, the release digest) and
/// whichever reports the release folder holds.
fn read_reports(store: &Store, location: &str) -> Result<Reports, HtmlError> {
    let manifest_key = layout::MANIFEST.at(location);
    let (digest, manifest) = match store.get_bytes(&manifest_key) {
        Ok(bytes) => (
            Some(crate::digest::sha256(&bytes)),
            typed::<Manifest>(&bytes).map_err(|e| bad(&manifest_key, &e))?,
        ),
        Err(StoreError::NotFound { .. }) => (None, Value::Null),
        Err(e) => return Err(e.into()),
    };
    let coverage = read(
        store,
        &layout::COVERAGE_REPORT.at(location),
        typed::<CoverageReport>,
    )?;
    // `config` is `[build]`, the build stage's own type: shown as written.
    let build = read(
        store,
        &layout::BUILD_REPORT.at(location),
        typed::<BuildReport<Value>>,
    )?;
    let mut gates = Vec::new();
    for (file, title) in GATES {
        if let Some(r) = read_gate(store, file, location)? {
            gates.push((file.name(), title, r));
        }
    }
    Ok(Reports {
        digest,
        manifest,
        coverage,
        build,
        gates,
    })
}

/// A gate report, read with its gate's own type.
fn read_gate(
    store: &Store,
    file: layout::File,
    location: &str,
) -> Result<Option<Value>, HtmlError> {
    let key = file.at(location);
    match store.get_bytes(&key) {
        Ok(bytes) => read_gate_report(file.name(), &bytes)
            .and_then(serde_json::to_value)
            .map(Some)
            .map_err(|e| bad(&key, &e)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The summary: digests and versions, then each stage's verdict.
fn summary_section(reports: &Reports) -> String {
    let manifest = &reports.manifest;
    let mut h = String::from("<section><h2>Summary</h2><table><tbody>");
    let _ = write!(
        h,
        "<tr><th>Release digest</th><td><code>{}</code></td></tr>\
         <tr><th>Tool</th><td>{} {} ({})</td></tr>\
         <tr><th>Config digest</th><td><code>{}</code></td></tr>\
         <tr><th>Registry digest</th><td><code>{}</code></td></tr>",
        reports.digest.as_deref().map_or_else(|| "–".into(), esc),
        show(&manifest["tool"]["name"]),
        show(&manifest["tool"]["version"]),
        show(&manifest["tool"]["git_commit"]),
        show(&manifest["config_digest"]),
        show(&manifest["registry_digest"]),
    );
    h.push_str("</tbody></table><h3>Verdicts</h3><table><thead><tr><th>Stage</th><th>Verdict</th><th>Report</th></tr></thead><tbody>");
    if let Some(c) = &reports.coverage {
        let _ = write!(
            h,
            "<tr><td>coverage</td><td>{}</td><td><code>coverage_report.json</code></td></tr>",
            verdict_badge(&c["verdict"])
        );
    }
    if let Some(b) = &reports.build {
        let _ = write!(
            h,
            "<tr><td>build</td><td>{}</td><td><code>build_report.json</code></td></tr>",
            verdict_badge(&b["verdict"])
        );
    }
    for (file, title, r) in &reports.gates {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(title),
            verdict_badge(&r["verdict"]),
            esc(file)
        );
    }
    h.push_str("</tbody></table></section>");
    h
}

fn coverage_section(c: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<section><h2>Coverage</h2><p>Verdict {}</p>",
        verdict_badge(&c["verdict"])
    );
    h.push_str(&table(
        c["families"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("family", "Family"),
            ("stage", "Stage"),
            ("required", "Required"),
            ("holdout", "Holdout"),
            ("status", "Status"),
            ("datasets_present", "Datasets present"),
            ("objects", "Objects"),
            ("bytes", "Bytes"),
        ],
    ));
    h.push_str(&findings(c));
    h.push_str("</section>");
    h
}

fn build_section(b: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<section><h2>Build</h2><p>Verdict {}: {} records read, {} exported, {} quarantined, {} held by PII policy, {} duplicates removed; {} tokens.</p>",
        verdict_badge(&b["verdict"]),
        show(&b["records_read"]),
        show(&b["records_exported"]),
        show(&b["records_quarantined"]),
        show(&b["records_removed_by_policy"]),
        show(&b["records_removed_as_duplicates"]),
        show(&b["tokens_exported"]),
    );
    h.push_str(&table(
        b["objects"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("key", "Source object"),
            ("dataset", "Dataset"),
            ("read", "Read"),
            ("exported", "Exported"),
            ("removed_by_policy", "Held"),
            ("duplicates_removed", "Duplicates"),
            ("quarantine_rate", "Quarantine rate"),
            ("verdict", "Verdict"),
        ],
    ));
    let d = &b["dedup"];
    let _ = write!(
        h,
        "<h3>Deduplication</h3><p>{} exact and {} near duplicates removed (threshold {}, {} bands × {} rows); list in <code>{}</code>.</p>",
        show(&d["exact_removed"]),
        show(&d["near_removed"]),
        show(&d["near_params"]["threshold"]),
        show(&d["near_params"]["bands"]),
        show(&d["near_params"]["rows"]),
        show(&d["removed_list"]),
    );
    h.push_str("</section>");
    h
}

/// One gate's section: its findings, and what is particular to the privacy, leakage and
/// distribution gates.
fn gate_section(file: &str, title: &str, r: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<section><h2>{}</h2><p>Verdict {} · <code>{}</code></p><p class=\"muted\">{}</p>",
        esc(title),
        verdict_badge(&r["verdict"]),
        esc(file),
        show(&r["method"])
    );
    h.push_str(&findings(r));
    if r["gate"] == "privacy" && r["evaluation"].is_object() {
        h.push_str(&measured_recall(&r["evaluation"]));
    }
    if r["gate"] == "leakage" {
        h.push_str(&certificate(&r["certificate"]));
    }
    if r["gate"] == "distribution" {
        h.push_str(&distribution(r));
    }
    h.push_str("</section>");
    h
}

/// The leakage gate's certificate: how complete its search for cross-split pairs was.
fn certificate(c: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<h3>Certificate</h3><p>{} records, {} candidate pairs, {} verified; complete: {}; probability that a pair at the threshold was a candidate: {}.</p>",
        show(&c["records"]),
        show(&c["candidates"]),
        show(&c["candidates_verified"]),
        show(&c["complete"]),
        show(&c["candidate_probability_at_threshold"]),
    );
    h.push_str(&table(
        c["pairs"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("splits", "Splits"),
            ("exact", "Exact pairs"),
            ("near", "Near pairs"),
        ],
    ));
    h
}

/// A rate with its interval: `0.931 [0.912, 0.946] (540/580)`.
fn rate(m: &Value) -> String {
    match (m["value"].as_f64(), m["wilson_95"].as_array()) {
        (Some(v), Some(ci)) if ci.len() == 2 => format!(
            "{v:.3} [{:.3}, {:.3}] ({}/{})",
            ci[0].as_f64().unwrap_or(0.0),
            ci[1].as_f64().unwrap_or(0.0),
            m["hits"],
            m["total"]
        ),
        _ => "–".into(),
    }
}

/// The privacy gate's measurement on labelled sets: per set, then recall per labelled type.
fn measured_recall(e: &Value) -> String {
    let mut h = String::from("<h3>Measured redaction on labelled sets</h3>");
    let _ = write!(
        h,
        "<p class=\"muted\">{} Minimums: direct recall {}, precision {}.</p>",
        show(&e["method"]),
        show(&e["minimums"]["min_recall_direct"]),
        show(&e["minimums"]["min_precision"]),
    );
    h.push_str("<table><thead><tr><th>Set</th><th>Documents</th><th>Direct recall [95% CI]</th><th>Precision [95% CI]</th><th>F2</th><th>Status</th></tr></thead><tbody>");
    let sets = e["sets"].as_array().map_or(&[][..], Vec::as_slice);
    for s in sets {
        let sc = &s["scores"];
        let status = if s["passed"].as_bool() == Some(true) {
            "pass"
        } else {
            "fail"
        };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            show(&s["key"]),
            show(&sc["documents"]),
            esc(&rate(&sc["recall_direct"])),
            esc(&rate(&sc["precision"])),
            show(&sc["f2_direct"]),
            verdict_badge(&Value::from(status)),
            s["error"]
                .as_str()
                .map_or_else(String::new, |e| format!(" {}", esc(e))),
        );
    }
    h.push_str("</tbody></table>");
    for s in sets {
        let Some(types) = s["scores"]["recall_by_type"].as_object() else {
            continue;
        };
        let _ = write!(
            h,
            "<p>Recall per labelled type, <code>{}</code></p><table><thead><tr><th>Type</th><th>Recall [95% CI]</th></tr></thead><tbody>",
            show(&s["key"])
        );
        for (t, m) in types {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(t), esc(&rate(m)));
        }
        h.push_str("</tbody></table>");
    }
    h
}

fn distribution(r: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<p>Tokens by <code>{}</code>; max_seq_length {}. Baseline: {}.</p>",
        show(&r["tokenizer"]),
        show(&r["max_seq_length"]),
        match r["baseline"]["release_version"].as_str() {
            Some(v) => format!("published release {}", esc(v)),
            None => "none (first release)".into(),
        }
    );
    h.push_str("<h3>Expected ranges</h3>");
    h.push_str(&table(
        r["range_checks"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("family", "Family"),
            ("metric", "Metric"),
            ("value", "Value"),
            ("range", "Range"),
            ("status", "Status"),
        ],
    ));
    let regression = r["regression_checks"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !regression.is_empty() {
        h.push_str("<h3>Regression against the baseline</h3>");
        h.push_str(&table(
            regression,
            &[
                ("family", "Family"),
                ("split", "Split"),
                ("metric", "Metric"),
                ("baseline", "Baseline"),
                ("current", "Current"),
                ("value", "Change / PSI"),
                ("threshold", "Threshold"),
                ("regressed", "Regressed"),
            ],
        ));
    }
    let groups = r["groups"].as_array().map_or(&[][..], Vec::as_slice);
    h.push_str("<h3>Per family × split</h3>");
    h.push_str(&table(
        groups,
        &[
            ("family", "Family"),
            ("split", "Split"),
            ("records", "Records"),
            ("tokens.mean", "Tokens mean"),
            ("tokens.p50", "p50"),
            ("tokens.p95", "p95"),
            ("tokens.max", "Max"),
            ("turns.mean", "Turns mean"),
            ("turns.max", "Turns max"),
            ("over_max_seq_length", "Over max_seq_length"),
        ],
    ));
    let mut family = "";
    for g in groups.iter().filter(|g| g["split"] != "all") {
        let f = g["family"].as_str().unwrap_or("");
        if f != family {
            if !family.is_empty() {
                h.push_str("</div>");
            }
            let _ = write!(h, "<h3>{}</h3><div class=\"charts\">", esc(f));
            family = f;
        }
        for (metric, label) in [
            ("tokens", "tokens per record"),
            ("turns", "turns per record"),
        ] {
            let title = format!(
                "{f} · {} · {label} ({} records)",
                g["split"].as_str().unwrap_or(""),
                g["records"]
            );
            let _ = write!(
                h,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                histogram_svg(
                    &title,
                    metric,
                    g[metric]["histogram"]["edges"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice),
                    g[metric]["histogram"]["counts"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice),
                ),
                esc(&title)
            );
        }
    }
    if !family.is_empty() {
        h.push_str("</div>");
    }
    h
}

/// Renders and writes `{location}report.html`; returns its key.
pub fn write(store: &Store, location: &str) -> Result<String, HtmlError> {
    let page = render(store, location)?;
    let key = layout::REPORT_HTML.at(location);
    store.put(&key, page.into_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gate_report_has_a_section() {
        let files: Vec<layout::File> = GATES.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, layout::GATE_REPORTS);
    }

    #[test]
    fn values_from_reports_are_escaped() {
        assert_eq!(
            esc("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        let svg = histogram_svg(
            "a<b",
            "tokens",
            &[0.into(), 16.into()],
            &[3.into(), 1.into()],
        );
        assert!(svg.contains("a&lt;b") && svg.matches("<rect").count() == 2);
    }
}
