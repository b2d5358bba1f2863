//! `gatehouse consume`.

use anyhow::Result;
use gatehouse_core::consume::{self, ConsumeReport};
use gatehouse_core::release;
use gatehouse_core::report::Verdict;

use super::Release;
use crate::cli::{Cli, ConsumeArgs};
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli, args: &ConsumeArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    release::validate_version(&version)?;
    let location = release::location(&store, &version);
    let mut config = settings.consume.clone();
    if let Some(n) = args.batch_size {
        config.batch_size = n;
    }
    let out = consume::run(
        &store,
        &location,
        &config,
        &settings.build.tokenizer,
        args.draft,
    )?;
    if cli.global.json {
        print::json(&out.report)?;
    } else {
        summary(&out.report);
        for key in &out.written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    Ok(if out.report.verdict == Verdict::Fail {
        Code::Blocked
    } else {
        Code::Ok
    })
}

/// The consumption test in a few lines (also used by `release`).
pub fn summary(r: &ConsumeReport) {
    let records: u64 = r.splits.iter().map(|s| s.records).sum();
    let tokens: u64 = r.splits.iter().map(|s| s.tokens).sum();
    let over: u64 = r.splits.iter().map(|s| s.over_max_seq_length).sum();
    print::out(&format!(
        "consume   {}: {} shards verified of {}, {records} records, {tokens} tokens rendered ({}), {over} over max_seq_length {}; digest bound by {}",
        r.verdict.as_str(),
        r.shards.iter().filter(|s| s.verified).count(),
        r.shards.len(),
        r.tokenizer,
        r.max_seq_length,
        r.digest_bound_by.as_str()
    ));
    print::out(&format!(
        "          {} curriculum batches of {} over {} stage(s); {:.0} records/s, {:.1} MB/s, {:.0} tokens/s",
        r.batches.batches,
        r.batches.batch_size,
        r.batches.stages.len(),
        r.throughput.records_per_second,
        r.throughput.megabytes_per_second,
        r.throughput.tokens_per_second
    ));
    for f in &r.findings {
        print::out(&format!(
            "          {} {} {}: {}",
            f.severity.as_str(),
            f.code,
            f.name,
            f.message
        ));
        for e in &f.evidence {
            print::out(&format!("            {e}"));
        }
    }
}
