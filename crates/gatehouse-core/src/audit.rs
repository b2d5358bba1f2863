//! The audit log: an append-only, hash-chained record of what a `release` run did.
//!
//! Every run of `gatehouse release` writes one JSON Lines object,
//! `{exports}/_gatehouse/audit/{version}/{started}-{run}.jsonl`. Each line is one event —
//! an object read, written, created or deleted (key, bytes, etag or sha256), a listing, a
//! stage starting, skipped or ending with its verdict, a waiver used, a signoff, the
//! publication — with the time, the run id and the actor. Never content: keys, digests,
//! counts and verdicts only.
//!
//! Each line carries `prev`, the sha256 of the line before it; the first line of a run
//! points at the last line of the version's previous run, so all runs of a version form one
//! chain. `gatehouse audit verify` recomputes it: an edited, inserted or deleted line breaks
//! it. A publication marker records the chain's head, so cutting the end of the log off a
//! published release is detected too. (A hash chain cannot stop someone who rewrites every
//! line after a change; the marker's anchor and the store's own access logs are what make
//! that visible.)
//!
//! The log is kept in memory and written to the store at every stage boundary and at the
//! end of the run (the same object, always a longer prefix), so a run killed mid-way leaves
//! its log up to the last completed stage.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::digest::sha256;
use crate::store::{Access, Store, StoreError, StoreObserver};

pub use crate::contract::publish::Head;

/// The `prev` of the very first line of a version's chain.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Key prefix of a version's audit logs, with trailing slash.
pub fn prefix(store: &Store, version: &str) -> String {
    crate::layout::audit_prefix(store.exports_prefix(), version)
}

/// What happened, as one line of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RunStart,
    RunEnd,
    StageStart,
    StageSkip,
    StageEnd,
    List,
    Read,
    Write,
    Create,
    Delete,
    Waiver,
    Signoff,
    Publish,
}

pub use crate::store::Event;

impl From<Access> for Action {
    fn from(a: Access) -> Self {
        match a {
            Access::List => Action::List,
            Access::Read => Action::Read,
            Access::Write => Action::Write,
            Access::Create => Action::Create,
            Access::Delete => Action::Delete,
        }
    }
}

/// The store's accesses become lines of the log.
impl StoreObserver for AuditLog {
    fn observe(&self, access: Access, event: Event) {
        self.record(access.into(), event);
    }
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    seq: u64,
    time: String,
    run: &'a str,
    actor: &'a str,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a Value>,
    prev: &'a str,
}

#[derive(Debug)]
struct State {
    /// The run's log so far: JSON lines, each ending in `\n`.
    text: Vec<u8>,
    seq: u64,
    head: String,
    stage: Option<&'static str>,
}

/// One run's audit log. Shared by every clone of the audited store (see
/// [`Store::observed_by`]); events from worker threads are ordered by a lock.
#[derive(Debug)]
pub struct AuditLog {
    /// The store without auditing, to write the log itself.
    store: Store,
    key: String,
    run: String,
    actor: String,
    state: Mutex<State>,
}

/// Who runs gatehouse: `GATEHOUSE_ACTOR`, else the login name, else `unknown`.
pub fn actor() -> String {
    crate::config::env::ACTOR
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl AuditLog {
    /// Starts the log of a new run of `command` on `version`, chained to the version's
    /// previous run. Reads the previous log's last line; writes nothing yet.
    pub fn start(store: &Store, version: &str, command: &str) -> Result<Self, AuditError> {
        let store = store.unobserved();
        let prefix = prefix(&store, version);
        let mut logs: Vec<String> = store
            .list(&prefix)
            .map(|o| o.map(|o| o.key))
            .collect::<Result<_, _>>()?;
        logs.sort();
        let (head, previous) = match logs.last() {
            Some(last) => {
                let bytes = store.get_bytes(last)?;
                let line = bytes
                    .split(|&b| b == b'\n')
                    .rfind(|l| !l.is_empty())
                    .ok_or_else(|| AuditError::Broken(format!("{last}: empty audit log")))?;
                (sha256(line), Some(last.clone()))
            }
            None => (GENESIS.to_string(), None),
        };
        let mut run = [0u8; 6];
        getrandom::fill(&mut run)
            .map_err(|e| AuditError::Broken(format!("no randomness for the run id: {e}")))?;
        let run = hex::encode(run);
        let started = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let log = Self {
            key: format!("{prefix}{started}-{run}.jsonl"),
            store,
            run,
            actor: actor(),
            state: Mutex::new(State {
                text: Vec::new(),
                seq: 0,
                head,
                stage: None,
            }),
        };
        log.record(
            Action::RunStart,
            Event::detail(serde_json::json!({
                "command": command,
                "release_version": version,
                "gatehouse": env!("CARGO_PKG_VERSION"),
                "git_commit": option_env!("GATEHOUSE_GIT_COMMIT").unwrap_or("unknown"),
                "previous_log": previous,
            })),
        );
        Ok(log)
    }

    /// The key this run's log is written to.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// Appends one event (in memory; [`AuditLog::flush`] writes it out).
    pub fn record(&self, action: Action, event: Event) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let line = Line {
            seq: s.seq,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            run: &self.run,
            actor: &self.actor,
            action,
            stage: s.stage,
            key: event.key.as_deref(),
            bytes: event.bytes,
            etag: event.etag.as_deref(),
            sha256: event.sha256.as_deref(),
            detail: event.detail.as_ref(),
            prev: &s.head,
        };
        // Serialising a struct of strings and numbers cannot fail.
        let text = serde_json::to_vec(&line).unwrap_or_default();
        s.head = sha256(&text);
        s.seq += 1;
        s.text.extend_from_slice(&text);
        s.text.push(b'\n');
    }

    /// Sets the stage later events belong to and records its start (with why it runs, when
    /// a reason is given).
    pub fn stage_start(&self, stage: &'static str, reason: &str) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).stage = Some(stage);
        let detail = (!reason.is_empty()).then(|| serde_json::json!({ "reason": reason }));
        self.record(
            Action::StageStart,
            Event {
                detail,
                ..Event::default()
            },
        );
    }

    /// The last line so far.
    pub fn head(&self) -> Head {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Head {
            log: self.key.clone(),
            seq: s.seq.saturating_sub(1),
            sha256: s.head.clone(),
        }
    }

    /// Writes the log so far to the store (replacing the shorter prefix written before).
    pub fn flush(&self) -> Result<(), StoreError> {
        let text = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .text
            .clone();
        self.store.put(&self.key, text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit log broken: {0}")]
    Broken(String),
}

impl AuditError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AuditError::Store(e) => e.hint(),
            AuditError::Broken(_) => Some(
                "the audit log was edited, truncated or lost; compare it with the store's access logs and backups".into(),
            ),
        }
    }
}

/// One run's log, as `audit verify` found it.
#[derive(Debug, Clone, Serialize)]
pub struct LogSummary {
    pub key: String,
    pub run: String,
    pub actor: String,
    pub events: u64,
    /// Whether the run ended (`run_end`); a run that was killed or lost its store has not.
    pub completed: bool,
    pub reads: u64,
    pub writes: u64,
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub release_version: String,
    pub logs: Vec<LogSummary>,
    pub events: u64,
    /// The publication marker's anchor, when the version is published.
    pub anchor: Option<Head>,
    /// Every break found, as `key:line: what`; empty when the chain is intact.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Recomputes the chain of every audit log of `version`, and checks the publication
/// marker's anchor when there is one.
pub fn verify(store: &Store, version: &str) -> Result<Verification, AuditError> {
    let prefix = prefix(store, version);
    let mut keys: Vec<String> = store
        .list(&prefix)
        .map(|o| o.map(|o| o.key))
        .collect::<Result<_, _>>()?;
    keys.sort();
    let marker_key = crate::layout::PUBLISHED_MARKER.at(&crate::layout::release_location(
        store.exports_prefix(),
        version,
    ));
    let anchor: Option<Head> = match store.get_bytes(&marker_key) {
        Ok(b) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| serde_json::from_value(v["audit_head"].clone()).ok()),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut v = Verification {
        release_version: version.to_string(),
        logs: Vec::new(),
        events: 0,
        anchor: anchor.clone(),
        problems: Vec::new(),
    };
    let mut expected_prev = GENESIS.to_string();
    let mut anchor_found = false;
    for key in &keys {
        let bytes = store.get_bytes(key)?;
        let mut summary = LogSummary {
            key: key.clone(),
            run: String::new(),
            actor: String::new(),
            events: 0,
            completed: false,
            reads: 0,
            writes: 0,
        };
        if !bytes.ends_with(b"\n") {
            v.problems
                .push(format!("{key}: does not end with a newline (cut short)"));
        }
        for (i, line) in bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let at = format!("{key}:{}", i + 1);
            let Ok(event) = serde_json::from_slice::<Value>(line) else {
                v.problems.push(format!("{at}: not a JSON object"));
                expected_prev = sha256(line);
                continue;
            };
            if event["prev"].as_str() != Some(expected_prev.as_str()) {
                v.problems.push(format!(
                    "{at}: chain broken: prev is {}, the line before hashes to {expected_prev}",
                    event["prev"].as_str().unwrap_or("missing")
                ));
            }
            if event["seq"].as_u64() != Some(summary.events) {
                v.problems.push(format!(
                    "{at}: seq {} where {} was expected (a line was inserted or removed)",
                    event["seq"], summary.events
                ));
            }
            let run = event["run"].as_str().unwrap_or_default();
            if summary.events == 0 {
                summary.run = run.to_string();
                summary.actor = event["actor"].as_str().unwrap_or_default().to_string();
                if event["action"] != "run_start" {
                    v.problems
                        .push(format!("{at}: the first event is not run_start"));
                }
            } else if run != summary.run {
                v.problems
                    .push(format!("{at}: run id changes inside one log"));
            }
            match event["action"].as_str() {
                Some("read") => summary.reads += 1,
                Some("write" | "create" | "delete") => summary.writes += 1,
                Some("run_end") => summary.completed = true,
                _ => {}
            }
            expected_prev = sha256(line);
            if let Some(a) = &anchor
                && a.log == *key
                && event["seq"].as_u64() == Some(a.seq)
            {
                anchor_found = true;
                if a.sha256 != expected_prev {
                    v.problems.push(format!(
                        "{at}: differs from the line the publication marker anchors ({})",
                        a.sha256
                    ));
                }
            }
            summary.events += 1;
        }
        v.events += summary.events;
        v.logs.push(summary);
    }
    if let Some(a) = &anchor
        && !anchor_found
    {
        v.problems.push(format!(
            "{}: the publication marker anchors line seq {} of {}, which is missing (the log was cut or deleted)",
            marker_key, a.seq, a.log
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with_events(store: &Store) -> String {
        let log = AuditLog::start(store, "v1", "release").unwrap();
        log.stage_start("build", "");
        log.record(Action::Write, Event::key("exports/releases/v1/a.json"));
        log.record(Action::RunEnd, Event::default());
        log.flush().unwrap();
        log.key().to_string()
    }

    #[test]
    fn runs_chain_and_verify() {
        let store = Store::memory();
        log_with_events(&store);
        std::thread::sleep(std::time::Duration::from_millis(5));
        log_with_events(&store);
        let v = verify(&store, "v1").unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        assert_eq!(v.logs.len(), 2);
        assert_eq!(v.events, 8);
        assert!(v.logs.iter().all(|l| l.completed && l.writes == 1));
    }

    #[test]
    fn an_edited_line_breaks_the_chain() {
        let store = Store::memory();
        let key = log_with_events(&store);
        let text = String::from_utf8(store.get_bytes(&key).unwrap().to_vec()).unwrap();
        let edited = text.replace("a.json", "b.json");
        assert_ne!(edited, text);
        store.put(&key, edited).unwrap();
        let v = verify(&store, "v1").unwrap();
        assert!(!v.intact());
        assert!(
            v.problems[0].contains(":4: chain broken"),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn a_removed_line_is_detected() {
        let store = Store::memory();
        let key = log_with_events(&store);
        let text = String::from_utf8(store.get_bytes(&key).unwrap().to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let cut = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        store.put(&key, cut).unwrap();
        let v = verify(&store, "v1").unwrap();
        assert!(!v.intact());
    }
}
