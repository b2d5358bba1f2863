//! The listing: the store's objects under the prefix, outside the exports prefix, sorted into
//! those the registry claims and those it does not.

use std::collections::BTreeSet;

use super::SuggestError;
use crate::registry::{Registry, is_glob};
use crate::store::Store;

/// An unclaimed object.
pub(super) struct Unclaimed {
    pub(super) key: String,
    pub(super) size: u64,
}

pub(super) fn folder_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// Everything from the file name's first dot (`.jsonl.gz`), lowercased.
pub(super) fn suffix_of(key: &str) -> String {
    let file = &key[folder_of(key).len()..];
    file.find('.')
        .map_or(String::new(), |i| file[i..].to_ascii_lowercase())
}

/// A key as an exact `include` pattern (glob characters escaped).
pub(super) fn literal(key: &str) -> String {
    if is_glob(key) {
        key.chars()
            .flat_map(|c| {
                matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\')
                    .then_some('\\')
                    .into_iter()
                    .chain([c])
            })
            .collect()
    } else {
        key.to_string()
    }
}

/// What the listing found outside the exports prefix.
pub(super) struct Listing {
    pub(super) objects: u64,
    /// Sorted by key.
    pub(super) unclaimed: Vec<Unclaimed>,
    /// Folders holding a claimed object at any depth, and (folder, suffix) of claimed
    /// objects directly in a folder: an include may not reach them.
    pub(super) claimed_dirs: BTreeSet<String>,
    pub(super) claimed_direct: BTreeSet<(String, String)>,
}

/// Lists the store under `prefix` and sorts its objects into claimed and unclaimed.
pub(super) fn list(
    store: &Store,
    registry: &Registry,
    prefix: &str,
) -> Result<Listing, SuggestError> {
    let exports = format!("{}/", store.exports_prefix());
    let mut listing = Listing {
        objects: 0,
        unclaimed: Vec::new(),
        claimed_dirs: BTreeSet::new(),
        claimed_direct: BTreeSet::new(),
    };
    for object in store.list(prefix) {
        let object = object?;
        if object.key.starts_with(&exports) {
            continue;
        }
        listing.objects += 1;
        match registry.dataset_for(&object.key) {
            Err((first, second)) => {
                return Err(SuggestError::AmbiguousKey {
                    key: object.key,
                    first,
                    second,
                });
            }
            Ok(Some(_)) => {
                let mut dir = folder_of(&object.key);
                listing
                    .claimed_direct
                    .insert((dir.to_string(), suffix_of(&object.key)));
                while !dir.is_empty() {
                    listing.claimed_dirs.insert(dir.to_string());
                    dir = folder_of(&dir[..dir.len() - 1]);
                }
            }
            Ok(None) => listing.unclaimed.push(Unclaimed {
                size: object.size,
                key: object.key,
            }),
        }
    }
    listing.unclaimed.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_glob_characters_are_escaped() {
        assert_eq!(literal("raw/a[1].jsonl"), "raw/a\\[1\\].jsonl");
        assert_eq!(literal("raw/a.jsonl"), "raw/a.jsonl");
        assert_eq!(suffix_of("raw/x/train.JSONL.gz"), ".jsonl.gz");
        assert_eq!(folder_of("a.jsonl"), "");
    }
}
