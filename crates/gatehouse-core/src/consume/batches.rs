//! Curriculum batches: the training split in stage order (the routing config's `order`),
//! and within a stage the families mixed by their routing weights with smooth weighted
//! round-robin (deterministic: the family whose running credit is highest goes next; ties go
//! to the family named first). Each family's records keep their export order. Batches never
//! span two stages; a stage's last batch may be short.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::open::RoutingConfig;

pub use crate::contract::consume::{BatchPlan, StageBatches};

/// One training record, as batching needs it.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub family: String,
    pub tokens: u64,
}

/// Builds the batches of `items` (training records in export order).
pub fn plan(items: Vec<Item>, routing: &RoutingConfig, batch_size: usize) -> BatchPlan {
    let weight: BTreeMap<&str, f64> = routing
        .families
        .iter()
        .map(|f| (f.family.as_str(), f.weight))
        .collect();
    let mut by_family: BTreeMap<String, std::collections::VecDeque<Item>> = BTreeMap::new();
    for it in items {
        by_family
            .entry(it.family.clone())
            .or_default()
            .push_back(it);
    }
    let mut stages: Vec<_> = routing.stages.iter().collect();
    stages.sort_by_key(|s| s.order);
    let mut hasher = Sha256::new();
    let mut out = Vec::new();
    let mut total_batches = 0u64;
    for stage in stages {
        // Families of the stage with records, and their credit.
        let mut queue: Vec<(String, f64, f64, std::collections::VecDeque<Item>)> = stage
            .families
            .iter()
            .filter_map(|f| {
                let q = by_family.remove(f)?;
                Some((
                    f.clone(),
                    weight.get(f.as_str()).copied().unwrap_or(0.0).max(1e-9),
                    0.0,
                    q,
                ))
            })
            .collect();
        let mut families = BTreeMap::new();
        let (mut records, mut tokens, mut batches, mut max_batch) = (0u64, 0u64, 0u64, 0u64);
        let mut in_batch = 0usize;
        let mut batch_tokens = 0u64;
        loop {
            queue.retain(|q| !q.3.is_empty());
            if queue.is_empty() {
                break;
            }
            let total: f64 = queue.iter().map(|q| q.1).sum();
            for q in queue.iter_mut() {
                q.2 += q.1;
            }
            let mut best = 0;
            for (i, q) in queue.iter().enumerate() {
                if q.2 > queue[best].2 {
                    best = i;
                }
            }
            queue[best].2 -= total;
            let family = queue[best].0.clone();
            let Some(item) = queue[best].3.pop_front() else {
                continue;
            };
            hasher.update(item.id.as_bytes());
            hasher.update(b"\n");
            *families.entry(family).or_insert(0u64) += 1;
            records += 1;
            tokens += item.tokens;
            batch_tokens += item.tokens;
            in_batch += 1;
            if in_batch == batch_size {
                batches += 1;
                max_batch = max_batch.max(batch_tokens);
                in_batch = 0;
                batch_tokens = 0;
                hasher.update(b"--\n");
            }
        }
        if in_batch > 0 {
            batches += 1;
            max_batch = max_batch.max(batch_tokens);
            hasher.update(b"--\n");
        }
        total_batches += batches;
        out.push(StageBatches {
            stage: stage.stage.clone(),
            order: stage.order,
            records,
            batches,
            tokens,
            mean_batch_tokens: if batches == 0 {
                0.0
            } else {
                ((tokens as f64 / batches as f64) * 100.0).round() / 100.0
            },
            max_batch_tokens: max_batch,
            families,
        });
    }
    BatchPlan {
        batch_size,
        batches: total_batches,
        stages: out,
        order_sha256: format!("sha256:{}", hex::encode(hasher.finalize())),
        unrouted_records: by_family.values().map(|q| q.len() as u64).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::open::{RoutingFamily, RoutingStage};

    fn items(family: &str, n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                id: format!("{family}-{i}"),
                family: family.into(),
                tokens: 10,
            })
            .collect()
    }

    #[test]
    fn stages_in_order_and_families_by_weight() {
        let routing = RoutingConfig {
            schema_version: 1,
            release_version: "v1".into(),
            weighting: "test".into(),
            tokenizer: "o200k_base".into(),
            stages: vec![
                RoutingStage {
                    stage: "s2".into(),
                    order: 2,
                    families: vec!["c".into()],
                },
                RoutingStage {
                    stage: "s1".into(),
                    order: 1,
                    families: vec!["a".into(), "b".into()],
                },
            ],
            families: vec![
                RoutingFamily {
                    family: "a".into(),
                    stage: "s1".into(),
                    weight: 0.6,
                    recommended_epochs: 1.0,
                    records: Default::default(),
                    tokens: Default::default(),
                },
                RoutingFamily {
                    family: "b".into(),
                    stage: "s1".into(),
                    weight: 0.2,
                    recommended_epochs: 1.0,
                    records: Default::default(),
                    tokens: Default::default(),
                },
                RoutingFamily {
                    family: "c".into(),
                    stage: "s2".into(),
                    weight: 0.2,
                    recommended_epochs: 1.0,
                    records: Default::default(),
                    tokens: Default::default(),
                },
            ],
        };
        let mut all = items("a", 30);
        all.extend(items("b", 10));
        all.extend(items("c", 5));
        all.extend(items("d", 2));
        let p = plan(all.clone(), &routing, 8);
        assert_eq!(p.stages[0].stage, "s1");
        assert_eq!(p.stages[0].records, 40);
        assert_eq!(p.stages[0].batches, 5);
        assert_eq!(p.stages[1].batches, 1);
        assert_eq!(p.batches, 6);
        assert_eq!(p.unrouted_records, 2);
        assert_eq!(p.stages[0].max_batch_tokens, 80);
        // Deterministic.
        assert_eq!(plan(all, &routing, 8).order_sha256, p.order_sha256);
    }
}
