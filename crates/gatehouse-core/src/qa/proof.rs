//! Who made a review: the proof that binds a stored review file to its reviewer.
//!
//! Anyone who runs the CLI can `qa import` a file naming any invited reviewer, so a file's
//! `reviewer` field proves nothing. A review counts as *authenticated* when it came through
//! the review app (the reviewer signed in with their secret link), or when the imported file
//! carries an Ed25519 signature that verifies against the public key registered for that
//! reviewer at `qa invite --public-key` (`gatehouse qa keygen` makes a key pair, `gatehouse qa
//! sign` signs a file). Anything else is *operator-attested*: recorded with who imported it,
//! and counted only when `[qa] count_attested = true`. The proof lives beside the review
//! (`qa/review_proofs/{type}-{reviewer}.json`), and the signoff re-verifies signatures from
//! the stored bytes and the registered key: a proof file cannot vouch for itself.

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::QaError;

pub use crate::contract::signoff::Authentication;

/// What a signature signs: this prefix, then the file's exact bytes.
const DOMAIN: &[u8] = b"gatehouse-review-v1\0";
const PRIVATE_HEADER: &str = "gatehouse-ed25519-private-key-v1";

/// How a stored review file was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Proof {
    /// Submitted in the review app by the signed-in reviewer.
    AppSession { at: String },
    /// Imported with a signature by the reviewer's registered key over the stored bytes.
    Signature { signature: String, at: String },
    /// Imported without proof; `by` is who ran the import (`GATEHOUSE_ACTOR` or the login).
    OperatorAttested { by: String, at: String },
}

/// A new key pair: the private key file's text (keep it secret) and the public key
/// (`ed25519:<hex>`, for `qa invite --public-key`).
pub fn keygen() -> Result<(String, String), QaError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| QaError::Config("cannot generate a key pair".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| QaError::Config("cannot generate a key pair".into()))?;
    let public = format!("ed25519:{}", hex::encode(pair.public_key().as_ref()));
    Ok((
        format!("{PRIVATE_HEADER}\n{}\n", hex::encode(pkcs8.as_ref())),
        public,
    ))
}

/// Signs `bytes` with a private key file's text; returns `ed25519:<hex>`.
pub fn sign(private_key: &str, bytes: &[u8]) -> Result<String, QaError> {
    let bad =
        || QaError::Config("not a gatehouse private key file (from `gatehouse qa keygen`)".into());
    let mut lines = private_key.lines();
    if lines.next().map(str::trim) != Some(PRIVATE_HEADER) {
        return Err(bad());
    }
    let der = hex::decode(lines.next().unwrap_or_default().trim()).map_err(|_| bad())?;
    let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad())?;
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(bytes);
    Ok(format!("ed25519:{}", hex::encode(pair.sign(&msg).as_ref())))
}

/// Checks a public key's form (`ed25519:` and 32 bytes in hex).
pub fn parse_public_key(key: &str) -> Result<Vec<u8>, QaError> {
    key.trim()
        .strip_prefix("ed25519:")
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            QaError::Config(
                "a public key is `ed25519:` and 64 hex digits, as `gatehouse qa keygen` prints it"
                    .into(),
            )
        })
}

/// Whether `signature` (`ed25519:<hex>`) by `public_key` signs `bytes`.
pub fn verify(public_key: &str, bytes: &[u8], signature: &str) -> bool {
    let (Ok(key), Some(sig)) = (
        parse_public_key(public_key),
        signature
            .trim()
            .strip_prefix("ed25519:")
            .and_then(|h| hex::decode(h).ok()),
    ) else {
        return false;
    };
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(bytes);
    signature::UnparsedPublicKey::new(&signature::ED25519, key)
        .verify(&msg, &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_its_exact_bytes() {
        let (private, public) = keygen().unwrap();
        let (_, other) = keygen().unwrap();
        let sig = sign(&private, b"{\"reviews\": []}").unwrap();
        assert!(verify(&public, b"{\"reviews\": []}", &sig));
        assert!(!verify(&public, b"{\"reviews\": [] }", &sig));
        assert!(!verify(&other, b"{\"reviews\": []}", &sig));
        assert!(!verify(&public, b"{\"reviews\": []}", "ed25519:00"));
        assert!(sign("not a key", b"x").is_err());
        assert!(parse_public_key("ed25519:abcd").is_err());
    }
}
