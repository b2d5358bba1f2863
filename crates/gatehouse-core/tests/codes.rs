//! The finding-code registry: ids unique and well formed, every code documented, and the
//! README's code tables current (`cargo xtask docs` rewrites them).

use std::collections::BTreeMap;
use std::path::Path;

use gatehouse_core::report::codes::{self, Area, Code, privacy, readme};
use gatehouse_text::pii::PiiType;

fn one_line(text: &str) -> bool {
    !text.is_empty() && !text.contains(['|', '\n', '\r']) && text.trim() == text
}

#[test]
fn ids_are_well_formed_and_name_one_finding_each() {
    let all: Vec<&Code> = codes::all().collect();
    for area in Area::ALL {
        let codes = area.codes();
        assert!(!codes.is_empty(), "{area:?} has no codes");
        for c in codes {
            assert_eq!(c.area, area, "{} {} is listed under {area:?}", c.id, c.name);
            let digits = c.id.strip_prefix(area.prefix()).unwrap_or_default();
            assert!(
                digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) && digits != "000",
                "{}: an id is {}NNN",
                c.id,
                area.prefix()
            );
            assert!(
                !c.name.is_empty()
                    && c.name.split('-').all(|w| !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{}: name {:?} is not kebab-case",
                c.id,
                c.name
            );
            assert!(
                one_line(c.summary),
                "{}: summary is not one table cell",
                c.id
            );
            assert!(
                c.action.is_none_or(one_line),
                "{}: action is not one table cell",
                c.id
            );
        }
        for pair in codes.windows(2) {
            assert!(
                pair[0].id <= pair[1].id,
                "{area:?}: {} before {}",
                pair[0].id,
                pair[1].id
            );
        }
    }
    // One id is one finding: codes sharing it are declared together (one README row), with
    // one meaning, and under different names.
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for group in all.chunk_by(|a, b| a.id == b.id) {
        *runs.entry(group[0].id).or_default() += 1;
        for c in group {
            assert_eq!(
                (c.summary, c.action),
                (group[0].summary, group[0].action),
                "{}",
                c.id
            );
        }
        for (i, a) in group.iter().enumerate() {
            assert!(
                group[i + 1..].iter().all(|b| b.name != a.name),
                "{} {} is declared twice",
                a.id,
                a.name
            );
        }
    }
    let repeated: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "ids declared apart: {repeated:?}");
}

#[test]
fn every_detection_has_its_code() {
    for kind in PiiType::ALL {
        let code = privacy::detected(kind);
        assert_eq!((code.id, code.name), (kind.code(), kind.name()));
        assert!(privacy::ALL.contains(&code), "{} is not listed", code.id);
    }
}

#[test]
fn every_area_is_in_one_readme_table() {
    for area in Area::ALL {
        let tables: Vec<&str> = readme::SECTIONS
            .iter()
            .filter(|s| s.areas.contains(&area))
            .map(|s| s.name)
            .collect();
        assert_eq!(tables.len(), 1, "{area:?} is in {tables:?}");
    }
}

#[test]
fn readme_code_tables_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let refreshed = readme::refresh(&text).unwrap_or_else(|e| panic!("README.md: {e}"));
    assert!(
        refreshed.stale.is_empty(),
        "README.md: the code table(s) {} differ from the registry \
         (crates/gatehouse-core/src/report/codes.rs); run `cargo xtask docs`",
        refreshed.stale.join(", ")
    );
}
