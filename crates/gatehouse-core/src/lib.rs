//! gatehouse-core: the vocabulary and the engine of gatehouse.
//!
//! Modules follow the data flow: [`config`] and [`registry`] say what to do, [`store`] reaches
//! the data, [`coverage`] finds what exists, [`doctor`] checks the store is fit for
//! publishing, [`build`] compiles the export, [`gates`] verify it, [`html`] renders the
//! release's reports as one page, [`privacy`] holds the PII policy and its measurement, [`release`] plans and runs the stages. Everything here is
//! synchronous; the only async code is inside [`store`].

pub mod audit;
pub mod build;
pub mod config;
pub mod consume;
pub mod contract;
pub mod coverage;
pub mod croissant;
pub mod digest;
pub mod doctor;
#[doc(hidden)]
pub mod fuzz;
pub mod gates;
pub mod html;
pub mod layout;
pub mod privacy;
pub mod publish;
pub mod qa;
pub mod record;
pub mod registry;
pub mod release;
pub mod report;
pub mod resume;
pub mod source;
pub mod store;
pub mod suggest;
pub mod waiver;
