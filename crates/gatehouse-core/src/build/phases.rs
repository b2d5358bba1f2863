//! The build's phases around its kernels, shared by every executor.
//!
//! - [`Prepared::new`] (phase 0): the settings checked, the inputs listed in key order, the
//!   draft's earlier output cleared, and the tools every object's map needs (tokenizer,
//!   detector, sketcher, reviewers' blocklist). [`Prepared::map_context`] hands the map
//!   kernel its context for one object.
//! - phase 1, the map, belongs to the executor: [`process_all`] is the rayon one.
//! - [`Prepared::finish`] (phases 2 and 3): duplicates across the release from the
//!   objects' sketches (shingle sets read from the executor's [`dedup::SetStore`]), then the
//!   merge in key order (each object's mapped lines from the executor), the build report,
//!   the routing config and, last, the manifest that commits them.

use rayon::prelude::*;

use super::assembly::{Assembled, Assembly};
use super::map::{self, MapContext};
use super::process::{self, SpillFn};
use super::{
    BuildConfig, BuildContext, BuildError, BuildOutcome, BuildTotals, Input, ObjectReport, Sources,
    blocklist, build_report, check, clear_previous, dedup, json_bytes, manifest, objects_dataset,
    routing,
};
use crate::digest::sha256;
use crate::layout;
use crate::record::HASH_VERSION;
use crate::registry::Registry;
use crate::report::generated_by;
use crate::store::Store;
use gatehouse_text::TokenCounter;

/// A build set up and ready for its objects to be mapped.
#[derive(Debug)]
pub struct Prepared<'a> {
    store: &'a Store,
    registry: &'a Registry,
    config: &'a BuildConfig,
    ctx: &'a BuildContext<'a>,
    inputs: std::sync::Arc<[Input]>,
    excluded: std::sync::Arc<[super::Exclusion]>,
    pipeline: String,
    tokens: TokenCounter,
    blocklist: blocklist::Blocklist,
    sketcher: map::Sketcher,
}

/// One object as the map left it: its identity, its report entry before deduplication and
/// its family.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MappedOutput {
    pub input: manifest::InputObject,
    pub report: ObjectReport,
    pub family: String,
}

impl<'a> Prepared<'a> {
    /// Phase 0; fails before anything is written on a bad setting or an empty input, and
    /// clears the draft's earlier output.
    pub fn new(
        store: &'a Store,
        registry: &'a Registry,
        config: &'a BuildConfig,
        ctx: &'a BuildContext<'a>,
    ) -> Result<Self, BuildError> {
        let prepared = Self::open(store, registry, config, ctx)?;
        clear_previous(store, ctx.location)?;
        Ok(prepared)
    }

    /// The same build, planned again without writing anything: for the workers of an
    /// executor whose map runs in other processes (the draft is cleared once, by the
    /// driver's [`Prepared::new`]).
    pub fn open(
        store: &'a Store,
        registry: &'a Registry,
        config: &'a BuildConfig,
        ctx: &'a BuildContext<'a>,
    ) -> Result<Self, BuildError> {
        check(config, registry)?;
        Self::open_listed(
            store,
            registry,
            config,
            ctx,
            Sources::list(store, registry)?,
        )
    }

    /// [`Prepared::open`] from sources listed earlier, for this store and registry.
    pub fn open_listed(
        store: &'a Store,
        registry: &'a Registry,
        config: &'a BuildConfig,
        ctx: &'a BuildContext<'a>,
        sources: Sources,
    ) -> Result<Self, BuildError> {
        check(config, registry)?;
        let Sources { inputs, excluded } = sources;
        if inputs.is_empty() {
            return Err(BuildError::Empty);
        }
        Ok(Self {
            store,
            registry,
            config,
            ctx,
            inputs,
            excluded,
            pipeline: generated_by(),
            tokens: config.tokenizer.counter().map_err(BuildError::Config)?,
            blocklist: blocklist::load(store)?,
            sketcher: map::Sketcher::new(&config.dedup),
        })
    }

    /// The objects to map, in key order (object `i` is `keys()[i]`).
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inputs.iter().map(|i| i.key.as_str())
    }

    /// The map kernel's context for object `object`.
    pub fn map_context(&self, object: usize) -> MapContext<'_> {
        let dataset = &self.registry.datasets[self.inputs[object].dataset];
        MapContext {
            dataset,
            family: &self.registry.families[&dataset.family],
            config: self.config,
            pipeline: &self.pipeline,
            tokens: &self.tokens,
            detector: self.ctx.detector,
            sketcher: &self.sketcher,
            blocklist: &self.blocklist.ids,
        }
    }

    /// The store the build reads and writes.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// The build's settings.
    pub(super) fn config(&self) -> &'a BuildConfig {
        self.config
    }

    /// The keep rank of each registry family (see [`dedup::DedupConfig::family_ranks`]).
    pub(super) fn family_ranks(&self) -> std::collections::BTreeMap<String, usize> {
        self.config.dedup.family_ranks(self.registry)
    }

    /// What a map fragment of object `index` depends on besides the code's version: the
    /// object as listed (key, size, etag), the settings, the registry, the reviewers'
    /// blocklist and the version being built. A fragment with another fingerprint is not
    /// reused.
    pub(super) fn fingerprint(&self, index: usize) -> String {
        let input = &self.inputs[index];
        let mut blocked: Vec<&String> = self.blocklist.ids.iter().collect();
        blocked.sort_unstable();
        let identity = serde_json::json!({
            "fragment_version": 2,
            "pipeline": self.pipeline,
            // The commit the code was built from (the version alone does not change when a
            // map bug is fixed); `unknown` outside a checkout.
            "commit": option_env!("GATEHOUSE_GIT_COMMIT").unwrap_or("unknown"),
            "release_version": self.ctx.release_version,
            "config_digest": self.ctx.config_digest,
            "registry_digest": self.registry.digest,
            "build_config": self.config,
            "blocklist": blocked,
            "key": input.key,
            "size": input.size,
            "etag": input.etag,
        });
        sha256(identity.to_string().as_bytes())
    }

    /// The version being built.
    pub fn release_version(&self) -> &str {
        self.ctx.release_version
    }

    /// Phases 2 and 3, from every object's map output (in key order): `entries` are the
    /// objects' sketches, `sets` their shingle sets, and `lines(o, f)` hands object `o`'s
    /// mapped lines to `f` in source order.
    ///
    /// One sequence on purpose (about 130 lines): duplicates, the merge, then the build
    /// report, the routing config and, last, the manifest that commits them. What stays
    /// here is the order of the writes, which resume and crash safety rely on.
    pub(super) fn finish(
        self,
        mapped: Vec<MappedOutput>,
        entries: &[dedup::ObjectEntries],
        sets: &mut dyn dedup::SetStore,
        verdicts: dedup::Verdicts,
        lines: &mut dyn FnMut(usize, &mut SpillFn<'_>) -> Result<(), BuildError>,
    ) -> Result<BuildOutcome, BuildError> {
        let (store, registry, config, ctx) = (self.store, self.registry, self.config, self.ctx);
        let loc = ctx.location;
        if mapped.len() != self.inputs.len() || entries.len() != self.inputs.len() {
            return Err(BuildError::Internal(
                "the map's output does not cover every input object".into(),
            ));
        }

        // Phase 2: duplicates across the whole release.
        let families: Vec<String> = mapped.iter().map(|o| o.family.clone()).collect();
        let ranks = config.dedup.family_ranks(registry);
        let (statuses, dedup_summary) = dedup::resolve(
            entries,
            sets,
            verdicts,
            &families,
            &config.dedup,
            &ranks,
            layout::DEDUP_REMOVED.at(loc),
        )?;

        // Phase 3: in key order, the mapped lines become the shards, the compiled export,
        // the quarantine list and the list of removed duplicates.
        let mut assembly = Assembly::new(store, loc, config);
        let mut objects = Vec::with_capacity(mapped.len());
        let mut input_list = Vec::with_capacity(mapped.len());
        for (o, mut out) in mapped.into_iter().enumerate() {
            let kept_in = |object: u32| {
                let i = object as usize;
                (
                    objects_dataset(&self.inputs, registry, i),
                    self.inputs[i].key.as_str(),
                )
            };
            let removed_here = assembly.object(
                o,
                &out,
                &mut |f| lines(o, f),
                entries,
                &statuses[o],
                &kept_in,
            )?;
            out.report.duplicates_removed = removed_here.0;
            out.report.exported -= removed_here.0;
            out.report.tokens -= removed_here.1;
            objects.push(out.report);
            input_list.push(out.input);
        }
        let Assembled {
            mut written,
            mut artefacts,
            contents,
            per_family,
            split_counts,
        } = assembly.finish(config)?;

        let mut blocklist = self.blocklist;
        blocklist.summary.records_removed = objects.iter().map(|o| o.blocked_by_reviewers).sum();
        let report = build_report(BuildTotals {
            release_version: ctx.release_version,
            pipeline: &self.pipeline,
            objects,
            excluded: &self.excluded,
            split_counts: &split_counts,
            per_family: &per_family,
            dedup: &dedup_summary,
            blocklist: &blocklist.summary,
            detector: ctx.detector,
            config,
        });
        let verdict = report.verdict;
        let mut put = |key: String, bytes: Vec<u8>| -> Result<(), BuildError> {
            store.put(&key, bytes.clone())?;
            artefacts.push(manifest::Artefact::of(&key, &bytes));
            written.push(key);
            Ok(())
        };
        put(
            layout::BUILD_REPORT.at(loc),
            json_bytes("the build report", &report)?,
        )?;
        let routing = routing::build(
            registry,
            &per_family,
            config,
            ctx.release_version,
            &self.tokens.label(),
        );
        put(
            layout::ROUTING_CONFIG.at(loc),
            json_bytes("the routing config", &routing)?,
        )?;
        for key in &ctx.artefacts {
            let bytes = store.get_bytes(key)?;
            artefacts.push(manifest::Artefact::of(key, &bytes));
        }
        artefacts.sort_by(|a, b| a.key.cmp(&b.key));

        let manifest = manifest::Manifest::new(manifest::Parts {
            release_version: ctx.release_version,
            release_date: ctx.release_date.clone(),
            config_digest: &ctx.config_digest,
            registry_digest: &registry.digest,
            hash_version: HASH_VERSION,
            config,
            split_counts: &split_counts,
            inputs: input_list,
            excluded: self.excluded.to_vec(),
            contents: &contents,
            per_family: &per_family,
            artefacts,
            build_verdict: verdict,
            dedup: dedup_summary,
            blocklist: blocklist.summary,
            tokenizer: self.tokens.label(),
        });
        // Last: the manifest commits everything above.
        let manifest_key = layout::MANIFEST.at(loc);
        let manifest_bytes = json_bytes("the manifest", &manifest)?;
        store.put(&manifest_key, manifest_bytes.clone())?;
        written.push(manifest_key);
        Ok(BuildOutcome {
            report,
            manifest,
            release_digest: sha256(&manifest_bytes),
            written,
        })
    }
}

/// Phase 1 on the rayon pool: every object mapped into its spill files (reporting each
/// finished key to `progress` on this thread); the outputs in key order, or the first
/// error in key order. After an error, objects not yet started are skipped.
pub(super) fn process_all(
    prepared: &Prepared<'_>,
    spill_dir: &std::path::Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<process::ObjectOutput>, Vec<dedup::ObjectEntries>), BuildError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    type Processed = (process::ObjectOutput, dedup::ObjectEntries);
    let cancelled = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let results: Vec<Option<Result<Processed, BuildError>>> = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            (0..prepared.inputs.len())
                .into_par_iter()
                .map_with(tx, |tx, o| {
                    if cancelled.load(Ordering::Relaxed) {
                        return None;
                    }
                    let key = &prepared.inputs[o].key;
                    let result = process::process(&process::Job {
                        store: prepared.store,
                        key,
                        map: prepared.map_context(o),
                        spill_dir,
                    });
                    match &result {
                        Ok(_) => {
                            let _ = tx.send(key.clone());
                        }
                        Err(_) => cancelled.store(true, Ordering::Relaxed),
                    }
                    Some(result)
                })
                .collect()
        });
        for key in rx {
            progress(&key);
        }
        worker.join()
    })
    .map_err(|_| BuildError::Internal("a build worker panicked".into()))?;
    let mut outputs = (
        Vec::with_capacity(results.len()),
        Vec::with_capacity(results.len()),
    );
    for r in results {
        match r {
            Some(Ok((o, e))) => {
                outputs.0.push(o);
                outputs.1.push(e);
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if outputs.0.len() != prepared.inputs.len() {
        return Err(BuildError::Internal(
            "a build worker stopped without a result".into(),
        ));
    }
    Ok(outputs)
}
