//! Training consumption: open a release the way a training job will, by its store prefix
//! only, and prove it loads.
//!
//! [`OpenRelease`] is the small API a training script uses: it reads the manifest, checks its
//! digest against what binds it (the publication marker, or for a draft the QA signoff),
//! and iterates *verified* records by split or stage: a shard is read whole (its size is
//! bounded by `[build] shard_max_bytes`), its sha256 and record count checked against the
//! manifest, and only then are its records handed out.
//!
//! [`run`] is `gatehouse consume`: every shard of every split, in parallel, through the same
//! verification; every line parsed against the export contract; every conversation rendered
//! with the chat template and tokenised with the release's tokenizer; records over
//! `max_seq_length` counted; the routing config checked against the manifest; and the
//! training split assembled into curriculum-ordered batches (stage order, families mixed by
//! their routing weights). The report is `tests/training_consumption_test.json`.

mod batches;
mod open;
mod report;

pub use batches::{BatchPlan, StageBatches};
pub use open::{
    Binding, ConsumeError, Message, OpenRelease, Record, RecordMetadata, RoutingConfig,
    RoutingFamily, RoutingStage,
};
pub use report::{CHATML, ConsumeConfig, ConsumeFinding, ConsumeOutcome, ConsumeReport, run};
