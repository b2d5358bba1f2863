//! Split assignment: a whole conversation group goes to one split, decided by
//! `sha256(seed, group key)` against the configured ratios; `test_only` families go to test.
//! The hash is of the group key alone, so adding or removing other records never moves a
//! group, and the same seed always gives the same assignment.

use sha2::{Digest, Sha256};

pub use crate::contract::{Ratios, Split};
use crate::registry::Holdout;

/// Position of a group in [0, 1): the first 8 bytes of sha256(seed, key) as a fraction.
pub fn position(seed: u64, group_key: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(b"gatehouse-split-v1\0");
    h.update(seed.to_le_bytes());
    h.update(group_key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 significant bits: exactly representable as f64 in [0, 1).
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The split of a group.
pub fn assign(seed: u64, group_key: &str, holdout: Holdout, ratios: &Ratios) -> Split {
    if holdout == Holdout::TestOnly {
        return Split::Test;
    }
    let p = position(seed, group_key);
    if p < ratios.train {
        Split::Train
    } else if p < ratios.train + ratios.val {
        Split::Val
    } else {
        Split::Test
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_stable_and_follows_the_ratios() {
        let r = Ratios::default();
        let mut counts = [0u32; 3];
        for i in 0..20_000 {
            let key = format!("group-{i}");
            let s = assign(42, &key, Holdout::None, &r);
            assert_eq!(s, assign(42, &key, Holdout::None, &r));
            counts[s as usize] += 1;
        }
        assert!((17_700..=18_300).contains(&counts[0]), "{counts:?}");
        assert!((800..=1_200).contains(&counts[1]), "{counts:?}");
        assert!((800..=1_200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn the_seed_changes_the_assignment_and_test_only_forces_test() {
        let r = Ratios::default();
        let differ = (0..200)
            .filter(|i| {
                let k = format!("g{i}");
                assign(1, &k, Holdout::None, &r) != assign(2, &k, Holdout::None, &r)
            })
            .count();
        assert!(differ > 5);
        assert!(
            (0..100).all(|i| assign(1, &format!("g{i}"), Holdout::TestOnly, &r) == Split::Test)
        );
    }

    #[test]
    fn bad_ratios_are_reported() {
        assert!(
            Ratios {
                train: 0.9,
                val: 0.2,
                test: 0.0
            }
            .problem()
            .is_some()
        );
        assert!(
            Ratios {
                train: 1.1,
                val: -0.1,
                test: 0.0
            }
            .problem()
            .is_some()
        );
        assert!(Ratios::default().problem().is_none());
    }
}
