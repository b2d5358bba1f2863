//! `gatehouse doctor`: is the configured store reachable, writable, and does it really refuse
//! a second create-only write? Some S3-compatible stores silently ignore conditional writes;
//! publishing relies on them, so doctor probes with a canary object under the exports prefix
//! (never under source data), reports what it found, and deletes the canary.

use serde::Serialize;

use crate::config::parse::SettingOrigin;
use crate::report::generated_by;
use crate::store::{Store, StoreDescription, StoreError};

/// Doctor report schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
}

/// What the store does with a second create-only write of the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateOnly {
    /// The second write was refused: write-once publication is safe.
    Enforced,
    /// The second write succeeded: the store ignores conditional writes.
    Ignored,
    /// The store rejected conditional writes as unsupported.
    Unsupported,
    /// The probe could not run (the store was not reachable or writable).
    NotTested,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    pub schema_version: u32,
    pub generated_by: String,
    pub store: StoreDescription,
    pub settings: Vec<SettingOrigin>,
    /// Settings given twice with different values ([`crate::config::Settings::warnings`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What is wrong with the settings, section by section
    /// ([`crate::config::Settings::problems`]): a release would refuse to start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_problems: Vec<String>,
    pub checks: Vec<Check>,
    pub create_only: CreateOnly,
    /// Whether write-once publication can rely on this store.
    pub publish_safe: bool,
}

impl DoctorReport {
    /// Whether any check failed outright (the store cannot be used at all).
    pub fn store_unusable(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Fail)
    }
}

fn check(name: &'static str, status: CheckStatus, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

fn failure(e: &StoreError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

/// A key no other run uses: time and process id.
fn canary_key(store: &Store) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}canary-{nanos}-{}",
        crate::layout::doctor_prefix(store.exports_prefix()),
        std::process::id()
    )
}

/// Runs every check against `store`.
pub fn run(store: &Store, settings: Vec<SettingOrigin>) -> DoctorReport {
    let mut checks = Vec::new();
    let mut create_only = CreateOnly::NotTested;
    let finish = |checks, create_only| DoctorReport {
        schema_version: SCHEMA_VERSION,
        generated_by: generated_by(),
        store: store.describe(),
        settings,
        warnings: Vec::new(),
        config_problems: Vec::new(),
        publish_safe: create_only == CreateOnly::Enforced,
        checks,
        create_only,
    };

    match store.list("").next() {
        None => checks.push(check(
            "list",
            CheckStatus::Warn,
            "reachable, but the store holds no objects",
        )),
        Some(Ok(_)) => checks.push(check("list", CheckStatus::Ok, "reachable; listing works")),
        Some(Err(e)) => {
            checks.push(check("list", CheckStatus::Fail, failure(&e)));
            return finish(checks, create_only);
        }
    }

    let key = canary_key(store);
    if let Err(e) = store.put_create(&key, "gatehouse doctor canary: first write") {
        let status = CheckStatus::Fail;
        let detail = match &e {
            StoreError::NotSupported { .. } => {
                create_only = CreateOnly::Unsupported;
                format!(
                    "the store does not support create-only writes: {}",
                    failure(&e)
                )
            }
            _ => format!(
                "cannot write under {}/: {}",
                store.exports_prefix(),
                failure(&e)
            ),
        };
        checks.push(check("write", status, detail));
        return finish(checks, create_only);
    }
    checks.push(check(
        "write",
        CheckStatus::Ok,
        format!("wrote canary {key}"),
    ));

    match store.put_create(&key, "gatehouse doctor canary: second write") {
        Err(StoreError::AlreadyExists { .. }) => {
            create_only = CreateOnly::Enforced;
            checks.push(check(
                "create-only",
                CheckStatus::Ok,
                "a second create-only write of the canary was refused: write-once publication is enforced by the store",
            ));
        }
        Ok(()) => {
            create_only = CreateOnly::Ignored;
            checks.push(check(
                "create-only",
                CheckStatus::Warn,
                "a second create-only write of the canary SUCCEEDED: this store ignores conditional \
                 writes, so it cannot guarantee a published release is never overwritten; publishing on \
                 it will be refused",
            ));
        }
        Err(e @ StoreError::NotSupported { .. }) => {
            create_only = CreateOnly::Unsupported;
            checks.push(check("create-only", CheckStatus::Warn, failure(&e)));
        }
        Err(e) => checks.push(check("create-only", CheckStatus::Fail, failure(&e))),
    }

    match store.get_bytes(&key) {
        Ok(b) if b.as_ref() == b"gatehouse doctor canary: first write" => {
            checks.push(check(
                "read",
                CheckStatus::Ok,
                "read the canary back intact",
            ));
        }
        Ok(_) => checks.push(check(
            "read",
            CheckStatus::Warn,
            "the canary holds the second write's bytes: the refused write overwrote it",
        )),
        Err(e) => checks.push(check("read", CheckStatus::Fail, failure(&e))),
    }

    match store.delete(&key) {
        Ok(()) => checks.push(check("cleanup", CheckStatus::Ok, "deleted the canary")),
        Err(e) => checks.push(check(
            "cleanup",
            CheckStatus::Warn,
            format!("could not delete canary {key}: {}", failure(&e)),
        )),
    }
    finish(checks, create_only)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Backend, StoreConfig};
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };
    use std::sync::Arc;

    /// Behaves like stores that accept `If-None-Match: *` and then overwrite anyway.
    #[derive(Debug, Default)]
    struct IgnoresConditionalWrites(InMemory);

    impl std::fmt::Display for IgnoresConditionalWrites {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("IgnoresConditionalWrites")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for IgnoresConditionalWrites {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            mut opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            opts.mode = PutMode::Overwrite;
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.0.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.0.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.0.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn a_store_that_ignores_conditional_writes_is_reported_unsafe() {
        let store = Store::from_object_store(
            Arc::new(IgnoresConditionalWrites::default()),
            StoreConfig {
                backend: Backend::Memory,
                exports_prefix: "exports".into(),
            },
        )
        .unwrap();
        store.put("sources/a.jsonl", "x").unwrap();
        let r = run(&store, vec![]);
        assert_eq!(r.create_only, CreateOnly::Ignored, "{r:#?}");
        assert!(!r.publish_safe);
        assert!(
            !r.store_unusable(),
            "the store works; it is only unsafe to publish on"
        );
        let read = r.checks.iter().find(|c| c.name == "read").unwrap();
        assert_eq!(
            read.status,
            CheckStatus::Warn,
            "the second write overwrote the canary"
        );
    }

    #[test]
    fn memory_store_enforces_create_only_and_leaves_no_canary() {
        let store = Store::memory();
        store.put("sources/a.jsonl", "x").unwrap();
        let r = run(&store, vec![]);
        assert_eq!(r.create_only, CreateOnly::Enforced, "{r:#?}");
        assert!(r.publish_safe && !r.store_unusable());
        let keys: Vec<_> = store.list("").map(|o| o.unwrap().key).collect();
        assert_eq!(keys, ["sources/a.jsonl"]);
    }
}
