//! `routing_config.json`: the curriculum a training job follows (stage order, each family's
//! weight, recommended epochs, records and tokens per split). Written by the build, read by
//! consumers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Split;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingConfig {
    pub schema_version: u32,
    pub release_version: String,
    pub weighting: String,
    pub tokenizer: String,
    pub stages: Vec<StageRoute>,
    pub families: Vec<FamilyRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRoute {
    pub stage: String,
    pub order: u32,
    pub families: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRoute {
    pub family: String,
    pub stage: String,
    pub weight: f64,
    pub recommended_epochs: f64,
    pub records: BTreeMap<Split, u64>,
    pub tokens: BTreeMap<Split, u64>,
}
