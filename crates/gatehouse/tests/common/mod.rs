//! Shared by the command-line test suites: a scratch project around a copy of the sample
//! store, and a finished run of the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch project: `store/` (a copy of the sample store), `registry.toml`, `gatehouse.toml`.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        gatehouse_test::for_each_file(
            &repo_root().join("examples/sample-store"),
            &mut |key, bytes| {
                if key.starts_with("exports/") {
                    return Ok(());
                }
                let path = store.join(key);
                std::fs::create_dir_all(path.parent().unwrap())?;
                std::fs::write(path, bytes)?;
                Ok(())
            },
        )
        .unwrap();
        std::fs::copy(
            repo_root().join("examples/registry.toml"),
            dir.path().join("registry.toml"),
        )
        .unwrap();
        let p = Self { dir };
        p.write_config("");
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.path().join("gatehouse.toml"),
            format!(
                "registry = \"registry.toml\"\n{extra}\n[store]\nbackend = \"local\"\nlocal_path = \"store\"\n{SAMPLE_RANGES}"
            ),
        )
        .unwrap();
    }

    pub fn registry(&self) -> String {
        std::fs::read_to_string(self.path().join("registry.toml")).unwrap()
    }

    pub fn set_registry(&self, text: &str) {
        std::fs::write(self.path().join("registry.toml"), text).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("gatehouse").unwrap();
        c.current_dir(self.path()).env_clear();
        c
    }

    /// Runs with these environment variables set (on top of a cleared environment).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.output().unwrap())
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().unwrap())
    }

    pub fn exports_exist(&self) -> bool {
        self.path().join("store/exports").exists()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The sample's expected ranges, as in the repository's gatehouse.toml: its synthetic voice
/// and reasoning records fall outside the prototype's defaults.
pub const SAMPLE_RANGES: &str = "
[gates.distribution.ranges.voice_persona]
tokens_mean = [100, 800]
tokens_max = [200, 2000]
turns_mean = [1, 10]
turns_max = [1, 15]
[gates.distribution.ranges.cot_reasoning]
tokens_mean = [20, 1000]
tokens_max = [50, 3000]
turns_mean = [1, 10]
turns_max = [1, 20]
";

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
