//! Write-once publication relies on the store refusing a second create-only write. A store
//! that silently ignores conditional writes (some S3-compatible services do) must be
//! detected before anything is published, by `doctor` and by publication's own probe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use gatehouse_core::doctor::{self, CreateOnly};
use gatehouse_core::publish::create_only_enforced;
use gatehouse_core::store::{Backend, Store, StoreConfig};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// An object store that treats every create-only put as a plain overwrite, like a store
/// that ignores `If-None-Match`.
#[derive(Debug)]
struct IgnoresConditionalWrites(InMemory);

impl std::fmt::Display for IgnoresConditionalWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IgnoresConditionalWrites")
    }
}

#[async_trait]
impl ObjectStore for IgnoresConditionalWrites {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.0.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

fn unsafe_store() -> Store {
    Store::from_object_store(
        Arc::new(IgnoresConditionalWrites(InMemory::new())),
        StoreConfig {
            backend: Backend::Memory,
            exports_prefix: "exports".into(),
        },
    )
    .unwrap()
}

#[test]
fn a_store_that_ignores_conditional_writes_is_detected() {
    let store = unsafe_store();
    store.put("sources/x.jsonl", "{}\n").unwrap();
    assert!(!create_only_enforced(&store).unwrap());
    let report = doctor::run(&store, Vec::new());
    assert_eq!(report.create_only, CreateOnly::Ignored);
    assert!(!report.publish_safe);
    // The probe leaves nothing behind.
    assert_eq!(store.list("exports/").count(), 0);
}

#[test]
fn a_store_that_enforces_them_passes_the_probe() {
    let store = Store::memory();
    assert!(create_only_enforced(&store).unwrap());
    assert_eq!(store.list("exports/").count(), 0);
}
