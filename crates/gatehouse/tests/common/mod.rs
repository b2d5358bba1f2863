//! Shared by the command-line test suites: a scratch project around a copy of the sample
//! store, and a finished run of the binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
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
        Self::in_dir(tempfile::tempdir().unwrap())
    }

    /// A project at a fixed path, emptied first: for outputs that name the store's root.
    pub fn at(path: &Path) -> Self {
        if path.exists() {
            std::fs::remove_dir_all(path).unwrap();
        }
        std::fs::create_dir_all(path).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("project")
            .rand_bytes(0)
            .tempdir_in(path)
            .unwrap();
        Self::in_dir(dir)
    }

    fn in_dir(dir: tempfile::TempDir) -> Self {
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

    /// Writes gatehouse.toml with `extra` (TOML) first. Unless `extra` has a `[qa]` table,
    /// operator-attested reviews count: most suites import their reviewers' files unsigned.
    pub fn write_config(&self, extra: &str) {
        let qa = if extra.contains("[qa]") {
            ""
        } else {
            "[qa]\ncount_attested = true\n"
        };
        std::fs::write(
            self.path().join("gatehouse.toml"),
            format!(
                "registry = \"registry.toml\"\n{extra}\n[store]\nbackend = \"local\"\nlocal_path = \"store\"\n{qa}{SAMPLE_RANGES}"
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

    /// Copies the project's store into `bucket` on an S3 server, with the library.
    pub fn upload_to(&self, s3: &gatehouse_test::TestS3, bucket: &str) {
        let env: std::collections::BTreeMap<_, _> = s3.env(bucket).into_iter().collect();
        let store = gatehouse_core::store::Store::open(
            &gatehouse_core::config::store_from_env(&env).unwrap(),
        )
        .unwrap();
        gatehouse_test::for_each_file(&self.path().join("store"), &mut |k, b| {
            store.put(k, b).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .unwrap();
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

/// `gatehouse qa serve` running on a free loopback port; its log (stderr) goes to a file.
/// Killed on drop.
pub struct Server {
    child: std::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    pub fn start(p: &Project, version: &str) -> Self {
        Self::start_with(p, version, &[])
    }

    /// With extra `qa serve` arguments.
    pub fn start_with(p: &Project, version: &str, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let log = p.path().join("serve.log");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("gatehouse"))
            .current_dir(p.path())
            .env_clear()
            .args([
                "qa",
                "serve",
                "--release-version",
                version,
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "no address in {line:?}; log: {:?}",
                    std::fs::read_to_string(&log)
                )
            })
            .trim_end_matches(';')
            .to_string();
        Self { child, base, log }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and returns its whole log.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An invited reviewer.
pub struct Invite {
    pub id: String,
    pub token: String,
    pub link_path: String,
}

pub fn invite(p: &Project, version: &str, name: &str, role: &str, max: Option<usize>) -> Invite {
    let mut args = vec![
        "qa".to_string(),
        "invite".into(),
        "--release-version".into(),
        version.into(),
        "--name".into(),
        name.into(),
        "--role".into(),
        role.into(),
        "--json".into(),
    ];
    if let Some(m) = max {
        args.extend(["--max-samples".into(), m.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = p.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let link = v["link"].as_str().unwrap();
    Invite {
        id: v["reviewer_id"].as_str().unwrap().to_string(),
        token: v["token"].as_str().unwrap().to_string(),
        link_path: link[link.find("/login").unwrap()..].to_string(),
    }
}

/// Every message text of the review packets (what must never reach a log).
pub fn packet_texts(p: &Project, version: &str) -> Vec<String> {
    let path = p.path().join(format!(
        "store/exports/releases/{version}/qa/qa_samples.json"
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for s in v["samples"].as_array().unwrap() {
        for m in s["record"]["messages"].as_array().unwrap() {
            out.push(m["content"].as_str().unwrap().to_string());
        }
    }
    out
}

/// Asserts no piece (24 characters or the whole, if shorter) of any text is in `log`.
pub fn assert_no_text_in(log: &str, texts: &[String]) {
    for t in texts {
        let chars: Vec<char> = t.chars().collect();
        if chars.len() < 16 {
            continue;
        }
        for w in chars.chunks(24) {
            let piece: String = w.iter().collect();
            if piece.trim().len() >= 16 {
                assert!(!log.contains(&piece), "message text in the server log");
            }
        }
    }
}

/// The default rubric criteria per review type.
pub fn criteria() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        (
            "clinician_foundation",
            vec![
                "therapeutic_accuracy",
                "clinical_appropriateness",
                "empathy_warmth",
                "boundary_maintenance",
                "cultural_sensitivity",
            ],
        ),
        (
            "clinician_edge",
            vec![
                "crisis_handling",
                "safety_prioritization",
                "de_escalation",
                "resource_referral",
            ],
        ),
        (
            "bias_cultural",
            vec![
                "demographic_bias",
                "cultural_competency",
                "inclusive_language",
                "stereotype_avoidance",
                "accessibility_awareness",
            ],
        ),
    ])
}

/// Whether the packets of `version` hold a privacy spot-check sample (the gates ran first).
pub fn has_spot_check(p: &Project, version: &str) -> bool {
    let path = p.path().join(format!(
        "store/exports/releases/{version}/qa/qa_samples.json"
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["privacy_spot_check"]["size"].as_u64().unwrap_or(0) > 0
}

/// Invites as many reviewers per type as the rubrics need, and a privacy spot-checker when
/// the packets hold a spot-check sample: type → reviewer ids.
pub fn invite_team(p: &Project, version: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut team: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut members = vec![
        ("Dr A", "clinician-foundation", "clinician_foundation"),
        ("Dr B", "clinician-foundation", "clinician_foundation"),
        ("Dr C", "clinician-edge", "clinician_edge"),
        ("Dr D", "clinician-edge", "clinician_edge"),
        ("Rev E", "bias-cultural", "bias_cultural"),
    ];
    if has_spot_check(p, version) {
        members.push(("Priv F", "privacy-spot-check", "privacy_spot_check"));
    }
    for (name, role, t) in members {
        team.entry(t)
            .or_default()
            .push(invite(p, version, name, role, None).id);
    }
    team
}

/// Fills `qa/review_template.csv` as a review team would: every sample scored 9 by as many
/// reviewers as its type needs, every spot-check record found without identifier left;
/// `flag` flags the first sample of bias_cultural review.
pub fn filled_csv(
    p: &Project,
    version: &str,
    team: &BTreeMap<&'static str, Vec<String>>,
    flag: bool,
) -> String {
    let template = std::fs::read_to_string(p.path().join(format!(
        "store/exports/releases/{version}/qa/review_template.csv"
    )))
    .unwrap();
    let mut lines = template.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let crit = criteria();
    let mut out = vec![header.join(",")];
    let mut flagged = false;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let t = cells[2];
        for r in &team[t] {
            let row: Vec<String> = header
                .iter()
                .zip(&cells)
                .map(|(h, c)| match *h {
                    "reviewer" => r.clone(),
                    "flag" if flag && t == "bias_cultural" && !flagged => {
                        flagged = true;
                        "remove: stereotyping".to_string()
                    }
                    "identifiers_left" if t == "privacy_spot_check" => "none".to_string(),
                    h if crit.get(t).is_some_and(|c| c.contains(&h)) => "9".to_string(),
                    _ => (*c).to_string(),
                })
                .collect();
            out.push(row.join(","));
        }
    }
    out.join("\n") + "\n"
}

/// Signs off `version` as a review team would, offline: five reviewers invited, the review
/// template filled with passing scores, imported, and the signoff computed.
pub fn sign_off(p: &Project, version: &str) {
    let team = invite_team(p, version);
    std::fs::write(
        p.path().join("reviews.csv"),
        filled_csv(p, version, &team, false),
    )
    .unwrap();
    let r = p.run(&["qa", "import", "reviews.csv", "--release-version", version]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.run(&["qa", "signoff", "--release-version", version]);
    assert_eq!(r.code, 0, "{r:?}");
}
