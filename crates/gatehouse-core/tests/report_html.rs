//! `report.html`: written by the gates, well-formed, self-contained (no script, nothing
//! loaded), one histogram per family × split and metric, every gate shown, and no
//! conversation text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::store::Store;

#[test]
fn the_release_page_renders_every_report_as_self_contained_markup() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    build_with(&store, &reg, &BuildConfig::default());
    let config = sample_gates_config();
    let outcome = gates_with(&store, &reg, &config, &[], &Default::default()).unwrap();
    let key = format!("{LOC}report.html");
    assert!(outcome.written.contains(&key));
    let page = text(&store, &key);

    let doc = roxmltree::Document::parse(page.trim_start_matches("<!DOCTYPE html>\n"))
        .expect("the page is well-formed XML");
    let charts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg") && n.attribute("class") == Some("histogram"))
        .collect();
    let groups = outcome
        .distribution
        .detail
        .groups
        .iter()
        .filter(|g| g.split != "all")
        .count();
    assert!(groups >= 5);
    assert_eq!(
        charts.len(),
        2 * groups,
        "tokens and turns per family × split"
    );
    for chart in &charts {
        assert!(
            chart.attribute("aria-label").is_some(),
            "charts are labelled"
        );
        assert!(chart.descendants().any(|n| n.has_tag_name("rect")));
    }
    // Self-contained: no script, nothing fetched.
    assert!(!doc.descendants().any(|n| n.has_tag_name("script")));
    assert!(
        !doc.descendants()
            .any(|n| n.attribute("src").is_some() || n.attribute("href").is_some())
    );
    // Every stage that ran has its section (coverage did not run here).
    assert!(!page.contains("<h2>Coverage</h2>"));
    for title in [
        "Build",
        "Privacy",
        "Provenance",
        "Deduplication",
        "Cross-split leakage",
        "Distribution",
    ] {
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("h2") && n.text() == Some(title)),
            "{title} missing"
        );
    }
    // No conversation text: no message of the export appears in the page.
    for r in records(&store, &format!("{LOC}compiled_export.jsonl"))
        .iter()
        .take(50)
    {
        let content = r["messages"][0]["content"].as_str().unwrap();
        let probe: String = content.chars().take(40).collect();
        assert!(!page.contains(&probe), "conversation text reached the page");
    }
}
