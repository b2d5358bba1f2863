//! Which keys a dataset claims. An `include` or `exclude` entry is one of:
//! - a glob (contains `*`, `?`, `[` or `{`): `*` stays within one path segment, `**` crosses
//!   segments, e.g. `sources/voice/**/*.txt`; a glob ending in `/` names folders and claims
//!   everything below them (`raw/2024-*/` is `raw/2024-*/**`); a backslash makes the next
//!   character literal (`raw/s\[1\].jsonl`);
//! - a folder (ends with `/`): every key below it;
//! - anything else: that exact key, or every key below it as a folder.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiled include/exclude patterns of one dataset.
#[derive(Debug, Clone)]
pub struct KeyMatcher {
    include: Patterns,
    exclude: Patterns,
}

#[derive(Debug, Clone)]
struct Patterns {
    literals: Vec<String>,
    globs: GlobSet,
}

/// Whether a pattern is a glob rather than a key or folder.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

impl Patterns {
    fn new(patterns: &[String]) -> Result<Self, String> {
        let mut literals = Vec::new();
        let mut globs = GlobSetBuilder::new();
        for p in patterns {
            if is_glob(p) {
                let p = if p.ends_with('/') {
                    format!("{p}**")
                } else {
                    p.clone()
                };
                let glob = GlobBuilder::new(&p)
                    .backslash_escape(true)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("invalid glob {p:?}: {}", e.kind()))?;
                globs.add(glob);
            } else {
                literals.push(p.clone());
            }
        }
        let globs = globs.build().map_err(|e| e.to_string())?;
        Ok(Self { literals, globs })
    }

    fn is_match(&self, key: &str) -> bool {
        self.literals.iter().any(|p| literal_matches(p, key)) || self.globs.is_match(key)
    }
}

fn literal_matches(pattern: &str, key: &str) -> bool {
    if pattern.ends_with('/') {
        key.starts_with(pattern)
    } else {
        key == pattern
            || (key.len() > pattern.len()
                && key.starts_with(pattern)
                && key.as_bytes()[pattern.len()] == b'/')
    }
}

impl KeyMatcher {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(Self {
            include: Patterns::new(include)?,
            exclude: Patterns::new(exclude)?,
        })
    }

    pub fn is_match(&self, key: &str) -> bool {
        self.include.is_match(key) && !self.exclude.is_match(key)
    }

    /// Keys that a literal include of this matcher certainly claims, used to detect
    /// overlapping datasets before listing anything.
    pub(crate) fn literal_probes(&self) -> Vec<String> {
        self.include
            .literals
            .iter()
            .flat_map(|p| {
                let folder_probe = format!("{}/~probe~", p.trim_end_matches('/'));
                if p.ends_with('/') {
                    vec![folder_probe]
                } else {
                    vec![p.clone(), folder_probe]
                }
            })
            .filter(|k| self.is_match(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(include: &[&str], exclude: &[&str]) -> KeyMatcher {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        KeyMatcher::new(&s(include), &s(exclude)).unwrap()
    }

    #[test]
    fn literal_is_a_key_or_a_folder_but_not_a_string_prefix() {
        let k = m(&["raw/therapy"], &[]);
        assert!(k.is_match("raw/therapy"));
        assert!(k.is_match("raw/therapy/a.jsonl"));
        assert!(!k.is_match("raw/therapy2/a.jsonl"));
        let f = m(&["raw/therapy/"], &[]);
        assert!(f.is_match("raw/therapy/x/y.csv"));
        assert!(!f.is_match("raw/therapy"));
    }

    #[test]
    fn single_star_stays_in_a_segment_and_double_star_crosses() {
        let k = m(&["voice/*.txt"], &[]);
        assert!(k.is_match("voice/a.txt"));
        assert!(!k.is_match("voice/sub/a.txt"));
        let k = m(&["voice/**/*.txt"], &[]);
        assert!(k.is_match("voice/sub/deeper/a.txt"));
        assert!(k.is_match("voice/a.txt"));
    }

    #[test]
    fn a_glob_ending_in_a_slash_claims_the_folders_contents() {
        let k = m(&["raw/2024-*/"], &[]);
        assert!(k.is_match("raw/2024-01/a.jsonl"));
        assert!(k.is_match("raw/2024-01/deep/b.jsonl"));
        assert!(!k.is_match("raw/2023-12/a.jsonl"));
    }

    #[test]
    fn escaped_glob_characters_are_literal() {
        let k = m(&[r"raw/s\[1\].jsonl"], &[]);
        assert!(k.is_match("raw/s[1].jsonl"));
        assert!(!k.is_match("raw/s1.jsonl"));
    }

    #[test]
    fn exclude_wins_over_include() {
        let k = m(&["raw/"], &["raw/crisis/", "**/*.tmp"]);
        assert!(k.is_match("raw/a.jsonl"));
        assert!(!k.is_match("raw/crisis/b.jsonl"));
        assert!(!k.is_match("raw/x/c.tmp"));
    }

    #[test]
    fn invalid_glob_is_reported() {
        let err = KeyMatcher::new(&["raw/[".into()], &[]).unwrap_err();
        assert!(err.contains("raw/["), "{err}");
    }
}
