//! `routing_config.json`: the curriculum the training job follows, generated from the
//! families actually in the release (never a fixed list): stage order, each family's weight
//! (its share of training records, normalised over included families), recommended epochs,
//! and record counts.

use std::collections::BTreeMap;

use super::{BuildConfig, Tally};
use crate::contract::Split;
pub use crate::contract::routing::{FamilyRoute, RoutingConfig, StageRoute};
use crate::registry::{Registry, stage_number};

pub(super) fn build(
    registry: &Registry,
    per_family: &BTreeMap<(Split, String), Tally>,
    config: &BuildConfig,
    version: &str,
    tokenizer: &str,
) -> RoutingConfig {
    let mut records: BTreeMap<&str, BTreeMap<Split, u64>> = BTreeMap::new();
    let mut tokens: BTreeMap<&str, BTreeMap<Split, u64>> = BTreeMap::new();
    for ((split, family), t) in per_family {
        *records
            .entry(family)
            .or_default()
            .entry(*split)
            .or_default() += t.records;
        *tokens.entry(family).or_default().entry(*split).or_default() += t.tokens;
    }
    let train_total: u64 = records
        .values()
        .map(|r| r.get(&Split::Train).copied().unwrap_or(0))
        .sum();
    let all_total: u64 = records.values().flat_map(|r| r.values()).sum();
    let mut families = Vec::new();
    for (family, counts) in &records {
        let Some(f) = registry.families.get(*family) else {
            continue;
        };
        let train = counts.get(&Split::Train).copied().unwrap_or(0);
        // Weight is the share of training records: a test_only family weighs 0 (it is
        // listed, with its test records, but training draws nothing from it). Only when no
        // family has training records do weights fall back to shares of all records.
        let weight = if train_total > 0 {
            train as f64 / train_total as f64
        } else {
            counts.values().sum::<u64>() as f64 / all_total.max(1) as f64
        };
        families.push(FamilyRoute {
            family: (*family).to_string(),
            stage: f.stage.clone(),
            weight: (weight * 1e6).round() / 1e6,
            recommended_epochs: config.epochs.get(*family).copied().unwrap_or(1.0),
            records: Split::ALL
                .iter()
                .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
                .collect(),
            tokens: Split::ALL
                .iter()
                .map(|s| {
                    let t = tokens.get(*family).and_then(|t| t.get(s));
                    (*s, t.copied().unwrap_or(0))
                })
                .collect(),
        });
    }
    let mut stages: BTreeMap<(u32, String), Vec<String>> = BTreeMap::new();
    for f in &families {
        stages
            .entry((stage_number(&f.stage).unwrap_or(u32::MAX), f.stage.clone()))
            .or_default()
            .push(f.family.clone());
    }
    RoutingConfig {
        schema_version: 1,
        release_version: version.to_string(),
        weighting:
            "share of training records, normalised over the included families (rounded to 6 places)"
                .to_string(),
        tokenizer: tokenizer.to_string(),
        stages: stages
            .into_iter()
            .map(|((order, stage), families)| StageRoute {
                stage,
                order,
                families,
            })
            .collect(),
        families,
    }
}
