//! Redaction of one conversation: every detected span becomes a typed placeholder with a
//! per-conversation index, so the same person stays the same person (`[NAME_1]` … `[NAME_1]`,
//! a different one is `[NAME_2]`) and the dialogue still reads. A first name seen alone
//! after a full name gets the full name's index.
//!
//! Redaction is a fixpoint by construction: the placeholders change the words around them
//! ("Michael Smith" → "Michael [NAME_1]"), so the redacted conversation is scanned again
//! with [`Detector::detect_conversation`], what that finds is mapped back to the original
//! text and added, and the conversation is redacted again from the original, until a scan
//! of the output finds nothing. The privacy gate runs that same scan on the export, so an
//! export the build wrote passes the gate's scan. A conversation that does not settle in
//! [`MAX_ROUNDS`] is held for review, never exported half-redacted.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Allowlist, Confidence, Detector, PiiType, Span, normalise};

/// Scans of the redacted text before a conversation that still shows detections is held.
pub const MAX_ROUNDS: usize = 4;

/// What to do with spans the detector is unsure about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsurePolicy {
    /// Redact them like any other span.
    #[default]
    Redact,
    /// Keep the record out of the export and list it for human review.
    Review,
}

/// The outcome for one conversation (counts only, never text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    pub counts: BTreeMap<PiiType, u32>,
    /// Spans the detector was unsure about.
    pub unsure: u32,
    /// The policy holds this record for review, or its redaction did not settle.
    pub requires_review: bool,
    /// The redacted text still showed detections after [`MAX_ROUNDS`] scans.
    pub unsettled: bool,
}

impl Redaction {
    pub fn total(&self) -> u32 {
        self.counts.values().sum()
    }
}

/// One replaced region of an original message, in byte and char offsets of that message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub kind: PiiType,
    pub start: usize,
    pub end: usize,
    pub char_start: usize,
    pub char_end: usize,
    pub confidence: Confidence,
}

/// Whether `s` is exactly a placeholder such as `[NAME]` or `[EMAIL_3]`.
pub fn is_placeholder(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    let label = match inner.rsplit_once('_') {
        Some((l, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => l,
        _ => inner,
    };
    PiiType::from_label(label).is_some()
}

/// Redacts every message of a conversation in place.
pub fn redact_conversation<'a>(
    detector: &Detector,
    allow: &Allowlist,
    policy: UnsurePolicy,
    contents: impl IntoIterator<Item = &'a mut String>,
) -> Redaction {
    let mut contents: Vec<&mut String> = contents.into_iter().collect();
    let originals: Vec<&str> = contents.iter().map(|s| s.as_str()).collect();
    let plan = plan(detector, allow, &originals);
    let mut outcome = Redaction {
        unsettled: !plan.settled,
        requires_review: !plan.settled,
        ..Redaction::default()
    };
    for r in plan.regions.iter().flatten() {
        *outcome.counts.entry(r.kind).or_default() += 1;
        if r.confidence == Confidence::Unsure {
            outcome.unsure += 1;
            if policy == UnsurePolicy::Review {
                outcome.requires_review = true;
            }
        }
    }
    for (content, text) in contents.iter_mut().zip(plan.texts) {
        if let Some(text) = text {
            **content = text;
        }
    }
    outcome
}

/// The regions of each message that redaction replaces, in the messages' own offsets, and
/// whether the redacted text settled (a scan of it finds nothing).
pub fn replaced_regions(
    detector: &Detector,
    allow: &Allowlist,
    texts: &[&str],
) -> (Vec<Vec<Replaced>>, bool) {
    let plan = plan(detector, allow, texts);
    let regions = plan
        .regions
        .into_iter()
        .zip(texts)
        .map(|(rs, text)| with_chars(text, rs))
        .collect();
    (regions, plan.settled)
}

/// A region in original byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    kind: PiiType,
    start: usize,
    end: usize,
    confidence: Confidence,
}

struct Plan {
    /// Per message, sorted and disjoint.
    regions: Vec<Vec<Region>>,
    /// Per message, the redacted text (`None`: unchanged).
    texts: Vec<Option<String>>,
    settled: bool,
}

fn plan(detector: &Detector, allow: &Allowlist, texts: &[&str]) -> Plan {
    let mut regions: Vec<Vec<Region>> = detector
        .detect_conversation(texts, allow)
        .into_iter()
        .map(|spans| spans.iter().map(Region::of).collect())
        .collect();
    let mut settled = false;
    let mut rendered = render(texts, &regions);
    // A message with nothing to replace is unchanged and was found clean: its own scan
    // would find the same nothing, only mentions of names found elsewhere can change.
    let scan: Vec<bool> = regions.iter().map(|rs| !rs.is_empty()).collect();
    if !scan.contains(&true) {
        return Plan {
            regions,
            texts: vec![None; texts.len()],
            settled: true,
        };
    }
    for _ in 0..MAX_ROUNDS {
        let views: Vec<&str> = texts
            .iter()
            .zip(&rendered)
            .map(|(t, r)| r.as_ref().map_or(*t, |(s, _)| s.as_str()))
            .collect();
        let scan: Vec<bool> = rendered.iter().map(Option::is_some).collect();
        let again = detector.detect_conversation_where(&views, allow, &scan);
        if again.iter().all(Vec::is_empty) {
            settled = true;
            break;
        }
        for ((spans, map), rs) in again.iter().zip(&rendered).zip(&mut regions) {
            for s in spans {
                let r = match map {
                    Some((_, segments)) => back(segments, s),
                    None => Region::of(s),
                };
                add(rs, r);
            }
        }
        rendered = render(texts, &regions);
    }
    Plan {
        regions,
        texts: rendered.into_iter().map(|r| r.map(|(s, _)| s)).collect(),
        settled,
    }
}

impl Region {
    fn of(s: &Span) -> Region {
        Region {
            kind: s.kind,
            start: s.start,
            end: s.end,
            confidence: s.confidence,
        }
    }
}

/// Adds `r` to the sorted, disjoint `rs`, merging it with every region it overlaps or
/// touches; the merged region keeps the kind of the longest part.
fn add(rs: &mut Vec<Region>, r: Region) {
    // The regions that overlap or touch `r` are consecutive (disjoint and sorted).
    let first = rs.partition_point(|x| x.end < r.start);
    let last = rs.partition_point(|x| x.start <= r.end);
    let mut merged = r;
    let mut longest = r.end - r.start;
    for x in &rs[first..last.max(first)] {
        if x.end - x.start > longest {
            longest = x.end - x.start;
            merged.kind = x.kind;
        }
        merged.start = merged.start.min(x.start);
        merged.end = merged.end.max(x.end);
        merged.confidence = merged.confidence.max(x.confidence);
    }
    rs.splice(first..last.max(first), [merged]);
}

/// A piece of redacted text: `out` bytes that are `orig` bytes of the original, copied or
/// (for a placeholder) replaced.
#[derive(Debug, Clone, Copy)]
struct Segment {
    out: (usize, usize),
    orig: (usize, usize),
    placeholder: bool,
}

/// The span `s` of a redacted text in the original's offsets: a placeholder it touches
/// counts whole.
fn back(segments: &[Segment], s: &Span) -> Region {
    let map = |at: usize, end: bool| -> usize {
        let i = segments.partition_point(|g| g.out.1 < at || (!end && g.out.1 == at));
        let Some(g) = segments.get(i) else {
            return segments.last().map_or(at, |g| g.orig.1);
        };
        if g.placeholder {
            if end { g.orig.1 } else { g.orig.0 }
        } else {
            g.orig.0 + (at - g.out.0)
        }
    };
    Region {
        kind: s.kind,
        start: map(s.start, false),
        end: map(s.end, true),
        confidence: s.confidence,
    }
}

type Rendered = Option<(String, Vec<Segment>)>;

/// Every message with its regions replaced by indexed placeholders (`None` where a message
/// has none), and where each piece came from.
fn render(texts: &[&str], regions: &[Vec<Region>]) -> Vec<Rendered> {
    let mut ids: HashMap<(PiiType, String), u32> = HashMap::new();
    let mut next: BTreeMap<PiiType, u32> = BTreeMap::new();
    let mut out = Vec::with_capacity(texts.len());
    for (text, rs) in texts.iter().zip(regions) {
        if rs.is_empty() {
            out.push(None);
            continue;
        }
        let mut s = String::with_capacity(text.len());
        let mut segments = Vec::with_capacity(2 * rs.len() + 1);
        let mut at = 0;
        for r in rs {
            if r.start > at {
                let o = s.len();
                s.push_str(&text[at..r.start]);
                segments.push(Segment {
                    out: (o, s.len()),
                    orig: (at, r.start),
                    placeholder: false,
                });
            }
            let key = normalise(&text[r.start..r.end]);
            let index = identity(&mut ids, &mut next, r.kind, &key);
            let o = s.len();
            s.push('[');
            s.push_str(r.kind.label());
            s.push('_');
            s.push_str(&index.to_string());
            s.push(']');
            segments.push(Segment {
                out: (o, s.len()),
                orig: (r.start, r.end),
                placeholder: true,
            });
            at = r.end;
        }
        if at < text.len() {
            let o = s.len();
            s.push_str(&text[at..]);
            segments.push(Segment {
                out: (o, s.len()),
                orig: (at, text.len()),
                placeholder: false,
            });
        }
        out.push(Some((s, segments)));
    }
    out
}

fn with_chars(text: &str, rs: Vec<Region>) -> Vec<Replaced> {
    let (mut byte, mut chars) = (0usize, 0usize);
    let mut advance = |to: usize| {
        chars += text[byte..to].chars().count();
        byte = to;
        chars
    };
    rs.into_iter()
        .map(|r| {
            let char_start = advance(r.start);
            let char_end = advance(r.end);
            Replaced {
                kind: r.kind,
                start: r.start,
                end: r.end,
                char_start,
                char_end,
                confidence: r.confidence,
            }
        })
        .collect()
}

/// The placeholder index of a value within the conversation.
fn identity(
    ids: &mut HashMap<(PiiType, String), u32>,
    next: &mut BTreeMap<PiiType, u32>,
    kind: PiiType,
    key: &str,
) -> u32 {
    let key = key.trim_end_matches("'s").trim_end_matches("’s");
    if let Some(i) = ids.get(&(kind, key.to_string())) {
        return *i;
    }
    // A name's parts ("sarah" of "sarah jones") refer to the same person.
    if kind == PiiType::Name {
        let parts: Vec<&str> = key.split(' ').collect();
        for p in &parts {
            if let Some(i) = ids.get(&(kind, (*p).to_string())).copied() {
                ids.insert((kind, key.to_string()), i);
                return i;
            }
        }
        let n = next.entry(kind).or_default();
        *n += 1;
        let i = *n;
        ids.insert((kind, key.to_string()), i);
        if parts.len() > 1 {
            for p in parts {
                ids.entry((kind, p.to_string())).or_insert(i);
            }
        }
        return i;
    }
    let n = next.entry(kind).or_default();
    *n += 1;
    ids.insert((kind, key.to_string()), *n);
    *n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(out: (usize, usize), orig: (usize, usize), placeholder: bool) -> Segment {
        Segment {
            out,
            orig,
            placeholder,
        }
    }

    fn span(start: usize, end: usize) -> Span {
        Span {
            kind: PiiType::Name,
            start,
            end,
            char_start: start,
            char_end: end,
            confidence: Confidence::Sure,
            rule: "test",
        }
    }

    #[test]
    fn spans_of_redacted_text_map_back_to_the_original() {
        // "Michael Smith said" → "Michael [NAME_1] said"
        let segments = [
            seg((0, 8), (0, 8), false),
            seg((8, 16), (8, 13), true),
            seg((16, 21), (13, 18), false),
        ];
        let r = back(&segments, &span(0, 7));
        assert_eq!((r.start, r.end), (0, 7));
        let r = back(&segments, &span(0, 16));
        assert_eq!((r.start, r.end), (0, 13));
        let r = back(&segments, &span(10, 12));
        assert_eq!((r.start, r.end), (8, 13));
        let r = back(&segments, &span(17, 21));
        assert_eq!((r.start, r.end), (14, 18));
    }

    #[test]
    fn overlapping_and_touching_regions_merge() {
        let r = |start, end, kind| Region {
            kind,
            start,
            end,
            confidence: Confidence::Sure,
        };
        let mut rs = vec![r(8, 13, PiiType::Name), r(20, 25, PiiType::Phone)];
        add(&mut rs, r(0, 8, PiiType::Name));
        add(&mut rs, r(30, 31, PiiType::Name));
        assert_eq!(
            rs,
            vec![
                r(0, 13, PiiType::Name),
                r(20, 25, PiiType::Phone),
                r(30, 31, PiiType::Name)
            ]
        );
    }
}
