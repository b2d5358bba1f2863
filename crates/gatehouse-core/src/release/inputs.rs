//! What each resumable stage depends on, as named digests: a stage whose digests and outputs
//! are those of its stamp is skipped (`resume.rs`). Each function returns `None` while what
//! it needs from an earlier stage is not known (in a dry run, before a build that would run).

use super::run::{Ctx, Inputs};
use crate::digest::sha256;
use crate::layout;
use crate::resume;
use crate::store::StoreError;

/// "gatehouse {version} {git commit}": a stage's results depend on the code that made them.
fn tool() -> String {
    format!(
        "gatehouse {} {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("GATEHOUSE_GIT_COMMIT").unwrap_or("unknown")
    )
}

fn inputs<const N: usize>(pairs: [(&str, String); N]) -> Inputs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// What the build depends on: the code, the policy, the registry, the version and date, every
/// source object (key, size, etag), reviewers' blocklists and the coverage report.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Inputs>, StoreError> {
    let Some(coverage_json) = ctx.left.coverage_json.as_deref() else {
        return Ok(None);
    };
    let (store, settings) = (ctx.store, ctx.settings);
    let exports = format!("{}/", store.exports_prefix());
    Ok(Some(inputs([
        ("tool", tool()),
        ("config", settings.digest()),
        ("privacy_policy", settings.privacy.policy_digest()),
        ("registry", ctx.registry.digest.clone()),
        ("release_version", ctx.version.to_string()),
        (
            "release_date",
            super::release_date(settings, ctx.version).unwrap_or_default(),
        ),
        (
            "sources",
            // Labelled evaluation sets are the gates' input, not the build's.
            resume::listing_digest(store, "", Some(&exports), |k| {
                !settings.privacy.evaluation.sets.iter().any(|s| s == k)
            })?,
        ),
        (
            "blocklists",
            resume::listing_digest(
                store,
                &layout::blocklists_prefix(store.exports_prefix()),
                None,
                |_| true,
            )?,
        ),
        ("coverage_report", sha256(coverage_json)),
    ])))
}

/// What the gates depend on: the code, the policy (and the labelled sets the privacy gate
/// measures, by sha256), the registry, the manifest, the day waivers are judged on and the
/// published releases (the regression baseline).
pub(super) fn gates(ctx: &Ctx<'_>) -> Result<Option<Inputs>, StoreError> {
    let Some(release_digest) = ctx.left.release_digest.as_deref() else {
        return Ok(None);
    };
    let (store, settings) = (ctx.store, ctx.settings);
    Ok(Some(inputs([
        ("tool", tool()),
        ("config", settings.digest()),
        ("privacy_policy", settings.privacy.policy_digest()),
        (
            "privacy_evaluation_sets",
            crate::privacy::sets_digest(store, &settings.privacy.evaluation)?,
        ),
        ("registry", ctx.registry.digest.clone()),
        ("release_digest", release_digest.to_string()),
        ("as_of", settings.as_of.to_string()),
        (
            "published_releases",
            resume::listing_digest(
                store,
                &layout::releases_prefix(store.exports_prefix()),
                None,
                |k| layout::published_version(store.exports_prefix(), k).is_some(),
            )?,
        ),
    ])))
}

/// What the consumption test depends on: the code, its settings and the tokenizer, the
/// manifest and the signoff that binds it.
pub(super) fn consume(ctx: &Ctx<'_>) -> Result<Option<Inputs>, StoreError> {
    let Some(release_digest) = ctx.left.release_digest.as_deref() else {
        return Ok(None);
    };
    let signoff = match ctx
        .store
        .get_bytes(&layout::SIGNOFF_RECORD.at(ctx.location))
    {
        Ok(b) => sha256(&b),
        Err(StoreError::NotFound { .. }) => "none".into(),
        Err(e) => return Err(e),
    };
    let consume = serde_json::json!({
        "consume": ctx.settings.consume,
        "tokenizer": ctx.settings.build.tokenizer,
    });
    Ok(Some(inputs([
        ("tool", tool()),
        ("consume_config", sha256(consume.to_string().as_bytes())),
        ("release_digest", release_digest.to_string()),
        ("signoff", signoff),
    ])))
}
