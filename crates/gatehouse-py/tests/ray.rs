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

/// The release digest covers the manifest, which names the commit the code was built from.
const SAME_COMMIT: &str = "(the wheel and this test must be built from the same commit: \
     rebuild and reinstall the wheel)";

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

/// `python` in `cwd` with an empty environment but for what Python and Ray need to run.
fn python_command(python: &OsString, cwd: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.current_dir(cwd)
        .env_clear()
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0");
    for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd
}

/// `cmd`'s output; the test fails, and the process is killed, if it takes over `limit`
/// (a hung driver must not hang CI).
fn output_within(mut cmd: Command, limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        let mut r = r.unwrap();
        std::thread::spawn(move || {
            let mut b = Vec::new();
            r.read_to_end(&mut b).map(|_| b)
        })
    };
    let stdout = pipe(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = pipe(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} took over {limit:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    }
}

/// Runs `python -m gatehouse_ray ARGS` in `cwd` with `env` added, one at a time, and returns
/// its JSON summary (stdout) and its stderr; fails the test, showing both, if it fails.
fn run_driver(
    python: &OsString,
    cwd: &Path,
    env: &[(String, String)],
    args: &[&str],
) -> (serde_json::Value, String) {
    let mut cmd = python_command(python, cwd);
    cmd.args(["-m", "gatehouse_ray"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // One Ray cluster at a time: the tests of this file run on parallel threads, and two
    // local clusters on a 2-CPU machine only slow each other down.
    let _one_at_a_time = RAY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let out = output_within(cmd, std::time::Duration::from_secs(600));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "python -m gatehouse_ray {args:?}: {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        stderr
            .lines()
            .rfind(|l| l.starts_with("gatehouse_ray "))
            .unwrap_or("no timings")
    );
    // stdout is the driver's summary (keys, counts, digests; never content).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gatehouse_ray {args:?} failed ({}):\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}");
    });
    (summary, stderr)
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
    let mut args: Vec<&str> = store.to_vec();
    args.extend(["--num-cpus", "2", "list"]);
    args.extend(list);
    let (summary, _) = run_driver(python, cwd, env, &args);
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

/// A project for a build: `gatehouse.toml` (the repository's, pointed at the example
/// registry copied here and, for the local backend, at `store/` here) and the registry.
/// Paths are absolute, so any working directory reads the same project.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
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

/// Writes the sample store's sources through `put`.
fn put_sample_sources(put: &mut dyn FnMut(&str, Vec<u8>)) {
    let source = sample_store_copy();
    gatehouse_test::for_each_file(source.path(), &mut |key, bytes| {
        put(key, bytes);
        Ok(())
    })
    .unwrap();
}

/// `n` generated conversations with planted exact and near duplicates (gatehouse-synth's
/// dedup stream, seed 7) as ChatML objects of 1,000 conversations under the sample
/// registry's session dataset, so copies land in other objects than their originals.
fn put_generated_sessions(n: u64, put: &mut dyn FnMut(&str, Vec<u8>)) {
    let stream = gatehouse_synth::dups::Stream::new(7);
    for part in 0..n.div_ceil(1000) {
        let mut bytes = Vec::new();
        for i in part * 1000..((part + 1) * 1000).min(n) {
            let record = stream.record(i);
            gatehouse_synth::formats::chatml_jsonl(
                &mut bytes,
                &record.conversation,
                gatehouse_synth::formats::Eol::Lf,
            )
            .unwrap();
        }
        put(
            &format!("sources/professional/sessions/generated-{part:03}.jsonl"),
            bytes,
        );
    }
}

/// The project's settings with `env` as the whole environment.
fn settings(project: &Path, env: &[(String, String)]) -> gatehouse_core::config::Settings {
    let overrides = gatehouse_core::config::Overrides {
        config: Some(project.join("gatehouse.toml")),
        ..Default::default()
    };
    let env: BTreeMap<String, String> = env.iter().cloned().collect();
    gatehouse_core::config::resolve(&overrides, &env).unwrap()
}

/// Every file the build wrote in `version`'s draft (the gates' reports and `report.html`
/// left out); the manifest's
/// `git_commit` neutralised (the wheel and this test binary may be built from different
/// commits, and the manifest names it).
fn draft(store: &Store, version: &str) -> BTreeMap<String, Vec<u8>> {
    let prefix = format!("{}/releases/{version}/", store.exports_prefix());
    let mut files = BTreeMap::new();
    for info in store.list(&prefix) {
        let key = info.unwrap().key;
        if key[prefix.len()..].starts_with("gates/") || key.ends_with("/report.html") {
            continue;
        }
        let mut bytes = store.get_bytes(&key).unwrap().to_vec();
        if key.ends_with("/manifest.json") {
            let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            m["tool"]["git_commit"] = "<commit>".into();
            bytes = serde_json::to_vec_pretty(&m).unwrap();
        }
        files.insert(key[prefix.len()..].to_string(), bytes);
    }
    files
}

/// `gatehouse build` in this process: the draft's files, and the release digest.
fn single_node_build(
    store: &Store,
    settings: &gatehouse_core::config::Settings,
    version: &str,
) -> (BTreeMap<String, Vec<u8>>, String) {
    let registry = gatehouse_core::registry::Registry::load(&settings.registry_path).unwrap();
    let started = Instant::now();
    let outcome =
        gatehouse_core::release::build_only(store, settings, &registry, version, &mut |_| {})
            .unwrap();
    eprintln!(
        "gatehouse build {version}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (draft(store, version), outcome.release_digest)
}

/// `python -m gatehouse_ray --num-cpus 2 build --release-version VERSION` in `project` with
/// `env`; its JSON summary.
fn ray_build(
    python: &OsString,
    project: &Path,
    env: &[(String, String)],
    version: &str,
) -> serde_json::Value {
    let args = ["--num-cpus", "2", "build", "--release-version", version];
    run_driver(python, project, env, &args).0
}

/// The same files, byte for byte (named, never printed: they hold conversation text).
fn assert_same_draft(ray: &BTreeMap<String, Vec<u8>>, single: &BTreeMap<String, Vec<u8>>) {
    assert!(single.contains_key("manifest.json"), "{:?}", single.keys());
    assert_eq!(
        ray.keys().collect::<Vec<_>>(),
        single.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (key, bytes) in single {
        assert!(
            &ray[key] == bytes,
            "{key} differs between the Ray and the single-node build"
        );
    }
}

/// A project with a local copy of the sample store, built by `gatehouse build` into
/// `version`'s draft: the project, its store, the draft's files and the release digest.
fn sample_store_built(
    version: &str,
) -> (tempfile::TempDir, Store, BTreeMap<String, Vec<u8>>, String) {
    let project = project();
    put_sample_sources(&mut |key, bytes| {
        let path = project.path().join("store").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    });
    let settings = settings(project.path(), &[]);
    let store = Store::open(&settings.store).unwrap();
    let (single, digest) = single_node_build(&store, &settings, version);
    (project, store, single, digest)
}

#[test]
fn a_build_on_ray_writes_the_same_draft_as_the_single_node_build() {
    let Some(python) = python() else { return };
    const V: &str = "v2026-12-05";
    let (project, store, single, digest) = sample_store_built(V);

    let summary = ray_build(&python, project.path(), &[], V);
    assert_eq!(
        summary["release_digest"], digest,
        "{summary}\n{SAME_COMMIT}"
    );
    assert_eq!(summary["mapped"], summary["objects"], "{summary}");
    assert_shuffled(&summary);
    assert_same_draft(&draft(&store, V), &single);
    let work = format!("{}/work/", store.exports_prefix());
    assert_eq!(
        store.list(&work).count(),
        0,
        "the map fragments are removed when the build is finished"
    );

    // Without the shuffle (near duplicates judged on the driver): the same release.
    let args = [
        "--num-cpus",
        "2",
        "build",
        "--release-version",
        V,
        "--judge-on-driver",
    ];
    let summary = run_driver(&python, project.path(), &[], &args).0;
    assert_eq!(summary["near_duplicates"], "on the driver", "{summary}");
    assert_eq!(summary["release_digest"], digest, "{summary}");
    assert_same_draft(&draft(&store, V), &single);
}

/// The near duplicates were judged in partitions of a shuffle by band key.
fn assert_shuffled(summary: &serde_json::Value) {
    assert_eq!(summary["near_duplicates"], "shuffled", "{summary}");
    assert!(
        summary["partitions"].as_u64().unwrap() > 0,
        "partitions were judged: {summary}"
    );
}

/// Issue 21's acceptance test: 10,000 generated conversations (with planted duplicates)
/// and the sample sources in an S3 bucket (moto when `GATEHOUSE_TEST_S3_ENDPOINT` is set, as
/// in CI); the Ray build's release digest, dedup removals and every draft file equal the
/// single-node build's, and the gates pass on the Ray-built draft with the same leakage
/// certificate.
#[test]
fn ten_thousand_conversations_on_s3_build_on_ray_as_on_one_node() {
    let Some(python) = python() else { return };
    const V: &str = "v2026-12-05";
    let s3 = TestS3::start().unwrap();
    let bucket = s3.create_bucket("ray-build").unwrap();
    let env = s3.env(&bucket);
    let project = project();
    let settings = settings(project.path(), &env);
    let store = Store::open(&settings.store).unwrap();
    let mut put = |key: &str, bytes: Vec<u8>| store.put(key, bytes).unwrap();
    put_sample_sources(&mut put);
    put_generated_sessions(10_000, &mut put);
    let (single, digest) = single_node_build(&store, &settings, V);
    let registry = gatehouse_core::registry::Registry::load(&settings.registry_path).unwrap();
    // The gates' verdicts and the dedup and leakage certificates, as JSON.
    let gates = |store: &Store| {
        let outcome = gatehouse_core::release::gates_only(store, &settings, &registry, V).unwrap();
        (
            outcome.summaries,
            serde_json::to_string(&outcome.dedup).unwrap(),
            serde_json::to_string(&outcome.leakage).unwrap(),
        )
    };
    let single_gates = gates(&store);

    let summary = ray_build(&python, project.path(), &env, V);
    assert_eq!(
        summary["release_digest"], digest,
        "{summary}\n{SAME_COMMIT}"
    );
    assert_shuffled(&summary);
    let ray = draft(&store, V);
    assert_same_draft(&ray, &single);
    let manifest: serde_json::Value = serde_json::from_slice(&ray["manifest.json"]).unwrap();
    eprintln!("dedup: {}", manifest["dedup"]);
    let ray_gates = gates(&store);
    assert_eq!(ray_gates.0, single_gates.0, "the same gate verdicts");
    assert!(ray_gates.1 == single_gates.1, "the same dedup certificate");
    assert!(
        ray_gates.2 == single_gates.2,
        "the same leakage certificate"
    );
}

/// Faults: a driver that died after mapping three objects (their fragments are in the
/// store), then a run in which one map actor is killed with `ray.kill` after writing its
/// fragment and before returning its result, and one near-duplicate judge's worker process
/// dies before judging its partition (the driver's test hook
/// `GATEHOUSE_RAY_FAULT_KILL_ONE_ACTOR`). Ray Data restarts the actor and runs its batch
/// again, and runs the partition again; the re-run reuses the completed fragments; the
/// release is the same.
#[test]
fn a_dead_driver_and_a_killed_map_actor_do_not_change_the_release() {
    let Some(python) = python() else { return };
    const V: &str = "v2026-12-05";
    let (project, store, single, digest) = sample_store_built(V);

    // A driver that planned the build, mapped objects 0 to 2, and died.
    let out = python_command(&python, project.path())
        .args([
            "-c",
            &format!(
                "from gatehouse_ray import _native as n\n\
                 b = n.Build(n.Store(), {V:?})\n\
                 b.prepare()\n\
                 assert b.map([0, 1, 2]) == (3, 0)\n"
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("killed");
    let fault = [(
        "GATEHOUSE_RAY_FAULT_KILL_ONE_ACTOR".to_string(),
        marker.display().to_string(),
    )];
    let summary = ray_build(&python, project.path(), &fault, V);
    assert!(marker.exists(), "a map actor was killed");
    assert!(
        marker.with_extension("judge").exists(),
        "a judge's worker died"
    );
    assert_shuffled(&summary);
    let (mapped, reused) = (
        summary["mapped"].as_u64().unwrap(),
        summary["reused"].as_u64().unwrap(),
    );
    assert_eq!(
        mapped + reused,
        summary["objects"].as_u64().unwrap(),
        "{summary}"
    );
    assert!(
        reused >= 3,
        "the dead driver's fragments are reused: {summary}"
    );
    assert_eq!(
        summary["release_digest"], digest,
        "{summary}\n{SAME_COMMIT}"
    );
    assert_same_draft(&draft(&store, V), &single);
}

/// A gatehouse error ends the driver with `error: …` and its hint on stderr, exit 2, and
/// nothing on stdout; a bad version is refused before Ray starts.
#[test]
fn the_driver_reports_a_gatehouse_error_with_exit_2_and_no_summary() {
    let Some(python) = python() else { return };
    let project = project();
    std::fs::create_dir_all(project.path().join("store")).unwrap();
    let out = output_within(
        {
            let mut cmd = python_command(&python, project.path());
            cmd.args(["-m", "gatehouse_ray", "--num-cpus", "2", "build"])
                .args(["--release-version", "../v1"]);
            cmd
        },
        std::time::Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: invalid release version \"../v1\"\nhint: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no summary on stdout");
    // Ray warns on start-up that token authentication is on "for this Ray cluster".
    assert!(!stderr.contains("Ray cluster"), "refused before Ray starts");
}
