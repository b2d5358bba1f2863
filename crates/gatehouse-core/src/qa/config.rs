//! `[qa]` in gatehouse.toml: how many records each family × split contributes to the review
//! packets ([`SampleRule`]), the rubric each review type is scored with ([`Rubric`]; the
//! defaults are the clinical team's), and how reviews are admitted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::registry::{Registry, ReviewType};

/// `[qa]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QaConfig {
    pub sample: SampleRule,
    /// Rubric per review type; the defaults are the clinical team's.
    pub rubrics: BTreeMap<ReviewType, Rubric>,
    /// Days an invitation (its sign-in link) stays valid; default
    /// [`super::reviewers::DEFAULT_INVITATION_DAYS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_days: Option<u32>,
    /// Whether operator-attested reviews (imported without the reviewer's signature) count
    /// towards the signoff; default false: only the review app's and signed imports do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_attested: Option<bool>,
}

/// How many records each family × split group contributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleRule {
    pub rate: f64,
    pub min: u64,
    pub max: u64,
    pub seed: u64,
}

impl Default for SampleRule {
    fn default() -> Self {
        Self {
            rate: 0.02,
            min: 5,
            max: 50,
            seed: 1,
        }
    }
}

impl SampleRule {
    /// The sample size of a group of `population` records.
    pub fn size(&self, population: u64) -> u64 {
        let wanted = (self.rate * population as f64).ceil() as u64;
        wanted
            .clamp(self.min, self.max.max(self.min))
            .min(population)
    }
}

/// A review type's rubric: criteria on a 1–10 scale with weights and minimums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    /// Reviewers each sampled record needs.
    pub reviewers: u32,
    /// The weighted overall score a review must reach.
    pub pass_overall: f64,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub name: String,
    pub weight: f64,
    pub minimum: f64,
}

fn rubric(reviewers: u32, criteria: &[(&str, f64, f64)]) -> Rubric {
    Rubric {
        reviewers,
        pass_overall: 7.0,
        criteria: criteria
            .iter()
            .map(|(name, weight, minimum)| Criterion {
                name: (*name).to_string(),
                weight: *weight,
                minimum: *minimum,
            })
            .collect(),
    }
}

impl Default for QaConfig {
    fn default() -> Self {
        let rubrics = [
            (
                ReviewType::ClinicianFoundation,
                rubric(
                    2,
                    &[
                        ("therapeutic_accuracy", 0.30, 7.0),
                        ("clinical_appropriateness", 0.25, 8.0),
                        ("empathy_warmth", 0.20, 6.0),
                        ("boundary_maintenance", 0.15, 7.0),
                        ("cultural_sensitivity", 0.10, 6.0),
                    ],
                ),
            ),
            (
                ReviewType::ClinicianEdge,
                rubric(
                    2,
                    &[
                        ("crisis_handling", 0.40, 8.0),
                        ("safety_prioritization", 0.30, 9.0),
                        ("de_escalation", 0.20, 7.0),
                        ("resource_referral", 0.10, 8.0),
                    ],
                ),
            ),
            (
                ReviewType::BiasCultural,
                rubric(
                    1,
                    &[
                        ("demographic_bias", 0.30, 8.0),
                        ("cultural_competency", 0.25, 7.0),
                        ("inclusive_language", 0.20, 8.0),
                        ("stereotype_avoidance", 0.15, 8.0),
                        ("accessibility_awareness", 0.10, 6.0),
                    ],
                ),
            ),
        ]
        .into_iter()
        .collect();
        Self {
            sample: SampleRule::default(),
            rubrics,
            invitation_days: None,
            count_attested: None,
        }
    }
}

impl QaConfig {
    /// What is wrong with the section on its own, if anything.
    pub fn problem(&self) -> Option<String> {
        let s = &self.sample;
        if !(0.0..=1.0).contains(&s.rate) || s.max < s.min {
            return Some("qa.sample: rate must be in [0, 1] and max >= min".into());
        }
        for (t, r) in &self.rubrics {
            if *t == ReviewType::PrivacySpotCheck {
                return Some(
                    "qa.rubrics.privacy_spot_check: the privacy spot-check has no rubric (reviewers mark the identifiers left); remove the table".into(),
                );
            }
            let total: f64 = r.criteria.iter().map(|c| c.weight).sum();
            if r.criteria.is_empty() || (total - 1.0).abs() > 1e-6 {
                return Some(format!(
                    "qa.rubrics.{}: criteria weights must sum to 1 (they sum to {total})",
                    t.as_str()
                ));
            }
            if r.reviewers == 0
                || r.criteria
                    .iter()
                    .any(|c| !(1.0..=10.0).contains(&c.minimum))
            {
                return Some(format!(
                    "qa.rubrics.{}: at least one reviewer; minimums on the 1–10 scale",
                    t.as_str()
                ));
            }
        }
        None
    }

    /// The review type `family` needs that has no rubric, as a problem (a `[qa.rubrics]`
    /// table replaces the defaults, so it must give every review type the registry names).
    pub fn missing_rubric(&self, family: &str, review: &[ReviewType]) -> Option<String> {
        review
            .iter()
            .find(|t| !self.rubrics.contains_key(t))
            .map(|t| {
                format!(
                    "family {family} needs {} review, which has no rubric in [qa.rubrics] (a [qa.rubrics] table replaces the defaults: give every review type)",
                    t.as_str()
                )
            })
    }

    /// Everything [`QaConfig::problem`] checks, and what only matters later: a family of
    /// the registry whose review has no rubric (found when QA draws the packets, after the
    /// build) and invitations valid for no day (found by `qa invite`). Checked before any
    /// stage of a release runs, and by `doctor`.
    pub fn problem_with(&self, registry: &Registry) -> Option<String> {
        if let Some(p) = self.problem() {
            return Some(p);
        }
        if self.invitation_days == Some(0) {
            return Some(
                "qa.invitation_days: an invitation must be valid for at least one day".into(),
            );
        }
        registry
            .families
            .iter()
            .find_map(|(name, f)| self.missing_rubric(name, &f.review))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sizes_follow_the_rule() {
        let r = SampleRule::default();
        assert_eq!(r.size(0), 0);
        assert_eq!(r.size(3), 3);
        assert_eq!(r.size(100), 5);
        assert_eq!(r.size(1000), 20);
        assert_eq!(r.size(1_000_000), 50);
    }

    #[test]
    fn default_rubrics_are_the_clinical_teams_and_validate() {
        let c = QaConfig::default();
        assert!(c.problem().is_none());
        let edge = &c.rubrics[&ReviewType::ClinicianEdge];
        assert_eq!(edge.reviewers, 2);
        assert_eq!(edge.criteria[1].name, "safety_prioritization");
        assert_eq!(edge.criteria[1].minimum, 9.0);
        let mut bad = c.clone();
        bad.rubrics
            .get_mut(&ReviewType::BiasCultural)
            .unwrap()
            .criteria[0]
            .weight = 0.5;
        assert!(bad.problem().unwrap().contains("sum to 1"));
    }
}
