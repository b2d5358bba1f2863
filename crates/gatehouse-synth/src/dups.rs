//! A stream of conversations with planted duplicates and ground truth, for evaluating
//! deduplication.
//!
//! Record `i` of the stream is, by a seeded draw:
//! - an **original** (about 86%): conversation `i` of the corpus, each turn followed by a
//!   sentence of its own details (seeded pseudo-words), because the corpus's phrase banks
//!   alone make many conversations alike;
//! - an **exact copy** of an earlier original, re-cased and re-spaced (4%);
//! - a **near copy** of an earlier original with words substituted, deleted or inserted
//!   at one of several edit rates (6%);
//! - a **template member** (4%): one of 25 templates' fixed system prompt and therapist
//!   opening, then a conversation of its own, so members of a template share text but are
//!   different conversations: they must not be merged.
//!
//! Every copy gets its own id and group, so copies can land in different splits. Anything
//! is regenerated from `(seed, i)`: nothing needs to be kept in memory.

use crate::{Conversation, Corpus, Family, Rng, Speaker};

/// Edit rates of near copies, in words per thousand.
pub const NEAR_RATES_PERMILLE: [u32; 6] = [5, 10, 20, 30, 40, 60];

/// What a record of the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Original,
    /// An exact copy (case and whitespace changed) of record `of`.
    Exact {
        of: u64,
    },
    /// A near copy of record `of` at an edit rate (words per thousand).
    Near {
        of: u64,
        rate_permille: u32,
    },
    /// A member of template `template`.
    Template {
        template: u32,
    },
}

impl Kind {
    /// The original this record was made from, if any (its lineage).
    pub fn of(self) -> Option<u64> {
        match self {
            Kind::Original => None,
            Kind::Exact { of } | Kind::Near { of, .. } => Some(of),
            Kind::Template { .. } => None,
        }
    }
}

/// One record of the stream.
#[derive(Debug, Clone)]
pub struct Planted {
    pub index: u64,
    pub family: Family,
    pub kind: Kind,
    pub conversation: Conversation,
}

const TEMPLATES: u32 = 25;

/// The stream's generator.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub corpus: Corpus,
}

impl Stream {
    pub fn new(seed: u64) -> Self {
        Self {
            corpus: Corpus::new(seed),
        }
    }

    fn family(index: u64) -> Family {
        Family::ALL[(index % 4) as usize]
    }

    /// The kind of record `index`: draws that point back always point to an original.
    pub fn kind(&self, index: u64) -> Kind {
        let mut rng = Rng::derive(self.corpus.seed, 0xD0B5, index);
        let roll = rng.below(100);
        if index < 10 || roll < 86 {
            return Kind::Original;
        }
        // An earlier original: retry a few draws, then fall back to being one.
        let mut of = None;
        for _ in 0..8 {
            let j = rng.below(index);
            if self.kind(j) == Kind::Original {
                of = Some(j);
                break;
            }
        }
        let Some(of) = of else {
            return Kind::Original;
        };
        match roll {
            86..=89 => Kind::Exact { of },
            90..=95 => Kind::Near {
                of,
                rate_permille: NEAR_RATES_PERMILLE
                    [rng.below(NEAR_RATES_PERMILLE.len() as u64) as usize],
            },
            _ => Kind::Template {
                template: rng.below(u64::from(TEMPLATES)) as u32,
            },
        }
    }

    fn original(&self, index: u64) -> Conversation {
        let mut c = self.corpus.conversation(Self::family(index), index);
        let mut rng = Rng::derive(self.corpus.seed, 0xDE7A, index);
        for (speaker, text) in &mut c.turns {
            if *speaker != Speaker::System {
                text.push(' ');
                text.push_str(&details(&mut rng));
            }
        }
        c
    }

    /// Record `index`.
    pub fn record(&self, index: u64) -> Planted {
        let kind = self.kind(index);
        let mut rng = Rng::derive(self.corpus.seed, 0xC0B1, index);
        let turns = match kind {
            Kind::Original => self.original(index).turns,
            Kind::Exact { of } => self
                .original(of)
                .turns
                .into_iter()
                .map(|(s, t)| (s, respace(&t, &mut rng)))
                .collect(),
            Kind::Near { of, rate_permille } => self
                .original(of)
                .turns
                .into_iter()
                .map(|(s, t)| (s, edit(&t, rate_permille, &mut rng)))
                .collect(),
            Kind::Template { template } => {
                let mut turns = vec![
                    (Speaker::System, template_system(template)),
                    (Speaker::Therapist, template_opening(template)),
                ];
                // Record `index` is not an original, so its own conversation is new.
                turns.extend(
                    self.original(index)
                        .turns
                        .into_iter()
                        .filter(|(s, _)| *s != Speaker::System),
                );
                turns
            }
        };
        let family = match kind {
            Kind::Exact { of } | Kind::Near { of, .. } => Self::family(of),
            _ => Self::family(index),
        };
        Planted {
            index,
            family,
            kind,
            conversation: Conversation {
                id: format!("dup-{index:09}"),
                group: format!("dup-group-{index:09}"),
                turns,
            },
        }
    }
}

/// The same text in another case and spacing.
fn respace(text: &str, rng: &mut Rng) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let upper = rng.chance(50);
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if rng.chance(20) { "  " } else { " " });
        }
        if upper {
            out.push_str(&w.to_uppercase());
        } else {
            out.push_str(&w.to_lowercase());
        }
    }
    out
}

const FILLER: &[&str] = &[
    "really", "just", "maybe", "honestly", "kind", "of", "somehow", "again", "lately", "still",
    "quite", "often", "perhaps", "truly", "anyway",
];

/// The text with each word substituted, deleted or followed by an inserted word with a
/// total probability of `rate_permille` / 1000.
fn edit(text: &str, rate_permille: u32, rng: &mut Rng) -> String {
    let mut out: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        if rng.below(1000) < u64::from(rate_permille) {
            match rng.below(3) {
                0 => out.push(format!("{}ed", rng.pick(FILLER))),
                1 => {}
                _ => {
                    out.push(w.to_string());
                    out.push(rng.pick(FILLER).to_string());
                }
            }
        } else {
            out.push(w.to_string());
        }
    }
    out.join(" ")
}

fn template_system(t: u32) -> String {
    format!(
        "You are a supportive counselling assistant for programme {t}. Follow the programme's \
         safety protocol, keep boundaries, never diagnose, and refer to emergency services or \
         a crisis line such as 988 when someone may be at risk. Use reflective listening and \
         open questions, and summarise what you heard before suggesting any next step."
    )
}

fn template_opening(t: u32) -> String {
    format!(
        "Welcome to session {t} of the programme. Thank you for being here today. Before we \
         start, remember that you can pause at any time. What would you like to talk about?"
    )
}

/// A sentence of 8 to 15 pseudo-words: the details that make a conversation its own.
fn details(rng: &mut Rng) -> String {
    const ONSETS: &[&str] = &[
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
    let n = rng.range(8, 15);
    let words: Vec<String> = (0..n)
        .map(|_| {
            (0..rng.range(2, 3))
                .map(|_| format!("{}{}", rng.pick(ONSETS), rng.pick(VOWELS)))
                .collect()
        })
        .collect();
    format!("{}.", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_deterministic_and_mixed() {
        let s = Stream::new(3);
        let kinds: Vec<Kind> = (0..2000).map(|i| s.kind(i)).collect();
        assert_eq!(
            kinds,
            (0..2000)
                .map(|i| Stream::new(3).kind(i))
                .collect::<Vec<_>>()
        );
        let count = |f: fn(&Kind) -> bool| kinds.iter().filter(|k| f(k)).count();
        assert!(count(|k| matches!(k, Kind::Exact { .. })) > 40);
        assert!(count(|k| matches!(k, Kind::Near { .. })) > 60);
        assert!(count(|k| matches!(k, Kind::Template { .. })) > 40);
        for (i, k) in kinds.iter().enumerate() {
            if let Some(of) = k.of() {
                assert!(of < i as u64 && s.kind(of) == Kind::Original);
            }
        }
        let r = s.record(500);
        assert_eq!(r.conversation.id, "dup-000000500");
    }

    #[test]
    fn copies_differ_from_their_original_as_planted() {
        let s = Stream::new(3);
        let (mut exact, mut near) = (0, 0);
        for i in 0..3000 {
            let r = s.record(i);
            match r.kind {
                Kind::Exact { of } => {
                    let o = s.record(of);
                    let norm = |t: &str| {
                        t.split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                            .to_lowercase()
                    };
                    for (a, b) in r.conversation.turns.iter().zip(&o.conversation.turns) {
                        assert_eq!(norm(&a.1), norm(&b.1));
                    }
                    exact += 1;
                }
                Kind::Near { of, .. } => {
                    // A short conversation at a low rate may come out unchanged.
                    near += usize::from(r.conversation.turns != s.record(of).conversation.turns);
                }
                _ => {}
            }
        }
        assert!(
            exact > 50 && near > 50,
            "{exact} exact, {near} changed near copies"
        );
    }
}
