//! The gate interface: how a gate checks records during the one scan, and how it turns
//! what it found into its report.
//!
//! - A per-record check implements [`RecordCheck`]: the scan gives every readable record to
//!   it on some worker thread, with a fresh state per batch, and merges the states in any
//!   order, so a merge must be order-free (counts add up, capped lists keep the smallest
//!   keys). The checks the scan runs are the fields of `Checks`, declared with
//!   [`record_checks!`] in `gates/mod.rs`, one line each.
//! - A gate is a line of `GATES` in `gates/mod.rs` ([`GateDef`]): its name, its report file
//!   and its `finish`, which turns the merged scan ([`Finish`]) into a [`Finished`] report
//!   (any [`GateReport`]) and the files written beside it. `gates::run` writes every
//!   report, summary and waiver list in one loop over that table. The report's detail type
//!   implements [`Headline`]: what `gatehouse gates` prints for the gate, above its findings.
//!
//! The dedup and leakage gates do not have a per-record check of this shape: the
//! sketcher (`duplicates.rs`) streams each batch's sketches to one collector thread, and
//! both gates finish from the collected sketches and their analysis ([`Finish::analysis`]).

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::duplicates::Analysis;
use super::scan::{At, CheckContext, ExportManifest, ExportedRecord, Scanned};
use super::{CodeCount, GateError, GateReport, Policy};
use crate::layout;
use crate::report::Verdict;
use crate::store::Store;
use crate::waiver::WaiverUse;

/// A check over every record of the one scan; see the module docs.
pub(super) trait RecordCheck: Send + Sized {
    /// An empty state (one per batch, and the start of the merge).
    fn new(ctx: &CheckContext<'_>) -> Self;
    /// Checks one readable record; `raw` is its line as read, `at` where it is.
    fn observe(&mut self, ctx: &CheckContext<'_>, rec: &ExportedRecord, raw: &[u8], at: At<'_>);
    /// Adds another state to this one; the result must not depend on the order of merges.
    fn merge(&mut self, other: Self);
}

/// Declares the struct of every per-record check the scan runs, one field per check, and
/// implements [`RecordCheck`] for it by running each field's check in turn.
macro_rules! record_checks {
    ($(#[$meta:meta])* $name:ident { $($field:ident: $check:ty,)+ }) => {
        $(#[$meta])*
        struct $name {
            $($field: $check,)+
        }

        impl $crate::gates::gate::RecordCheck for $name {
            fn new(ctx: &$crate::gates::scan::CheckContext<'_>) -> Self {
                Self {
                    $($field: <$check as $crate::gates::gate::RecordCheck>::new(ctx),)+
                }
            }

            fn observe(
                &mut self,
                ctx: &$crate::gates::scan::CheckContext<'_>,
                rec: &$crate::gates::scan::ExportedRecord,
                raw: &[u8],
                at: $crate::gates::scan::At<'_>,
            ) {
                $($crate::gates::gate::RecordCheck::observe(&mut self.$field, ctx, rec, raw, at);)+
            }

            fn merge(&mut self, other: Self) {
                $($crate::gates::gate::RecordCheck::merge(&mut self.$field, other.$field);)+
            }
        }
    };
}
pub(super) use record_checks;

/// What a gate's `finish` reads: the merged scan and the run's inputs.
pub(super) struct Finish<'a, 'c> {
    pub store: &'a Store,
    pub manifest: &'a ExportManifest,
    pub ctx: &'a CheckContext<'c>,
    pub policy: Policy<'a>,
    /// Everything the scan found: integrity, shards, every check's merged state.
    pub scanned: Scanned,
    /// Every exact and near pair among the sketches (the dedup and leakage gates).
    pub analysis: Analysis,
    /// How long the scan took.
    pub elapsed: Duration,
}

/// A gate's report, whatever its detail: what the run loop needs of it.
/// What a gate says about itself in one line (or a few) for people: `gatehouse gates` and
/// `gatehouse release` print it above the gate's findings. Implemented by each gate's
/// detail type, in the gate's own file.
pub(super) trait Headline {
    /// The lines, the first starting with the gate's name and `verdict`. Counts and
    /// settings only: never record text.
    fn headline(&self, verdict: Verdict) -> Vec<String>;
}

pub(super) trait Report: Send {
    fn verdict(&self) -> Verdict;
    fn headline(&self) -> Vec<String>;
    fn findings(&self) -> &[crate::report::Finding];
    fn counts(&self) -> &BTreeMap<String, CodeCount>;
    /// The waivers the gate applied (or found expired), in the report's order.
    fn waivers(&self) -> &[WaiverUse];
    /// The report file's bytes: pretty JSON and a final newline.
    fn json(&self) -> Result<Vec<u8>, serde_json::Error>;
    /// The typed report, for [`super::GatesOutcome`].
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<D: Serialize + Send + Headline + 'static> Report for GateReport<D> {
    fn verdict(&self) -> Verdict {
        self.verdict
    }

    fn headline(&self) -> Vec<String> {
        self.detail.headline(self.verdict)
    }

    fn findings(&self) -> &[crate::report::Finding] {
        &self.findings
    }

    fn counts(&self) -> &BTreeMap<String, CodeCount> {
        &self.counts
    }

    fn waivers(&self) -> &[WaiverUse] {
        &self.waivers
    }

    fn json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut b = serde_json::to_vec_pretty(self)?;
        b.push(b'\n');
        Ok(b)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A finished gate: its report, and files written beside it (before it).
pub(super) struct Finished {
    pub report: Box<dyn Report>,
    pub also: Vec<(layout::File, Vec<u8>)>,
}

impl Finished {
    pub fn report<D: Serialize + Send + Headline + 'static>(report: GateReport<D>) -> Self {
        Self {
            report: Box::new(report),
            also: Vec::new(),
        }
    }
}

/// One gate: a line of the gate table.
pub(super) struct GateDef {
    pub name: &'static str,
    pub file: layout::File,
    pub finish: fn(&mut Finish<'_, '_>) -> Result<Finished, GateError>,
}

/// A line of the gate table.
pub(super) const fn gate(
    name: &'static str,
    file: layout::File,
    finish: fn(&mut Finish<'_, '_>) -> Result<Finished, GateError>,
) -> GateDef {
    GateDef { name, file, finish }
}
