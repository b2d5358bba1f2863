//! The README's tables of finding codes, rendered from the registry.
//!
//! Each table sits between two marker lines, `<!-- codes:NAME:begin -->` and
//! `<!-- codes:NAME:end -->`, and everything between them is generated: `cargo xtask docs`
//! rewrites it, and `cargo xtask docs --check` and a test of gatehouse-core fail, naming the
//! table, when the README differs from what the registry renders.

use thiserror::Error;

use super::{Area, Code};

/// A column of a code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Code,
    /// The gate (or stage) that reports it: [`Area::label`].
    Area,
    Name,
    Summary,
    Action,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Code => "code",
            Column::Area => "gate",
            Column::Name => "name",
            Column::Summary => "finding",
            Column::Action => "what to do",
        }
    }
}

/// One generated table of the README.
#[derive(Debug)]
pub struct Section {
    /// The `NAME` of its markers.
    pub name: &'static str,
    /// Whose codes it lists, in this order.
    pub areas: &'static [Area],
    pub columns: &'static [Column],
}

/// The README's code tables. Every area is in exactly one.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "coverage",
        areas: &[Area::Coverage],
        columns: &[Column::Code, Column::Name, Column::Summary],
    },
    Section {
        name: "quarantine",
        areas: &[Area::Quarantine],
        columns: &[Column::Code, Column::Name, Column::Summary],
    },
    Section {
        name: "gates",
        areas: &[
            Area::Privacy,
            Area::Provenance,
            Area::Dedup,
            Area::Leakage,
            Area::Distribution,
            Area::Export,
        ],
        columns: &[Column::Code, Column::Area, Column::Name, Column::Summary],
    },
    Section {
        name: "consume",
        areas: &[Area::Consume],
        columns: &[Column::Code, Column::Name, Column::Summary, Column::Action],
    },
];

const MARKER: &str = "<!-- codes:";

impl Section {
    pub fn begin(&self) -> String {
        format!("{MARKER}{}:begin -->", self.name)
    }

    pub fn end(&self) -> String {
        format!("{MARKER}{}:end -->", self.name)
    }

    /// The Markdown table: a header, then one row per code (codes that share an id, one
    /// finding under several names, share a row).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
            out.push('|');
            for cell in cells {
                out.push(' ');
                out.push_str(&cell);
                out.push_str(" |");
            }
            out.push('\n');
        };
        row(
            &mut out,
            &mut self.columns.iter().map(|c| c.header().to_string()),
        );
        row(
            &mut out,
            &mut self.columns.iter().map(|_| "---".to_string()),
        );
        let codes: Vec<&Code> = self
            .areas
            .iter()
            .flat_map(|a| a.codes().iter().copied())
            .collect();
        for group in codes.chunk_by(|a, b| a.id == b.id) {
            let first = group[0];
            row(
                &mut out,
                &mut self.columns.iter().map(|c| match c {
                    Column::Code => first.id.to_string(),
                    Column::Area => first.area.label().to_string(),
                    Column::Name => group.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
                    Column::Summary => first.summary.to_string(),
                    Column::Action => first.action.unwrap_or("").to_string(),
                }),
            );
        }
        out
    }

    /// What belongs between the markers: the table, with a blank line on each side.
    fn body(&self) -> String {
        format!("\n{}\n", self.render())
    }
}

/// The README's markers are not as [`SECTIONS`] needs them.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MarkerError {
    #[error("no line `{0}`")]
    Missing(String),
    #[error("`{0}` is there more than once")]
    Repeated(String),
    #[error("`{0}` comes before its begin marker")]
    Misordered(String),
    #[error("`{0}` names no table of codes (known: coverage, quarantine, gates, consume)")]
    Unknown(String),
}

/// The README with every code table as the registry renders it.
#[derive(Debug)]
pub struct Refreshed {
    pub text: String,
    /// The tables whose text changed (their `NAME`s), in README order of [`SECTIONS`].
    pub stale: Vec<&'static str>,
}

/// Renders every table of [`SECTIONS`] into `readme` between its markers, and says which
/// tables were not current.
pub fn refresh(readme: &str) -> Result<Refreshed, MarkerError> {
    for line in readme
        .lines()
        .filter(|l| l.trim_start().starts_with(MARKER))
    {
        let known = SECTIONS
            .iter()
            .any(|s| line == s.begin() || line == s.end());
        if !known {
            return Err(MarkerError::Unknown(line.to_string()));
        }
    }
    let mut text = readme.to_string();
    let mut stale = Vec::new();
    for section in SECTIONS {
        let (begin, end) = (section.begin(), section.end());
        let start = marker_line(&text, &begin)? + begin.len() + 1;
        let stop = marker_line(&text, &end)?;
        if stop < start {
            return Err(MarkerError::Misordered(end));
        }
        let body = section.body();
        if text[start..stop] != body {
            stale.push(section.name);
            text.replace_range(start..stop, &body);
        }
    }
    Ok(Refreshed { text, stale })
}

/// The offset of the one line that is exactly `marker` (followed by a newline).
fn marker_line(text: &str, marker: &str) -> Result<usize, MarkerError> {
    let mut found = text.match_indices(marker).map(|(i, _)| i).filter(|&i| {
        (i == 0 || text.as_bytes()[i - 1] == b'\n')
            && text.as_bytes().get(i + marker.len()) == Some(&b'\n')
    });
    let first = found
        .next()
        .ok_or_else(|| MarkerError::Missing(marker.to_string()))?;
    if found.next().is_some() {
        return Err(MarkerError::Repeated(marker.to_string()));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skeleton() -> String {
        let mut s = String::from("# title\n\n");
        for section in SECTIONS {
            s.push_str(&format!(
                "{}\nold\n{}\n\ntext\n",
                section.begin(),
                section.end()
            ));
        }
        s
    }

    #[test]
    fn refresh_fills_every_table_and_is_then_a_fixpoint() {
        let first = refresh(&skeleton()).unwrap();
        assert_eq!(first.stale, ["coverage", "quarantine", "gates", "consume"]);
        assert!(
            first
                .text
                .contains("| DUP001 | dedup | exact-duplicate-in-export |")
        );
        assert!(first.text.ends_with("<!-- codes:consume:end -->\n\ntext\n"));
        let again = refresh(&first.text).unwrap();
        assert!(again.stale.is_empty());
        assert_eq!(again.text, first.text);
    }

    #[test]
    fn one_finding_under_several_names_is_one_row() {
        let consume = SECTIONS.iter().find(|s| s.name == "consume").unwrap();
        let table = consume.render();
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| CON005 "))
            .collect();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].contains(
            "routing-family-not-in-release, release-family-not-routed, routing-stage-mismatch, records-not-routed"
        ));
    }

    #[test]
    fn markers_must_be_whole_single_ordered_and_known() {
        let s = skeleton();
        let gates_end = "<!-- codes:gates:end -->";
        assert_eq!(
            refresh(&s.replace(&format!("{gates_end}\n"), "")).unwrap_err(),
            MarkerError::Missing(gates_end.into())
        );
        assert_eq!(
            refresh(&format!("{s}{gates_end}\n")).unwrap_err(),
            MarkerError::Repeated(gates_end.into())
        );
        let swapped = s
            .replace("<!-- codes:gates:begin -->", "@")
            .replace(gates_end, "<!-- codes:gates:begin -->")
            .replace('@', gates_end);
        assert_eq!(
            refresh(&swapped).unwrap_err(),
            MarkerError::Misordered(gates_end.into())
        );
        assert_eq!(
            refresh(&format!("{s}<!-- codes:gate:end -->\n")).unwrap_err(),
            MarkerError::Unknown("<!-- codes:gate:end -->".into())
        );
    }
}
