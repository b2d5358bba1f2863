//! Waivers: explicit, reviewed exceptions to a gate rule. A waiver names the finding code it
//! covers, optionally narrows it to a family, dataset or record, and always carries a reason,
//! an approver and an expiry date. Expired waivers are shown and not applied.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One `[[waivers]]` entry of `gatehouse.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Finding code, e.g. `COV001`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    pub reason: String,
    pub approver: String,
    /// Last day the waiver applies (inclusive), `YYYY-MM-DD`.
    pub expires: NaiveDate,
}

/// A waiver as shown in a report: whether it was applied or had expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverUse {
    #[serde(flatten)]
    pub waiver: Waiver,
    pub status: WaiverStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverStatus {
    Applied,
    Expired,
}

/// What a finding is about, for matching waivers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub family: Option<&'a str>,
    pub dataset: Option<&'a str>,
    pub record: Option<&'a str>,
}

impl Waiver {
    /// Whether this waiver is written for `code` on `subject` (regardless of expiry).
    pub fn targets(&self, code: &str, subject: Subject<'_>) -> bool {
        fn fits(want: &Option<String>, got: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| Some(w) == got)
        }
        self.code == code
            && fits(&self.family, subject.family)
            && fits(&self.dataset, subject.dataset)
            && fits(&self.record, subject.record)
    }

    pub fn is_expired(&self, today: NaiveDate) -> bool {
        today > self.expires
    }

    /// Problems that make the waiver unusable (empty reason or approver, bad code).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let code_ok = self.code.len() >= 4
            && self.code.chars().take(3).all(|c| c.is_ascii_uppercase())
            && self.code.chars().skip(3).all(|c| c.is_ascii_digit());
        if !code_ok {
            out.push(format!(
                "waiver code {:?} is not a finding code such as COV001",
                self.code
            ));
        }
        if self.reason.trim().is_empty() {
            out.push(format!("waiver for {} has an empty reason", self.code));
        }
        if self.approver.trim().is_empty() {
            out.push(format!("waiver for {} has no approver", self.code));
        }
        out
    }
}

/// Today's date in UTC, the default day waivers are judged on.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Finds the waiver for `code` on `subject`. An unexpired match wins; otherwise an expired
/// one is returned so the report can say it lapsed.
pub fn find<'a>(
    waivers: &'a [Waiver],
    code: &str,
    subject: Subject<'_>,
    today: NaiveDate,
) -> Option<WaiverUse> {
    let mut candidates = waivers.iter().filter(|w| w.targets(code, subject));
    let all: Vec<&'a Waiver> = candidates.by_ref().collect();
    all.iter()
        .find(|w| !w.is_expired(today))
        .map(|w| WaiverUse {
            waiver: (*w).clone(),
            status: WaiverStatus::Applied,
        })
        .or_else(|| {
            all.first().map(|w| WaiverUse {
                waiver: (*w).clone(),
                status: WaiverStatus::Expired,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiver(code: &str, family: Option<&str>, expires: &str) -> Waiver {
        Waiver {
            code: code.into(),
            family: family.map(Into::into),
            dataset: None,
            record: None,
            reason: "voice data arrives next sprint".into(),
            approver: "release-manager".into(),
            expires: expires.parse().unwrap(),
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn applies_only_to_its_code_and_family_until_it_expires() {
        let ws = [waiver("COV001", Some("voice_persona"), "2026-12-31")];
        let voice = Subject {
            family: Some("voice_persona"),
            ..Subject::default()
        };
        let edge = Subject {
            family: Some("edge_cases"),
            ..Subject::default()
        };
        let used = find(&ws, "COV001", voice, day("2026-12-31")).unwrap();
        assert_eq!(used.status, WaiverStatus::Applied);
        assert!(find(&ws, "COV001", edge, day("2026-12-01")).is_none());
        assert!(find(&ws, "COV002", voice, day("2026-12-01")).is_none());
        let lapsed = find(&ws, "COV001", voice, day("2027-01-01")).unwrap();
        assert_eq!(lapsed.status, WaiverStatus::Expired);
    }

    #[test]
    fn empty_reason_and_bad_code_are_problems() {
        let mut w = waiver("cov1", None, "2026-01-01");
        w.reason = " ".into();
        assert_eq!(w.problems().len(), 2);
    }
}
