//! `gatehouse_ray._native`: gatehouse-core for Python, built by maturin into an abi3 wheel.
//!
//! The Ray driver (`python/gatehouse_ray/`) calls these functions inside Ray tasks. Data
//! crosses the boundary as Arrow, through the Arrow PyCapsule interface (`pyo3-arrow`):
//! columns come in and go out without a copy, and every function that reads the store or
//! works on a batch releases the GIL while it does (`Python::detach`).
//!
//! Exposed: a store opened from the same settings as the CLI, a listing as an Arrow table,
//! digests per object and per batch, and `Build`, the build's steps: prepare, map objects
//! into fragments, band rows out of the fragments (an Arrow table to shuffle by band key),
//! judge one partition's LSH buckets (an Arrow table in, one Arrow row out), finish. The
//! clustering, the merge in key order, shards and manifest run inside `finish`, on the
//! driver.
//!
//! Errors become Python exceptions (`GatehouseError` and its subclasses `ConfigError`,
//! `StoreError`) carrying the core's message and hint: keys, paths and operations, never
//! object content.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use gatehouse_core::build::dedup::shuffle::{BandRow, JudgedPartition, Member, RowsReceipt};
use gatehouse_core::config::{self, BackendKind, Overrides, ProcessEnv};
use gatehouse_core::digest::HashingReader;
use gatehouse_core::store::{Backend, Store};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::PyTable;

create_exception!(
    _native,
    GatehouseError,
    PyException,
    "An error reported by gatehouse-core."
);
create_exception!(
    _native,
    ConfigError,
    GatehouseError,
    "The configuration (gatehouse.toml, environment, arguments) is invalid."
);
create_exception!(
    _native,
    StoreError,
    GatehouseError,
    "A store operation failed (listing, reading)."
);

/// The core's message, then its hint on a line of its own, as the CLI prints them.
fn message(text: String, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{text}\nhint: {h}"),
        None => text,
    }
}

fn store_err(e: gatehouse_core::store::StoreError) -> PyErr {
    let hint = e.hint();
    StoreError::new_err(message(e.to_string(), hint))
}

fn config_err(e: gatehouse_core::config::ConfigError) -> PyErr {
    let hint = e.hint();
    ConfigError::new_err(message(e.to_string(), hint))
}

/// The settings a store was opened with, kept so the handle can be pickled into Ray tasks
/// and reopened there: as resolved where it was opened (the config file, the registry and
/// the local root as absolute paths; the bucket, endpoint, region and exports prefix as
/// values), so a worker with another working directory and environment opens the same
/// store and registry. Secrets are never kept; a worker reads them from its environment,
/// as the CLI does.
#[derive(Debug, Clone, Default)]
struct OpenArgs {
    config: Option<String>,
    registry: Option<String>,
    local_path: Option<String>,
    backend: Option<String>,
    bucket: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    exports_prefix: Option<String>,
}

/// A gatehouse store (local directory or S3 bucket), resolved from arguments, environment
/// and `gatehouse.toml` exactly as the CLI resolves its global flags
/// (flag > environment > file > default). Picklable: Ray tasks reopen it from the same
/// settings and their own environment.
#[pyclass(name = "Store", module = "gatehouse_ray._native", frozen)]
#[derive(Debug)]
struct PyStore {
    store: Store,
    settings: gatehouse_core::config::Settings,
    args: OpenArgs,
}

#[pymethods]
impl PyStore {
    #[new]
    #[pyo3(signature = (config=None, local_path=None, backend=None, bucket=None, endpoint=None, region=None, exports_prefix=None, registry=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        config: Option<String>,
        local_path: Option<String>,
        backend: Option<String>,
        bucket: Option<String>,
        endpoint: Option<String>,
        region: Option<String>,
        exports_prefix: Option<String>,
        registry: Option<String>,
    ) -> PyResult<Self> {
        let args = OpenArgs {
            config,
            registry,
            local_path,
            backend,
            bucket,
            endpoint,
            region,
            exports_prefix,
        };
        py.detach(|| open(args))
    }

    /// `(Store, (config, local_path, backend, bucket, endpoint, region, exports_prefix,
    /// registry))`.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, pyo3::types::PyType>, Bound<'py, PyTuple>)> {
        let a = &slf.get().args;
        let args = PyTuple::new(
            slf.py(),
            [
                &a.config,
                &a.local_path,
                &a.backend,
                &a.bucket,
                &a.endpoint,
                &a.region,
                &a.exports_prefix,
                &a.registry,
            ],
        )?;
        Ok((slf.get_type(), args))
    }

    /// Where the store is, without secrets: `local:/abs/root` or `s3://bucket`.
    fn describe(&self) -> String {
        match &self.store.config().backend {
            Backend::Local { root } => format!("local:{}", root.display()),
            Backend::S3(s3) => format!("s3://{}", s3.bucket),
            Backend::Memory => "memory".to_string(),
        }
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.describe())
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn open(mut args: OpenArgs) -> PyResult<PyStore> {
    let backend = args
        .backend
        .as_deref()
        .map(str::parse::<BackendKind>)
        .transpose()
        .map_err(PyValueError::new_err)?;
    let overrides = Overrides {
        config: args.config.as_ref().map(PathBuf::from),
        registry: args.registry.as_ref().map(PathBuf::from),
        local_path: args.local_path.as_ref().map(PathBuf::from),
        backend,
        bucket: args.bucket.clone(),
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        exports_prefix: args.exports_prefix.clone(),
        ..Overrides::default()
    };
    let settings = config::resolve(&overrides, &ProcessEnv).map_err(config_err)?;
    let store = Store::open(&settings.store).map_err(store_err)?;
    // What a worker needs to open the same store wherever it runs: the file actually read
    // (or none: /dev/null, as `config::store_from_env` does) and the canonical local root.
    args.config = Some(settings.config_file.as_deref().map_or_else(
        || "/dev/null".to_string(),
        |p| absolute(p).display().to_string(),
    ));
    args.registry = Some(absolute(&settings.registry_path).display().to_string());
    match &store.config().backend {
        Backend::Local { root } => {
            args.local_path = Some(root.display().to_string());
            args.backend = Some("local".to_string());
        }
        Backend::S3(s3) => {
            args.backend = Some("s3".to_string());
            args.bucket = Some(s3.bucket.clone());
            args.endpoint.clone_from(&s3.endpoint);
            args.region = Some(s3.region.clone());
        }
        Backend::Memory => {}
    }
    args.exports_prefix = Some(store.exports_prefix().to_string());
    Ok(PyStore {
        store,
        settings,
        args,
    })
}

fn release_err(e: gatehouse_core::release::ReleaseError) -> PyErr {
    let hint = e.hint();
    GatehouseError::new_err(message(e.to_string(), hint))
}

/// `gatehouse build` of one version, cut into the steps the Ray driver runs in different
/// processes (gatehouse-core's `release::BuildSteps`): the driver calls `prepare()`, each
/// Ray actor holds one `Build` and calls `map(indices)`, then `band_rows(indices, parts)`;
/// after a group-by on `part`, `judge(rows)` per partition; the driver calls
/// `finish(judged)`. The
/// registry is loaded and the PII detector built once, when the `Build` is made. Every
/// step releases the GIL.
#[pyclass(name = "Build", module = "gatehouse_ray._native", frozen)]
#[derive(Debug)]
struct PyBuild {
    steps: gatehouse_core::release::BuildSteps,
}

#[pymethods]
impl PyBuild {
    #[new]
    fn new(py: Python<'_>, store: &Bound<'_, PyStore>, version: String) -> PyResult<Self> {
        let store = store.get();
        let (handle, settings) = (store.store.clone(), store.settings.clone());
        py.detach(move || {
            let registry = gatehouse_core::registry::Registry::load(&settings.registry_path)
                .map_err(|e| {
                    let hint = e.hint();
                    ConfigError::new_err(message(e.to_string(), hint))
                })?;
            let steps =
                gatehouse_core::release::BuildSteps::new(handle, settings, registry, &version)
                    .map_err(release_err)?;
            Ok(Self { steps })
        })
    }

    /// Plans the build (the same inputs and settings as `gatehouse build`) and clears its
    /// draft. Returns how many source objects there are; object `i` is the `i`-th in key
    /// order.
    fn prepare(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.steps.prepare().map_err(release_err))
    }

    /// Maps the objects `indices` into their fragments in the store, reusing fragments
    /// already made for this build (a re-run resumes). Returns `(mapped, reused)`.
    fn map(&self, py: Python<'_>, indices: Vec<usize>) -> PyResult<(usize, usize)> {
        py.detach(|| self.steps.map(&indices).map_err(release_err))
    }

    /// The band rows of the objects `indices`, read from their fragments: a
    /// `pyarrow.Table` with `part` (uint32, the row's partition of `parts`, a function of
    /// the band key), `band` (uint32), `key` (uint64, the band key) and `member` (uint64,
    /// object index << 32 | ordinal). Empty when near duplicates are not looked for.
    fn band_rows<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<usize>,
        parts: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch = py.detach(|| -> PyResult<RecordBatch> {
            let rows = self.steps.band_rows(&indices, parts).map_err(release_err)?;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1.band))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1.key))),
                Arc::new(UInt64Array::from_iter_values(
                    rows.iter().map(|r| r.1.member.packed()),
                )),
            ];
            RecordBatch::try_new(band_rows_schema(), columns)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Judges the LSH buckets in one partition's band rows (a table as `band_rows(...,
    /// parts)` makes it, every row of one `part`; e.g. one group of `groupby("part")`).
    /// Returns a one-row `pyarrow.Table`: the partition, the receipt of its rows (`rows`,
    /// `digest`) and, as list columns, the similar pairs, the members' cuts and the skipped
    /// buckets (see gatehouse-core's `build::dedup::shuffle`). No text.
    fn judge<'py>(
        &self,
        py: Python<'py>,
        rows: PyTable,
        parts: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (batches, _) = rows.into_inner();
        let batch = py.detach(move || -> PyResult<RecordBatch> {
            let (part, rows) = read_band_rows(&batches)?;
            let judged = self
                .steps
                .judge((part, parts), &rows)
                .map_err(release_err)?;
            judged_to_arrow(&judged)
        })?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Finishes the build from the fragments (duplicates, the merge in key order, reports,
    /// manifest) and removes them. `judged`: the tables `judge` returned, every partition
    /// once, in any order (an empty list when there were no band rows: that too is
    /// checked), or `None` to judge the candidate pairs here. Returns the release digest.
    #[pyo3(signature = (judged=None))]
    fn finish(&self, py: Python<'_>, judged: Option<Vec<PyTable>>) -> PyResult<String> {
        let judged: Option<Vec<RecordBatch>> =
            judged.map(|ts| ts.into_iter().flat_map(|t| t.into_inner().0).collect());
        py.detach(move || {
            let judged = judged.map(|b| judged_from_arrow(&b)).transpose()?;
            let outcome = self.steps.finish(judged).map_err(release_err)?;
            Ok(outcome.release_digest)
        })
    }
}

fn band_rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("band", DataType::UInt32, false),
        Field::new("key", DataType::UInt64, false),
        Field::new("member", DataType::UInt64, false),
    ]))
}

/// An integer column of `batch` by name, as `T`'s array: another integer type is cast
/// (a value out of range fails), anything else is refused.
fn column<T: arrow_array::ArrowPrimitiveType>(
    batch: &RecordBatch,
    name: &str,
) -> PyResult<arrow_array::PrimitiveArray<T>> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| PyTypeError::new_err(format!("no column named `{name}`")))?;
    if !c.data_type().is_integer() {
        return Err(PyTypeError::new_err(format!(
            "column `{name}` must be integers, not {}",
            c.data_type()
        )));
    }
    let c = arrow_cast::cast(c, &T::DATA_TYPE)
        .map_err(|e| PyTypeError::new_err(format!("column `{name}`: {e}")))?;
    if c.null_count() > 0 {
        return Err(PyValueError::new_err(format!("column `{name}` has nulls")));
    }
    Ok(c.as_primitive::<T>().clone())
}

/// One partition's band rows: its number (every row's `part`) and the rows.
fn read_band_rows(batches: &[RecordBatch]) -> PyResult<(u32, Vec<BandRow>)> {
    let mut part = None;
    let mut rows = Vec::new();
    for b in batches {
        let parts = column::<UInt32Type>(b, "part")?;
        let bands = column::<UInt32Type>(b, "band")?;
        let keys = column::<UInt64Type>(b, "key")?;
        let members = column::<UInt64Type>(b, "member")?;
        for i in 0..b.num_rows() {
            if *part.get_or_insert(parts.value(i)) != parts.value(i) {
                return Err(PyValueError::new_err(
                    "judge takes the rows of one partition: column `part` has two values",
                ));
            }
            rows.push(BandRow {
                band: bands.value(i),
                key: keys.value(i),
                member: Member::unpacked(members.value(i)),
            });
        }
    }
    let part = part.ok_or_else(|| PyValueError::new_err("judge needs at least one band row"))?;
    Ok((part, rows))
}

fn list<T: arrow_array::ArrowPrimitiveType>(values: Vec<T::Native>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<T, _, _>([Some(
        values.into_iter().map(Some),
    )]))
}

fn judged_to_arrow(j: &JudgedPartition) -> PyResult<RecordBatch> {
    let item = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("digest", DataType::UInt64, false),
        Field::new("similar_band", item(DataType::UInt32), false),
        Field::new("similar_member", item(DataType::UInt64), false),
        Field::new("similar_other", item(DataType::UInt64), false),
        Field::new("similar_jaccard", item(DataType::Float64), false),
        Field::new("cut_band", item(DataType::UInt32), false),
        Field::new("cut_member", item(DataType::UInt64), false),
        Field::new("cut_after", item(DataType::UInt64), false),
        Field::new("skipped_band", item(DataType::UInt32), false),
        Field::new("skipped_key", item(DataType::UInt64), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![j.part])),
        Arc::new(UInt64Array::from(vec![j.receipt.rows])),
        Arc::new(UInt64Array::from(vec![j.receipt.digest])),
        list::<UInt32Type>(j.similar.iter().map(|s| s.0).collect()),
        list::<UInt64Type>(j.similar.iter().map(|s| s.1.packed()).collect()),
        list::<UInt64Type>(j.similar.iter().map(|s| s.2.packed()).collect()),
        list::<Float64Type>(j.similar.iter().map(|s| s.3).collect()),
        list::<UInt32Type>(j.cut.iter().map(|c| c.0).collect()),
        list::<UInt64Type>(j.cut.iter().map(|c| c.1.packed()).collect()),
        list::<UInt64Type>(j.cut.iter().map(|c| c.2.packed()).collect()),
        list::<UInt32Type>(j.skipped.iter().map(|s| s.0).collect()),
        list::<UInt64Type>(j.skipped.iter().map(|s| s.1).collect()),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Row `row`'s list in column `name`, as `T`'s values.
fn list_at<T: arrow_array::ArrowPrimitiveType>(
    batch: &RecordBatch,
    name: &str,
    row: usize,
) -> PyResult<Vec<T::Native>> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| PyTypeError::new_err(format!("no column named `{name}`")))?;
    let values = match (c.as_list_opt::<i32>(), c.as_list_opt::<i64>()) {
        (Some(l), _) if !l.is_null(row) => l.value(row),
        (_, Some(l)) if !l.is_null(row) => l.value(row),
        (None, None) => {
            return Err(PyTypeError::new_err(format!(
                "column `{name}` is not a list"
            )));
        }
        // A missing list is not an empty one: it would read as "nothing similar".
        _ => {
            return Err(PyValueError::new_err(format!(
                "column `{name}` has a null list"
            )));
        }
    };
    let values = values
        .as_primitive_opt::<T>()
        .ok_or_else(|| PyTypeError::new_err(format!("column `{name}` has the wrong type")))?;
    if values.null_count() > 0 {
        return Err(PyValueError::new_err(format!("column `{name}` has nulls")));
    }
    Ok(values.values().to_vec())
}

fn judged_from_arrow(batches: &[RecordBatch]) -> PyResult<Vec<JudgedPartition>> {
    let mut out = Vec::new();
    for b in batches {
        let parts = column::<UInt32Type>(b, "part")?;
        let rows = column::<UInt64Type>(b, "rows")?;
        let digests = column::<UInt64Type>(b, "digest")?;
        for i in 0..b.num_rows() {
            let unequal = |what: &str| {
                PyValueError::new_err(format!(
                    "partition row {i}: the {what} lists differ in length"
                ))
            };
            let (sb, sm, so, sj) = (
                list_at::<UInt32Type>(b, "similar_band", i)?,
                list_at::<UInt64Type>(b, "similar_member", i)?,
                list_at::<UInt64Type>(b, "similar_other", i)?,
                list_at::<Float64Type>(b, "similar_jaccard", i)?,
            );
            if [sm.len(), so.len(), sj.len()] != [sb.len(); 3] {
                return Err(unequal("similar"));
            }
            let (cb, cm, ca) = (
                list_at::<UInt32Type>(b, "cut_band", i)?,
                list_at::<UInt64Type>(b, "cut_member", i)?,
                list_at::<UInt64Type>(b, "cut_after", i)?,
            );
            if [cm.len(), ca.len()] != [cb.len(); 2] {
                return Err(unequal("cut"));
            }
            let (kb, kk) = (
                list_at::<UInt32Type>(b, "skipped_band", i)?,
                list_at::<UInt64Type>(b, "skipped_key", i)?,
            );
            if kk.len() != kb.len() {
                return Err(unequal("skipped"));
            }
            let m = Member::unpacked;
            out.push(JudgedPartition {
                part: parts.value(i),
                receipt: RowsReceipt {
                    rows: rows.value(i),
                    digest: digests.value(i),
                },
                similar: (0..sb.len())
                    .map(|k| (sb[k], m(sm[k]), m(so[k]), sj[k]))
                    .collect(),
                cut: (0..cb.len()).map(|k| (cb[k], m(cm[k]), m(ca[k]))).collect(),
                skipped: kb.into_iter().zip(kk).collect(),
            });
        }
    }
    Ok(out)
}

/// The gatehouse version these bindings were built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn listing_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("etag", DataType::Utf8, true),
    ]))
}

/// Every object whose key starts with `prefix`, as a `pyarrow.Table` with columns `key`
/// (utf8), `size` (uint64) and `etag` (utf8, nullable), in the store's listing order. Keys
/// gatehouse cannot read back are left out, as everywhere in gatehouse; their number is in
/// the schema metadata `gatehouse.unusable_keys`.
#[pyfunction]
#[pyo3(signature = (store, prefix=""))]
fn list_objects<'py>(
    py: Python<'py>,
    store: &Bound<'py, PyStore>,
    prefix: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store.get().store.clone();
    let prefix = prefix.to_string();
    let (batch, schema) = py.detach(move || -> PyResult<_> {
        let mut keys = StringBuilder::new();
        let mut sizes = UInt64Builder::new();
        let mut etags = StringBuilder::new();
        let mut list = store.list(&prefix);
        for info in list.by_ref() {
            let info = info.map_err(store_err)?;
            keys.append_value(&info.key);
            sizes.append_value(info.size);
            etags.append_option(info.etag.as_deref());
        }
        let metadata = [(
            "gatehouse.unusable_keys".to_string(),
            list.unusable_count().to_string(),
        )]
        .into();
        let schema = Arc::new(listing_schema().as_ref().clone().with_metadata(metadata));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(keys.finish()),
            Arc::new(sizes.finish()),
            Arc::new(etags.finish()),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((batch, schema))
    })?;
    PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
}

/// `sha256:<hex>` and byte count of one object, streamed from the store.
fn digest_of(store: &Store, key: &str) -> PyResult<(String, u64)> {
    let reader = store.open_read(key).map_err(store_err)?;
    let mut hashing = HashingReader::new(reader);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match hashing.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // ObjectReader's errors name the operation and the key, never content.
            Err(e) => return Err(StoreError::new_err(e.to_string())),
        }
    }
    Ok(hashing.finish())
}

/// The sha256 of one object, as gatehouse writes digests (`sha256:<64 hex>`). The GIL is
/// released while the object is read.
#[pyfunction]
fn object_digest(py: Python<'_>, store: &Bound<'_, PyStore>, key: &str) -> PyResult<String> {
    let store = store.get().store.clone();
    let key = key.to_string();
    py.detach(move || digest_of(&store, &key).map(|(d, _)| d))
}

/// The shape of a map kernel: an Arrow batch in (a table with a string column `key`, e.g.
/// a slice of `list_objects`), an Arrow batch out, one row per input row in input order:
/// `key` (utf8), `size` (uint64, bytes read) and `digest` (utf8, `sha256:<hex>`). Columns
/// are imported and exported zero-copy (Arrow PyCapsule interface); the GIL is released
/// for the whole batch. For `ray.data.Dataset.map_batches(batch_format="pyarrow")`.
#[pyfunction]
fn digest_batch<'py>(
    py: Python<'py>,
    store: &Bound<'py, PyStore>,
    batch: PyTable,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store.get().store.clone();
    let (batches, schema) = batch.into_inner();
    let index = schema
        .index_of("key")
        .map_err(|_| PyTypeError::new_err("digest_batch needs a column named `key`"))?;
    let out = py.detach(move || -> PyResult<RecordBatch> {
        let mut keys = StringBuilder::new();
        let mut sizes = UInt64Builder::new();
        let mut digests = StringBuilder::new();
        for b in &batches {
            let column = arrow_cast::cast(b.column(index), &DataType::Utf8)
                .map_err(|e| PyTypeError::new_err(format!("column `key`: {e}")))?;
            let Some(column) = column.as_any().downcast_ref::<StringArray>() else {
                return Err(PyTypeError::new_err("column `key` must be strings"));
            };
            for i in 0..column.len() {
                if column.is_null(i) {
                    return Err(PyValueError::new_err(format!(
                        "column `key` has a null at row {i}"
                    )));
                }
                let key = column.value(i);
                let (digest, size) = digest_of(&store, key)?;
                keys.append_value(key);
                sizes.append_value(size);
                digests.append_value(digest);
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("size", DataType::UInt64, false),
            Field::new("digest", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(keys.finish()),
            Arc::new(sizes.finish()),
            Arc::new(digests.finish()),
        ];
        RecordBatch::try_new(schema, columns).map_err(|e| PyValueError::new_err(e.to_string()))
    })?;
    let schema = out.schema();
    PyTable::try_new(vec![out], schema)?.into_pyarrow(py)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GatehouseError", py.get_type::<GatehouseError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add_class::<PyStore>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(list_objects, m)?)?;
    m.add_function(wrap_pyfunction!(object_digest, m)?)?;
    m.add_function(wrap_pyfunction!(digest_batch, m)?)?;
    m.add_class::<PyBuild>()?;
    Ok(())
}
