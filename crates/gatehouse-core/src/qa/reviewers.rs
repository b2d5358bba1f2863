//! Reviewers: invitations, secret tokens (stored only as sha256) and assignments.
//!
//! `invite` gives a reviewer an id, a role (their review type) and a 256-bit random token;
//! `qa/reviewers.json` keeps the token's sha256, never the token. A reviewer is assigned
//! samples of their review type: all of them, or (with a limit) those with the fewest
//! reviewers so far, so that inviting two clinicians with half each covers every sample once
//! and inviting four covers every sample twice. Invitations are bound to the release digest
//! of the packets they were issued for; a rebuild voids them with the packets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{QaError, SCHEMA_VERSION, json, packets};
use crate::digest::sha256;
use crate::registry::ReviewType;
use crate::store::{Store, StoreError};

/// `qa/reviewers.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reviewers {
    pub schema_version: u32,
    pub release_digest: String,
    pub reviewers: Vec<Reviewer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reviewer {
    pub id: String,
    pub name: String,
    pub review_type: ReviewType,
    /// `sha256:` of the token; the token itself is shown once, at invitation.
    pub token_sha256: String,
    pub invited_at: String,
    pub assignments: Vec<String>,
}

/// A new invitation: the reviewer and their secret token (show it once, store it nowhere).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub reviewer: Reviewer,
    pub token: String,
}

pub fn reviewers_key(location: &str) -> String {
    format!("{location}qa/reviewers.json")
}

/// The token's stored form.
pub fn token_hash(token: &str) -> String {
    sha256(token.as_bytes())
}

fn random_hex(bytes: usize) -> Result<String, QaError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| QaError::Config(format!("no randomness for the reviewer token: {e}")))?;
    Ok(hex::encode(buf))
}

/// The release's reviewers; none when nobody was invited. Invitations for another digest
/// (a rebuilt release) are not returned.
pub fn load(store: &Store, location: &str, digest: &str) -> Result<Reviewers, QaError> {
    let key = reviewers_key(location);
    match store.get_bytes(&key) {
        Ok(b) => {
            let r: Reviewers = serde_json::from_slice(&b)
                .map_err(|_| QaError::BadManifest { key: key.clone() })?;
            Ok(if r.release_digest == digest {
                r
            } else {
                Reviewers {
                    schema_version: SCHEMA_VERSION,
                    release_digest: digest.to_string(),
                    reviewers: Vec::new(),
                }
            })
        }
        Err(StoreError::NotFound { .. }) => Ok(Reviewers {
            schema_version: SCHEMA_VERSION,
            release_digest: digest.to_string(),
            reviewers: Vec::new(),
        }),
        Err(e) => Err(e.into()),
    }
}

impl Reviewers {
    /// The reviewer holding `token`, compared by hash.
    pub fn by_token(&self, token: &str) -> Option<&Reviewer> {
        let h = token_hash(token);
        self.reviewers
            .iter()
            .find(|r| constant_time_eq(r.token_sha256.as_bytes(), h.as_bytes()))
    }
}

/// Compares without an early exit, so timing does not tell how much of a secret matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Invites a reviewer to the release at `location`: writes `qa/reviewers.json` and returns
/// the invitation with its token. `limit` caps the number of assigned samples.
pub fn invite(
    store: &Store,
    location: &str,
    name: &str,
    review_type: ReviewType,
    limit: Option<usize>,
) -> Result<Invitation, QaError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(QaError::Config(
            "the reviewer's name must be 1–100 printable characters".into(),
        ));
    }
    let (_, digest, samples) = packets(store, location)?;
    let mut all = load(store, location, &digest)?;
    // Samples of this type, fewest reviewers of this type first, then by id.
    let mut load_of: BTreeMap<&str, usize> = samples
        .iter()
        .filter(|(_, s)| s.review_types.contains(&review_type))
        .map(|(id, _)| (id.as_str(), 0))
        .collect();
    if load_of.is_empty() {
        return Err(QaError::Config(format!(
            "no sample of this release needs {} review; invite a reviewer of another type",
            review_type.as_str()
        )));
    }
    for r in all
        .reviewers
        .iter()
        .filter(|r| r.review_type == review_type)
    {
        for a in &r.assignments {
            if let Some(n) = load_of.get_mut(a.as_str()) {
                *n += 1;
            }
        }
    }
    let mut order: Vec<(usize, &str)> = load_of.iter().map(|(id, n)| (*n, *id)).collect();
    order.sort();
    let take = limit.unwrap_or(order.len()).min(order.len());
    let mut assignments: Vec<String> = order[..take]
        .iter()
        .map(|(_, id)| (*id).to_string())
        .collect();
    assignments.sort();
    let token = format!("ghr_{}", random_hex(32)?);
    let reviewer = Reviewer {
        id: format!("rv-{}", random_hex(6)?),
        name: name.to_string(),
        review_type,
        token_sha256: token_hash(&token),
        invited_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        assignments,
    };
    all.schema_version = SCHEMA_VERSION;
    all.reviewers.push(reviewer.clone());
    store.put(&reviewers_key(location), json("the reviewers", &all)?)?;
    Ok(Invitation { reviewer, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = random_hex(32).unwrap();
        let b = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(token_hash(&a).starts_with("sha256:"));
        assert!(!token_hash(&a).contains(&a));
    }
}
