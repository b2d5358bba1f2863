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
    /// Reviewers removed by `gatehouse qa revoke`: their link, sessions and reviews no
    /// longer count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<Revoked>,
}

/// A revoked invitation, kept for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revoked {
    pub id: String,
    pub name: String,
    pub review_type: ReviewType,
    pub invited_at: String,
    pub revoked_at: String,
}

/// Days an invitation stays valid unless `[qa] invitation_days` says otherwise.
pub const DEFAULT_INVITATION_DAYS: u32 = 14;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reviewer {
    pub id: String,
    pub name: String,
    pub review_type: ReviewType,
    /// `sha256:` of the token; the token itself is shown once, at invitation.
    pub token_sha256: String,
    pub invited_at: String,
    /// When the sign-in link stops working (RFC 3339, UTC); invitations made before
    /// expiry existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The reviewer's Ed25519 public key (`ed25519:<hex>`), registered at invitation: files
    /// imported in their name must then be signed with it ([`super::proof`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub assignments: Vec<String>,
}

impl Reviewer {
    /// Whether the invitation has expired at `now`.
    pub fn expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at
            .as_deref()
            .is_some_and(|e| chrono::DateTime::parse_from_rfc3339(e).map_or(true, |t| now >= t))
    }
}

/// A new invitation: the reviewer and their secret token (show it once, store it nowhere).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub reviewer: Reviewer,
    pub token: String,
}

pub fn reviewers_key(location: &str) -> String {
    crate::layout::REVIEWERS.at(location)
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
                    revoked: Vec::new(),
                }
            })
        }
        Err(StoreError::NotFound { .. }) => Ok(Reviewers {
            schema_version: SCHEMA_VERSION,
            release_digest: digest.to_string(),
            reviewers: Vec::new(),
            revoked: Vec::new(),
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
    valid_days: u32,
    public_key: Option<&str>,
) -> Result<Invitation, QaError> {
    if let Some(k) = public_key {
        super::proof::parse_public_key(k)?;
    }
    if valid_days == 0 {
        return Err(QaError::Config(
            "an invitation must be valid for at least one day".into(),
        ));
    }
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
        return Err(QaError::Config(
            if review_type == ReviewType::PrivacySpotCheck {
                "the review packets hold no privacy spot-check sample: run `gatehouse gates` on \
             this build, then `gatehouse qa sample`, and invite again"
                    .into()
            } else {
                format!(
                    "no sample of this release needs {} review; invite a reviewer of another type",
                    review_type.as_str()
                )
            },
        ));
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
    let now = chrono::Utc::now();
    let reviewer = Reviewer {
        id: format!("rv-{}", random_hex(6)?),
        name: name.to_string(),
        review_type,
        token_sha256: token_hash(&token),
        invited_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires_at: Some(
            (now + chrono::Duration::days(i64::from(valid_days)))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        public_key: public_key.map(|k| k.trim().to_string()),
        assignments,
    };
    all.schema_version = SCHEMA_VERSION;
    all.reviewers.push(reviewer.clone());
    store.put(&reviewers_key(location), json("the reviewers", &all)?)?;
    Ok(Invitation { reviewer, token })
}

/// Revokes reviewer `id` of the release at `location`: removes them from the invitations
/// (so their link, their sessions in a running app and their review files stop counting)
/// and records the revocation. Returns the revoked reviewer.
pub fn revoke(store: &Store, location: &str, id: &str) -> Result<Revoked, QaError> {
    let (_, digest, _) = packets(store, location)?;
    let mut all = load(store, location, &digest)?;
    let Some(i) = all.reviewers.iter().position(|r| r.id == id) else {
        return Err(QaError::Config(format!(
            "{id:?} is not a reviewer of this release (see qa/reviewers.json)"
        )));
    };
    let r = all.reviewers.remove(i);
    let revoked = Revoked {
        id: r.id,
        name: r.name,
        review_type: r.review_type,
        invited_at: r.invited_at,
        revoked_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    all.schema_version = SCHEMA_VERSION;
    all.revoked.push(revoked.clone());
    store.put(&reviewers_key(location), json("the reviewers", &all)?)?;
    Ok(revoked)
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
