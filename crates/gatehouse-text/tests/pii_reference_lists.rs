//! The detector against public reference lists (`../shared/data/pii_dev/resources`), each
//! put in a sentence: libphonenumber's example numbers of every region in E.164,
//! international and national form; the SWIFT registry's example IBAN of every country,
//! electronic and printed; libpostal's English street types and their variants; and the
//! short forms of the Medical Abbreviation Meta-Inventory in note-like lines, which must stay
//! (precision on clinical text).
//!
//! The lists are test inputs, never copied into the repository; without `../shared` these
//! tests skip, in CI (`CI` set) they fail. Floors are today's figures less a margin, so a
//! change that loses a format fails here. No list entry was added to the detector from here:
//! the detector's rules are formats (groupings, checksums, cues); these lists measure them.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use gatehouse_text::pii::{Allowlist, Detector, replaced_regions};

fn resources() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pii_dev/resources");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs these tests: ../shared/data/pii_dev/resources is missing"
    );
    eprintln!("skipped: ../shared/data/pii_dev/resources is not here");
    None
}

/// Rows of a TSV file with a header line, split on tabs.
fn rows(dir: &std::path::Path, file: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The code-point regions the build would replace in `text`.
fn replaced(detector: &Detector, text: &str) -> Vec<(usize, usize)> {
    let (regions, settled) = replaced_regions(detector, &Allowlist::default(), &[text]);
    assert!(settled, "redaction did not settle");
    regions
        .into_iter()
        .next()
        .unwrap_or_default()
        .iter()
        .map(|r| (r.char_start, r.char_end))
        .collect()
}

/// Whether every character of `needle`, placed at `{}` in `template`, is replaced.
fn wholly_replaced(detector: &Detector, template: &str, needle: &str) -> bool {
    let text = template.replace("{}", needle);
    let start = template[..template.find("{}").unwrap()].chars().count();
    let end = start + needle.chars().count();
    let inside: usize = replaced(detector, &text)
        .iter()
        .map(|&(a, b)| b.min(end).saturating_sub(a.max(start)))
        .sum();
    inside == end - start
}

#[test]
fn phone_numbers_of_every_region_in_every_form() {
    let Some(dir) = resources() else { return };
    let detector = Detector::new();
    let templates = [
        "You can reach me at {} any evening.",
        "my number is {}",
        "{} is my cell",
        "Call {} after six.",
    ];
    // Columns: region, calling_code, type, e164, international, national.
    for (column, form, floor) in [
        (3, "E.164", 0.99),
        (4, "international", 0.99),
        (5, "national", 0.95),
    ] {
        let (mut n, mut caught) = (0u32, 0u32);
        for row in rows(&dir, "phone_examples.tsv") {
            let Some(number) = row.get(column).filter(|s| !s.is_empty()) else {
                continue;
            };
            for t in templates {
                n += 1;
                caught += u32::from(wholly_replaced(&detector, t, number));
            }
        }
        let recall = f64::from(caught) / f64::from(n);
        eprintln!("phones, {form}: {caught} of {n} wholly replaced ({recall:.3})");
        assert!(
            recall >= floor,
            "{form} phones: recall {recall:.3} < {floor}"
        );
    }
}

#[test]
fn iban_of_every_country_wholly_replaced() {
    let Some(dir) = resources() else { return };
    let detector = Detector::new();
    // Columns: country, length, structure, electronic, print, mod97_valid.
    for row in rows(&dir, "iban_examples.tsv") {
        for iban in [&row[3], &row[4]] {
            assert!(
                wholly_replaced(&detector, "Please send it to {} by Friday.", iban),
                "the example IBAN of {} ({} characters) is not wholly replaced",
                row[0],
                iban.len()
            );
        }
    }
}

#[test]
fn street_types_and_their_variants() {
    let Some(dir) = resources() else { return };
    let detector = Detector::new();
    let (mut n, mut caught) = (0u32, 0u32);
    let mut canonical_missed = Vec::new();
    for row in rows(&dir, "street_types_en.tsv") {
        let canonical = row[0].clone();
        let variants = row.get(1).map_or("", String::as_str);
        for (i, form) in std::iter::once(canonical.as_str())
            .chain(variants.split('|').filter(|v| !v.is_empty()))
            .enumerate()
        {
            let mut title = form.to_string();
            title[..1].make_ascii_uppercase();
            let address = format!("4127 Maple {title}");
            let ok = wholly_replaced(&detector, "We moved to {} a year ago.", &address);
            n += 1;
            caught += u32::from(ok);
            // libpostal lists "number" ("Route Number 9"); the detector leaves it out.
            if !ok && i == 0 && !form.contains(' ') && form != "number" {
                canonical_missed.push(form.to_string());
            }
        }
    }
    let recall = f64::from(caught) / f64::from(n);
    eprintln!("street types: {caught} of {n} forms wholly replaced ({recall:.3})");
    // The detector reads this same list (`data/street_types.txt`), so this guards its
    // wiring, not its reach. Today 0.892: misses are one-letter forms ("C", "D") and
    // compound abbreviations of county, state and township roads ("C.r.", "St.rte").
    assert!(recall >= 0.87, "street types: recall {recall:.3} < 0.87");
    assert!(
        canonical_missed.is_empty(),
        "one-word street types not caught: {canonical_missed:?}"
    );
}

#[test]
fn clinical_shorthand_is_not_redacted() {
    let Some(dir) = resources() else { return };
    let detector = Detector::new();
    let templates = [
        "Pt seen today, {} noted on exam.",
        "{} unchanged from yesterday.",
        "NEURO: {} , will cont to monitor.",
        "Plan: cont {} and reassess in AM.",
    ];
    let mut forms = BTreeSet::new();
    let (mut n, mut touched) = (0u32, 0u32);
    for row in rows(&dir, "clinical_abbreviations.tsv") {
        let form = &row[0];
        if !form.chars().any(char::is_alphabetic) || !forms.insert(form.clone()) {
            continue;
        }
        for t in templates {
            n += 1;
            touched += u32::from(!replaced(&detector, &t.replace("{}", form)).is_empty());
        }
    }
    let rate = f64::from(touched) / f64::from(n);
    eprintln!(
        "clinical short forms: {touched} of {n} note lines had something redacted ({rate:.4}), {} forms",
        forms.len()
    );
    // Today 0.021: mostly short forms that are also given names in lower case ("sara",
    // "nina"), which social text needs caught.
    assert!(
        rate <= 0.03,
        "clinical shorthand redacted in {rate:.4} of lines"
    );
}
