//! The check of an entry: the build's own adapter run over the sampled records.

use std::collections::BTreeMap;

use super::sample::{self, Sample};
use super::{Check, Options, QuarantineCount, SuggestError};
use crate::registry::Dataset;
use crate::source::{self, Item};
use crate::store::Store;

/// Runs the build's adapter over each sampled object's records.
pub(super) fn adapter_check(
    store: &Store,
    dataset: &Dataset,
    samples: &[Sample],
    options: &Options,
) -> Result<Check, SuggestError> {
    let mut check = Check::default();
    let mut counts: BTreeMap<(&'static str, &'static str, String), u64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.body.is_ok()) {
        let mut seen = 0usize;
        let mut on_item = |item: Item| {
            if seen >= options.bounds.records {
                return;
            }
            seen += 1;
            check.sampled_records += 1;
            match item {
                Item::Record(_) => check.adapted += 1,
                Item::Quarantined(q) => {
                    *counts
                        .entry((q.reason.code(), q.reason.name(), q.detail))
                        .or_insert(0) += 1;
                }
            }
        };
        let result = match &s.adapter_bytes {
            Some(bytes) => source::adapt(
                &bytes[..],
                &s.adapter_key,
                dataset,
                &options.limits,
                &mut on_item,
            )
            .map(|_| ()),
            None => {
                let ranges = store.open_ranges(&s.key)?;
                let budgeted = sample::Budgeted::new(ranges, options.bounds.max_parquet_bytes);
                source::parquet::adapt_first_row_group(
                    budgeted,
                    &s.key,
                    dataset,
                    &options.limits,
                    &mut on_item,
                )
                .map(|_| ())
            }
        };
        result.map_err(|e| SuggestError::Read {
            key: s.key.clone(),
            detail: e.to_string(),
        })?;
    }
    check.quarantined = counts
        .into_iter()
        .map(|((code, name, detail), count)| QuarantineCount {
            code,
            name,
            detail,
            count,
        })
        .collect();
    Ok(check)
}
