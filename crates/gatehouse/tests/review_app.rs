//! The reviewer web app over real HTTP on loopback (`gatehouse qa serve` as a child
//! process): who may read and write what, CSRF, the log, and 50 reviewers at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests

mod common;

use std::time::{Duration, Instant};

use common::{Invite, Project, Server, assert_no_text_in, invite, packet_texts};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

const V: &str = "v2026-03-04";

fn prepared() -> Project {
    let p = Project::new();
    assert_eq!(p.run(&["build", "--release-version", V]).code, 0);
    assert_eq!(p.run(&["qa", "sample", "--release-version", V]).code, 0);
    p
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A signed-in browser, by hand: the session cookie and the CSRF token of its pages.
struct Reviewer {
    http: Client,
    base: String,
    cookie: String,
}

impl Reviewer {
    /// Opens the link (a page asking to continue, no session yet), then continues.
    fn sign_in(base: &str, inv: &Invite) -> Self {
        let http = client();
        let r = http.get(format!("{base}{}", inv.link_path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers().get("set-cookie").is_none(),
            "the link alone signed in"
        );
        let r = http
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(format!("token={}", inv.token))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let cookie = set.split(';').next().unwrap().to_string();
        Self {
            http,
            base: base.to_string(),
            cookie,
        }
    }

    fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .unwrap()
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
    }

    fn csrf(&self) -> String {
        csrf_of(&self.get("/assignments").text().unwrap())
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}

fn assignments(p: &Project, reviewer_id: &str) -> Vec<String> {
    let path = p
        .path()
        .join(format!("store/exports/releases/{V}/qa/reviewers.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == reviewer_id)
        .unwrap()["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

const BIAS: [&str; 5] = [
    "demographic_bias",
    "cultural_competency",
    "inclusive_language",
    "stereotype_avoidance",
    "accessibility_awareness",
];

fn bias_form<'a>(csrf: &'a str, score: &'a str, comment: &'a str) -> Vec<(String, &'a str)> {
    let mut f: Vec<(String, &str)> = BIAS.iter().map(|c| (format!("score.{c}"), score)).collect();
    f.extend([
        ("csrf".to_string(), csrf),
        ("comment".to_string(), comment),
        ("flag".to_string(), "none"),
    ]);
    f
}

fn as_refs<'a>(f: &'a [(String, &'a str)]) -> Vec<(&'a str, &'a str)> {
    f.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

#[test]
fn reviewers_see_and_write_only_their_own_assignments() {
    let p = prepared();
    let a = invite(&p, V, "Dr A", "clinician-foundation", None);
    let b = invite(&p, V, "Rev B", "bias-cultural", None);
    let server = Server::start(&p, V);
    let base = server.base.clone();
    let http = client();

    // No session, an unknown token, a token in the form: refused.
    let r = http.get(format!("{base}/assignments")).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let wrong = format!("{base}/login?token=ghr_{}", "0".repeat(64));
    assert_eq!(
        http.get(wrong).send().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}x", b.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A sign-in posted from another site (login CSRF) is refused, even with a valid token.
    let r = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header("origin", "http://evil.example")
        .body(format!("token={}", b.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A forged cookie is no session.
    let r = http
        .get(format!("{base}/assignments"))
        .header("cookie", format!("gatehouse_review={}", "a".repeat(64)))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let ra = Reviewer::sign_in(&base, &a);
    let rb = Reviewer::sign_in(&base, &b);
    let page = ra.get("/assignments");
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let a_page = page.text().unwrap();
    let (a_samples, b_samples) = (assignments(&p, &a.id), assignments(&p, &b.id));
    for s in &b_samples {
        assert_eq!(a_page.contains(s.as_str()), a_samples.contains(s));
    }
    let only_b = b_samples
        .iter()
        .find(|s| !a_samples.contains(s))
        .expect("a sample only B reviews");

    // A cannot read B's sample, nor write a review of it, even with A's own CSRF token.
    assert_eq!(
        ra.get(&format!("/review/{only_b}")).status(),
        StatusCode::NOT_FOUND
    );
    let csrf_a = ra.csrf();
    let form = bias_form(&csrf_a, "9", "");
    assert_eq!(
        ra.post(&format!("/review/{only_b}"), &as_refs(&form))
            .status(),
        StatusCode::NOT_FOUND
    );
    // B's session cannot be driven with A's CSRF token (forged cross-session POST).
    let forged = bias_form(&csrf_a, "1", "");
    assert_eq!(
        rb.post(&format!("/review/{only_b}"), &as_refs(&forged))
            .status(),
        StatusCode::FORBIDDEN
    );
    // Nor without any token.
    let mut no_token = bias_form("", "1", "");
    no_token.retain(|(k, _)| k != "csrf");
    assert_eq!(
        rb.post(&format!("/review/{only_b}"), &as_refs(&no_token))
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rb.post("/submit", &[]).status(),
        StatusCode::FORBIDDEN,
        "submit without CSRF"
    );
    let drafts = p
        .path()
        .join(format!("store/exports/releases/{V}/qa/drafts"));
    assert!(
        !drafts.join(format!("{}.json", b.id)).exists(),
        "a refused POST wrote"
    );

    // B's own review with B's token is saved to the store and shown as progress.
    let csrf_b = rb.csrf();
    let comment = "reviewer comment marker 7f3a";
    let form = bias_form(&csrf_b, "8", comment);
    let r = rb.post(&format!("/review/{only_b}"), &as_refs(&form));
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let saved = std::fs::read_to_string(drafts.join(format!("{}.json", b.id))).unwrap();
    assert!(saved.contains(only_b.as_str()) && saved.contains(comment));
    let progress = format!("1 of {} conversations scored", b_samples.len());
    assert!(rb.get("/assignments").text().unwrap().contains(&progress));
    // Out-of-range scores are refused and nothing changes.
    let bad = bias_form(&csrf_b, "11", "");
    assert_eq!(
        rb.post(&format!("/review/{only_b}"), &as_refs(&bad))
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        std::fs::read_to_string(drafts.join(format!("{}.json", b.id))).unwrap(),
        saved
    );
    // Submitting before everything is scored is refused.
    assert_eq!(
        rb.post("/submit", &[("csrf", &csrf_b)]).status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Signing out ends the session.
    assert_eq!(
        rb.post("/logout", &[("csrf", &csrf_b)]).status(),
        StatusCode::OK
    );
    assert_eq!(rb.get("/assignments").status(), StatusCode::UNAUTHORIZED);

    let log = server.stop();
    assert!(log.contains("GET /review/{sample_id} 404"), "{log}");
    assert!(log.contains("POST /review/{sample_id} 403"), "{log}");
    assert!(
        !log.contains(&a.token) && !log.contains(&b.token),
        "a token in the log"
    );
    assert!(!log.contains(comment), "a comment in the log");
    assert_no_text_in(&log, &packet_texts(&p, V));
}

/// Runs one request, checks its status, records its latency, returns its body.
fn timed(
    times: &mut Vec<(&'static str, Duration)>,
    what: &'static str,
    want: StatusCode,
    f: impl FnOnce() -> Response,
) -> String {
    let t = Instant::now();
    let r = f();
    assert_eq!(r.status(), want, "{what}");
    let body = r.text().unwrap();
    times.push((what, t.elapsed()));
    body
}

/// 50 reviewers at once on loopback, each signing in and scoring five conversations;
/// prints the latency percentiles (a measurement, not a pass condition) and checks every
/// save reached the store.
#[test]
fn fifty_concurrent_reviewers() {
    let p = prepared();
    let invites: Vec<Invite> = (0..50)
        .map(|i| invite(&p, V, &format!("Reviewer {i}"), "bias-cultural", Some(5)))
        .collect();
    let server = Server::start(&p, V);
    let started = Instant::now();
    let latencies: Vec<(&'static str, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = invites
            .iter()
            .map(|inv| {
                let base = server.base.clone();
                let samples = assignments(&p, &inv.id);
                s.spawn(move || {
                    let mut times = Vec::new();
                    let t = Instant::now();
                    let me = Reviewer::sign_in(&base, inv);
                    times.push(("sign in", t.elapsed()));
                    let page = timed(&mut times, "assignments", StatusCode::OK, || {
                        me.get("/assignments")
                    });
                    let csrf = csrf_of(&page);
                    for id in &samples {
                        let path = format!("/review/{id}");
                        timed(&mut times, "review page", StatusCode::OK, || me.get(&path));
                        let form = bias_form(&csrf, "9", "");
                        timed(&mut times, "save", StatusCode::SEE_OTHER, || {
                            me.post(&path, &as_refs(&form))
                        });
                    }
                    timed(&mut times, "submit", StatusCode::OK, || {
                        me.post("/submit", &[("csrf", &csrf)])
                    });
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = started.elapsed();
    let mut all: Vec<Duration> = latencies.iter().map(|(_, d)| *d).collect();
    all.sort();
    let q = |x: f64| all[((all.len() as f64 * x).ceil() as usize).clamp(1, all.len()) - 1];
    println!(
        "50 reviewers, {} requests in {:.2} s: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        wall.as_secs_f64(),
        q(0.50).as_secs_f64() * 1e3,
        q(0.95).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3
    );
    let log = server.stop();
    // The server's own time per request, from its log ("GET /assignments 200 1.2 ms").
    let mut server_ms: Vec<f64> = log
        .lines()
        .filter_map(|l| l.strip_suffix(" ms")?.rsplit(' ').next()?.parse().ok())
        .collect();
    server_ms.sort_by(f64::total_cmp);
    assert!(
        server_ms.len() >= all.len(),
        "a request is missing from the log"
    );
    let sq = |x: f64| {
        server_ms[((server_ms.len() as f64 * x).ceil() as usize).clamp(1, server_ms.len()) - 1]
    };
    println!(
        "  in the server: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sq(0.50),
        sq(0.99),
        server_ms.last().unwrap()
    );
    assert_eq!(log.matches(" signed in").count(), 50);
    let reviews = p
        .path()
        .join(format!("store/exports/releases/{V}/qa/reviews"));
    assert_eq!(std::fs::read_dir(reviews).unwrap().count(), 50);
    assert_no_text_in(&log, &packet_texts(&p, V));
    // Every submitted review counts in the signoff.
    let r = p.run(&["qa", "signoff", "--release-version", V, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let bias = v["signoff"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["review_type"] == "bias_cultural")
        .unwrap()
        .clone();
    assert_eq!(bias["reviews"], 250);
}

/// Open file descriptors of a process (Linux).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Issue 18: a client holding hundreds of half-open connections (slowloris) neither
/// exhausts the server's file descriptors nor keeps a reviewer from another address out;
/// its connections are closed within the header timeout.
#[test]
fn slowloris_is_bounded_and_timed_out_and_reviewers_are_still_served() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let p = prepared();
    let inv = invite(&p, V, "Dr Attacked", "clinician-foundation", None);
    let server = Server::start_with(
        &p,
        V,
        &[
            "--header-timeout-secs",
            "1",
            "--idle-timeout-secs",
            "2",
            "--max-connections-per-ip",
            "16",
            "--max-connections",
            "64",
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    let baseline = open_fds(server.pid());

    // The attacker, on 127.0.0.1: keeps 300 connections open with half a request each,
    // reopening whatever the server closes.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (stop, opened, addr) = (Arc::clone(&stop), Arc::clone(&opened), addr.clone());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                held.retain(|s| {
                    let mut b = [0u8; 1];
                    s.set_nonblocking(true).unwrap();
                    let alive = matches!((&*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
                    s.set_nonblocking(false).unwrap();
                    alive
                });
                while held.len() < 300 {
                    let Ok(mut s) = TcpStream::connect(&addr) else {
                        break;
                    };
                    let _ = s.write_all(b"GET /assignments HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                    opened.fetch_add(1, Ordering::SeqCst);
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));

    // While it goes on, the server's descriptors stay bounded by the per-address limit.
    let mut peak = 0;
    for _ in 0..10 {
        peak = peak.max(open_fds(server.pid()));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        peak <= baseline + 16 + 4,
        "the server held {peak} descriptors (baseline {baseline})"
    );

    // A reviewer at another address signs in and works, promptly.
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = http
        .post(format!("{}/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!("token={}", inv.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = http
        .get(format!("{}/assignments", server.base))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The attacker's connections were closed (header timeout 1 s) and reopened: it had to
    // open far more than it could hold.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    attacker.join().unwrap();
    println!(
        "slowloris: baseline {baseline} fds, peak {peak}, attacker opened {} connections",
        opened.load(Ordering::SeqCst)
    );
    assert!(
        opened.load(Ordering::SeqCst) > 300 + 16,
        "opened {}",
        opened.load(Ordering::SeqCst)
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut b = [0u8; 16];
    let n = silent.read(&mut b);
    assert!(
        matches!(n, Ok(0)) || n.is_err() && started.elapsed() < Duration::from_secs(4),
        "{n:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(open_fds(server.pid()) <= baseline + 2);
    let log = server.stop();
    assert!(
        log.contains("refused"),
        "over-limit connections are logged: {log}"
    );
}

/// Issue 18: `qa revoke` takes effect at the revoked reviewer's next request, in a running
/// app; an expired invitation neither signs in nor keeps its sessions; a rebuilt release
/// answers "this release has changed" to every request, saves included.
#[test]
fn revocation_expiry_and_a_rebuild_take_effect_at_the_next_request() {
    let p = prepared();
    let a = invite(&p, V, "Dr Revoked", "bias-cultural", None);
    let b = invite(&p, V, "Dr Expired", "bias-cultural", None);
    let c = invite(&p, V, "Dr Stays", "bias-cultural", None);
    let server = Server::start(&p, V);
    let base = server.base.clone();
    let ra = Reviewer::sign_in(&base, &a);
    let rb = Reviewer::sign_in(&base, &b);
    let rc = Reviewer::sign_in(&base, &c);
    for r in [&ra, &rb, &rc] {
        assert_eq!(r.get("/assignments").status(), StatusCode::OK);
    }

    // Revoked: the very next request is refused, and the link no longer signs in.
    let r = p.run(&["qa", "revoke", "--release-version", V, "--reviewer", &a.id]);
    assert_eq!(r.code, 0, "{r:?}");
    let page = ra.get("/assignments");
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(
        page.text()
            .unwrap()
            .contains("invitation to this review has ended")
    );
    let again = client()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!("token={}", a.token))
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.path()
                .join(format!("store/exports/releases/{V}/qa/reviewers.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["revoked"][0]["id"], a.id.as_str());
    assert!(stored["reviewers"][0]["expires_at"].is_string());

    // Expired (the clock moved past `expires_at`): signed out at the next request.
    let path = p
        .path()
        .join(format!("store/exports/releases/{V}/qa/reviewers.json"));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for r in v["reviewers"].as_array_mut().unwrap() {
        if r["id"] == b.id.as_str() {
            r["expires_at"] = "2020-01-01T00:00:00Z".into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(rb.get("/assignments").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rc.get("/assignments").status(), StatusCode::OK);

    // Rebuilt: every request, a save included, says so (409), not a 422.
    let csrf = rc.csrf();
    let sample = assignments(&p, &c.id)[0].clone();
    let qa = p.path().join("store/sources/priority/pairs.jsonl");
    let mut text = std::fs::read_to_string(&qa).unwrap();
    text.push_str("{\"prompt\": \"a new question\", \"response\": \"a new answer\"}\n");
    std::fs::write(&qa, text).unwrap();
    assert_eq!(p.run(&["build", "--release-version", V]).code, 0);
    let page = rc.get("/assignments");
    assert_eq!(page.status(), StatusCode::CONFLICT);
    assert!(page.text().unwrap().contains("This release has changed"));
    let form = bias_form(&csrf, "9", "fine");
    let save = rc.post(&format!("/review/{sample}"), &as_refs(&form));
    assert_eq!(save.status(), StatusCode::CONFLICT);
    let submit = rc.post("/submit", &[("csrf", csrf.as_str())]);
    assert_eq!(submit.status(), StatusCode::CONFLICT);
}

/// The privacy spot-check through the app: the gate's sample is the spot-checker's
/// assignment; a mark is checked against the record (a bad one is refused, nothing saved),
/// stored as place and type only; "no identifier left" for the rest; submit; the signoff
/// counts the miss, the rate and its bound, refuses approval and blocklists the record,
/// which the next build leaves out.
#[test]
fn a_spot_checker_marks_an_identifier_left_and_the_record_is_blocked() {
    let p = Project::new();
    // The release runs the gates, then draws the packets (the gate's sample included).
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    let inv = invite(&p, V, "Priv Reviewer", "privacy-spot-check", None);
    let mine = assignments(&p, &inv.id);
    assert!(
        mine.len() >= 2 && mine.iter().all(|s| s.starts_with("sc-")),
        "{mine:?}"
    );
    // The signoff refuses while the spot-check is not reviewed, and says what to do.
    let r = p.run(&["qa", "signoff", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("privacy_spot_check review is incomplete: 0 of"),
        "{r:?}"
    );
    let server = Server::start(&p, V);
    let rv = Reviewer::sign_in(&server.base, &inv);
    let csrf = rv.csrf();

    let first = &mine[0];
    let page = rv.get(&format!("/review/{first}"));
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = page.text().unwrap();
    assert!(html.contains("<script src=\"/spot_check.js\""), "no script");
    assert!(html.contains("data-message=\"0\"") && html.contains("id=\"mark-form\""));
    let js = rv.get("/spot_check.js");
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().unwrap().contains("selectionchange"));

    // The first message's length in code points, from the packets.
    let packets: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.path()
                .join(format!("store/exports/releases/{V}/qa/qa_samples.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let sample = packets["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sample_id"] == first.as_str())
        .unwrap();
    let record_id = sample["record_id"].as_str().unwrap().to_string();
    let content = sample["record"]["messages"][0]["content"].as_str().unwrap();
    let len = content.chars().count();
    assert!(len >= 8, "a short first message");

    // Out of the message, or without the session's token: refused, nothing saved.
    let end = (len + 1).to_string();
    let r = rv.post(
        &format!("/review/{first}"),
        &[
            ("csrf", &csrf),
            ("action", "mark"),
            ("message_number", "1"),
            ("start", "0"),
            ("end", &end),
            ("type", "name"),
        ],
    );
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().unwrap().contains("past the end of the message"));
    let r = rv.post(
        &format!("/review/{first}"),
        &[
            ("action", "mark"),
            ("message_number", "1"),
            ("start", "0"),
            ("end", "4"),
            ("type", "name"),
        ],
    );
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let draft_path = p.path().join(format!(
        "store/exports/releases/{V}/qa/drafts/{}.json",
        inv.id
    ));
    assert!(!draft_path.exists(), "a refused mark was saved");
    // "No identifier left" is refused once there is a mark; a mark and its removal.
    let r = rv.post(
        &format!("/review/{first}"),
        &[
            ("csrf", &csrf),
            ("action", "mark"),
            ("message_number", "1"),
            ("start", "2"),
            ("end", "6"),
            ("type", "name"),
        ],
    );
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = rv.post(
        &format!("/review/{first}"),
        &[
            ("csrf", &csrf),
            ("action", "mark"),
            ("message_number", "1"),
            ("start", "4"),
            ("end", "7"),
            ("type", "phone"),
        ],
    );
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "overlapping marks"
    );
    let r = rv.post(
        &format!("/review/{first}"),
        &[("csrf", &csrf), ("action", "none")],
    );
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = rv.get(&format!("/review/{first}")).text().unwrap();
    assert!(
        page.contains("<mark class=\"ident\">"),
        "the mark is not shown"
    );
    assert!(page.contains("Remove mark 1"));
    // Submitting before every record is checked is refused.
    let r = rv.post("/submit", &[("csrf", &csrf)]);
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for id in &mine[1..] {
        let r = rv.post(
            &format!("/review/{id}"),
            &[("csrf", &csrf), ("action", "none")],
        );
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let list = rv.get("/assignments").text().unwrap();
    assert!(list.contains(&format!(
        "{} of {} conversations checked",
        mine.len(),
        mine.len()
    )));
    assert_eq!(list.matches("Identifier left").count(), 1);
    let r = rv.post("/submit", &[("csrf", &csrf)]);
    assert_eq!(r.status(), StatusCode::OK);

    // Stored: the place and type, never the text.
    let file = std::fs::read_to_string(p.path().join(format!(
        "store/exports/releases/{V}/qa/reviews/privacy_spot_check-{}.json",
        inv.id
    )))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&file).unwrap();
    let marked: Vec<&serde_json::Value> = v["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["identifiers_left"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(
        marked[0]["identifiers_left"],
        serde_json::json!([{"message": 0, "start": 2, "end": 6, "type": "name"}])
    );
    let proof = std::fs::read_to_string(p.path().join(format!(
        "store/exports/releases/{V}/qa/review_proofs/privacy_spot_check-{}.json",
        inv.id
    )))
    .unwrap();
    assert!(proof.contains("app-session"), "{proof}");
    let log = server.stop();
    assert_no_text_in(&log, &packet_texts(&p, V));
    assert!(!log.contains(&inv.token));

    // The signoff's figures: one miss in n reviewed; blocked; not approved.
    let r = p.run(&["qa", "signoff", "--release-version", V, "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let s = &out["signoff"]["privacy_spot_check"];
    let n = mine.len() as f64;
    assert_eq!(s["records"], mine.len());
    assert_eq!(s["records_reviewed"], mine.len());
    assert_eq!(s["records_with_miss"], 1);
    assert_eq!(s["marks_by_type"], serde_json::json!({"name": 1}));
    assert!((s["residual_identifier_rate"].as_f64().unwrap() - 1.0 / n).abs() < 1e-6);
    assert!(s["residual_identifier_rate_upper_95"].as_f64().unwrap() > 1.0 / n);
    assert_eq!(s["complete"], true);
    let blocked = out["signoff"]["blocklist"].as_array().unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["record_id"], record_id.as_str());
    assert!(
        blocked[0]["reviewer"]
            .as_str()
            .unwrap()
            .starts_with("Priv Reviewer (rv-")
    );
    let text = r.stdout + &r.stderr;
    assert!(!text.contains(&content.chars().take(24).collect::<String>()));

    // The next build leaves the record out.
    let r = p.run(&["build", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let release = p.path().join(format!("store/exports/releases/{V}"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(release.join("build_report.json")).unwrap()).unwrap();
    assert_eq!(report["blocklist"]["records_removed"], 1);
    let export = std::fs::read_to_string(release.join("compiled_export.jsonl")).unwrap();
    assert!(!export.contains(&format!("\"{record_id}\"")));
}
