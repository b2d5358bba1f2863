//! The three splits and their ratios, as every file of a release names them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// Train/val/test fractions; they must sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratios {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for Ratios {
    fn default() -> Self {
        Self {
            train: 0.90,
            val: 0.05,
            test: 0.05,
        }
    }
}

impl Ratios {
    /// A problem with the ratios, if any.
    pub fn problem(&self) -> Option<String> {
        let all = [self.train, self.val, self.test];
        if all.iter().any(|r| !r.is_finite() || *r < 0.0) {
            return Some("split ratios must be non-negative numbers".into());
        }
        let sum: f64 = all.iter().sum();
        ((sum - 1.0).abs() > 1e-9).then(|| format!("split ratios sum to {sum}, not 1"))
    }
}

/// Split policy of a family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holdout {
    /// Ordinary seeded train/val/test split.
    #[default]
    None,
    /// Zero cross-split leakage tolerated.
    Strict,
    /// Every record goes to test.
    TestOnly,
}

impl Holdout {
    pub fn as_str(self) -> &'static str {
        match self {
            Holdout::None => "none",
            Holdout::Strict => "strict",
            Holdout::TestOnly => "test_only",
        }
    }
}
