//! The Ray driver's smoke path, end to end: a real local Ray cluster (2 CPUs) lists the
//! sample store through the wheel and digests every object in Ray Data tasks; the digests
//! must be gatehouse-core's own, object for object. Once on a local copy of the sample store,
//! once on an S3 bucket (the in-process server, or moto when `GATEHOUSE_TEST_S3_ENDPOINT` is
//! set, as in the S3 suites).
//!
//! Needs a Python with `ray[data]`, `pyarrow` and the gatehouse-py wheel installed, named by
//! `GATEHOUSE_TEST_RAY_PYTHON` (`.ci/run` builds the wheel into a venv and sets it). Without
//! it the tests are skipped with a message; in CI (`CI` set) they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gatehouse_core::config::store_from_env;
use gatehouse_core::digest::sha256;
use gatehouse_core::store::Store;
use gatehouse_test::TestS3;

const ENV: &str = "GATEHOUSE_TEST_RAY_PYTHON";

static RAY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn python() -> Option<OsString> {
    let python = std::env::var_os(ENV);
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set {ENV} to a Python with ray[data], pyarrow and the gatehouse-py wheel"
        );
        eprintln!(
            "skipped: set {ENV} to a Python with ray[data], pyarrow and the gatehouse-py wheel"
        );
    }
    python
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the sample store (without any exports a local release left there).
fn sample_store_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    gatehouse_test::for_each_file(
        &repo_root().join("examples/sample-store"),
        &mut |key, bytes| {
            if key.starts_with("exports/") {
                return Ok(());
            }
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap())?;
            std::fs::write(path, bytes)?;
            Ok(())
        },
    )
    .unwrap();
    dir
}

/// gatehouse-core's digest of every object under `prefix`: key → (size, `sha256:<hex>`),
/// each object read whole (`get_bytes`, not the streaming reader the kernel uses).
fn core_digests(store: &Store, prefix: &str) -> BTreeMap<String, (u64, String)> {
    store
        .list(prefix)
        .map(|info| {
            let info = info.unwrap();
            let bytes = store.get_bytes(&info.key).unwrap();
            (info.key, (bytes.len() as u64, sha256(&bytes)))
        })
        .collect()
}

/// Runs `python -m gatehouse_ray <store> --num-cpus 2 list <list>` in `cwd` with only `env`
/// set (plus what Python and Ray need to run), and returns its JSON summary as
/// key → (size, digest).
fn ray_list(
    python: &OsString,
    cwd: &Path,
    env: &[(String, String)],
    store: &[&str],
    list: &[&str],
) -> BTreeMap<String, (u64, String)> {
    let mut cmd = Command::new(python);
    cmd.current_dir(cwd)
        .env_clear()
        .args(["-m", "gatehouse_ray"])
        .args(store)
        .args(["--num-cpus", "2", "list"])
        .args(list)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0");
    for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // One Ray cluster at a time: the tests of this file run on parallel threads, and two
    // local clusters on a 2-CPU machine only slow each other down.
    let _one_at_a_time = RAY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "python -m gatehouse_ray {store:?} list {list:?}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "gatehouse_ray list failed ({}):\n{stderr}",
        out.status
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stderr}"));
    assert_eq!(summary["missing"], serde_json::json!([]), "{summary}");
    let objects = summary["objects"].as_array().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o["key"].as_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "objects are printed sorted by key");
    objects
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                (
                    o["size"].as_u64().unwrap(),
                    o["digest"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn assert_same(ray: &BTreeMap<String, (u64, String)>, core: &BTreeMap<String, (u64, String)>) {
    assert!(!core.is_empty(), "the sample store has objects");
    let ray_keys: Vec<_> = ray.keys().collect();
    let core_keys: Vec<_> = core.keys().collect();
    assert_eq!(ray_keys, core_keys, "the same objects");
    for (key, expected) in core {
        assert_eq!(&ray[key], expected, "{key}: size and digest");
    }
}

#[test]
fn ray_digests_the_local_sample_store_as_the_core_does() {
    let Some(python) = python() else { return };
    let store_dir = sample_store_copy();
    let work = tempfile::tempdir().unwrap();
    let core = core_digests(
        &Store::open(&gatehouse_core::store::StoreConfig {
            backend: gatehouse_core::store::Backend::Local {
                root: store_dir.path().to_path_buf(),
            },
            exports_prefix: "exports".into(),
        })
        .unwrap(),
        "",
    );
    let store_path = store_dir.path().to_str().unwrap();
    let store = ["--local-path", store_path];
    let ray = ray_list(&python, work.path(), &[], &store, &[]);
    assert_same(&ray, &core);
    let cot: BTreeMap<_, _> = core
        .iter()
        .filter(|(k, _)| k.starts_with("sources/cot/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let ray = ray_list(
        &python,
        work.path(),
        &[],
        &store,
        &["--prefix", "sources/cot/"],
    );
    assert_same(&ray, &cot);
}

#[test]
fn ray_digests_an_s3_bucket_as_the_core_does() {
    let Some(python) = python() else { return };
    let s3 = TestS3::start().unwrap();
    let bucket = s3.create_bucket("ray-list").unwrap();
    let env = s3.env(&bucket);
    let env_map: BTreeMap<_, _> = env.iter().cloned().collect();
    let store = Store::open(&store_from_env(&env_map).unwrap()).unwrap();
    let source = sample_store_copy();
    gatehouse_test::for_each_file(source.path(), &mut |k, b| {
        store.put(k, b).map_err(|e| anyhow::anyhow!("{e}"))
    })
    .unwrap();
    let core = core_digests(&store, "");
    let work = tempfile::tempdir().unwrap();
    let ray = ray_list(&python, work.path(), &env, &[], &[]);
    assert_same(&ray, &core);
}

/// The project for a build: the sample store, the example registry and the repository's
/// gatehouse.toml pointed at them.
fn sample_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store_copy();
    gatehouse_test::for_each_file(store.path(), &mut |key, bytes| {
        let path = dir.path().join("store").join(key);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(path, bytes)?;
        Ok(())
    })
    .unwrap();
    std::fs::copy(
        repo_root().join("examples/registry.toml"),
        dir.path().join("registry.toml"),
    )
    .unwrap();
    let config = std::fs::read_to_string(repo_root().join("gatehouse.toml"))
        .unwrap()
        .replace(
            "registry = \"examples/registry.toml\"",
            &format!("registry = {:?}", dir.path().join("registry.toml")),
        )
        .replace(
            "local_path = \"examples/sample-store\"",
            &format!("local_path = {:?}", dir.path().join("store")),
        );
    std::fs::write(dir.path().join("gatehouse.toml"), config).unwrap();
    dir
}

/// Every file of the draft; the manifest with its `git_commit` neutralised (the wheel and
/// this test binary may be built from different commits).
fn draft(root: &Path, version: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let dir = root.join("store/exports/releases").join(version);
    gatehouse_test::for_each_file(&dir, &mut |key, bytes| {
        let bytes = if key == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            m["tool"]["git_commit"] = "<commit>".into();
            serde_json::to_vec_pretty(&m).unwrap()
        } else {
            bytes.to_vec()
        };
        files.insert(key.to_string(), bytes);
        Ok(())
    })
    .unwrap();
    files
}

#[test]
fn a_build_on_ray_writes_the_same_draft_as_the_single_node_build() {
    let Some(python) = python() else { return };
    const V: &str = "v2026-12-05";
    let project = sample_project();
    // Single node, in this process: what `gatehouse build` runs.
    let overrides = gatehouse_core::config::Overrides {
        config: Some(project.path().join("gatehouse.toml")),
        ..Default::default()
    };
    let settings =
        gatehouse_core::config::resolve(&overrides, &gatehouse_core::config::ProcessEnv).unwrap();
    let store = Store::open(&settings.store).unwrap();
    let registry = gatehouse_core::registry::Registry::load(&settings.registry_path).unwrap();
    gatehouse_core::release::build_only(&store, &settings, &registry, V, &mut |_| {}).unwrap();
    let single = draft(project.path(), V);
    assert!(single.len() > 5, "{:?}", single.keys());

    // On Ray: the same project, built again into the same draft.
    let mut cmd = Command::new(&python);
    cmd.current_dir(project.path())
        .env_clear()
        .args([
            "-m",
            "gatehouse_ray",
            "--num-cpus",
            "2",
            "build",
            "--release-version",
            V,
        ])
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0");
    for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    let _one_at_a_time = RAY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gatehouse_ray build failed:\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["mapped"], summary["objects"], "{summary}");
    let ray = draft(project.path(), V);
    assert_eq!(
        ray.keys().collect::<Vec<_>>(),
        single.keys().collect::<Vec<_>>()
    );
    for (key, bytes) in &single {
        assert!(
            &ray[key] == bytes,
            "{key} differs between Ray and single node"
        );
    }
}
