//! A reviewer in a real browser: headless Chromium driven through ChromeDriver (W3C
//! WebDriver) against `gatehouse qa serve`. Invite → open the link → score → flag → submit
//! → `gatehouse qa signoff` counts exactly what was clicked.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run` installs them). Outside
//! CI the test is skipped, with a message, when they are missing; in CI (`CI` set) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Server, assert_no_text_in, invite, packet_texts};
use reqwest::blocking::Client;
use serde_json::{Value, json};

const V: &str = "v2026-04-05";
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/bin")])
            .map(|d| d.join(n))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// A ChromeDriver process and one browser session.
struct Browser {
    driver: Child,
    http: Client,
    url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Option<Self> {
        let (Some(driver), Some(chromium)) = (
            find_program(&["chromedriver"]),
            find_program(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium and chromedriver are required in CI"
            );
            eprintln!("skipped: install chromium and chromium-driver to run the browser test");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .body(caps.to_string())
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_string();
        Some(Self {
            driver: child,
            http,
            url: format!("{base}/session/{session}"),
            _profile: profile,
        })
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        let v: Value = req.send().unwrap().json().unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {method} {path}: {}",
            v["value"]["message"]
        );
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn title(&self) -> String {
        self.call("GET", "/title", Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits (up to 10 s) for the page whose title starts with `prefix`: a click that
    /// submits a form may return before the next page has loaded.
    fn wait_for(&self, prefix: &str) {
        let started = Instant::now();
        loop {
            let t = self.title();
            if t.starts_with(prefix) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "waited for {prefix:?}, the page is {t:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// With `GATEHOUSE_SCREENSHOTS=DIR`, saves the page as `DIR/{name}.png.base64` (for a
    /// person to look at; nothing is asserted about pixels).
    fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("GATEHOUSE_SCREENSHOTS") {
            let png = self.call("GET", "/screenshot", Value::Null);
            let path = std::path::Path::new(&dir).join(format!("{name}.png.base64"));
            std::fs::write(path, png.as_str().unwrap()).unwrap();
        }
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Waits until `css` matches `n` elements: after a click that reloads the page, the
    /// title can match before the new page has loaded.
    fn wait_for_count(&self, css: &str, n: usize) {
        let started = Instant::now();
        loop {
            let found = self.count(css);
            if found == n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "waited for {n} of {css:?}, found {found}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self, css: &str) -> usize {
        self.call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .unwrap()
        .len()
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.call("POST", &format!("/element/{el}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        );
    }

    fn text(&self, css: &str) -> String {
        let el = self.find(css);
        self.call("GET", &format!("/element/{el}/text"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.url).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const BIAS: [&str; 5] = [
    "demographic_bias",
    "cultural_competency",
    "inclusive_language",
    "stereotype_avoidance",
    "accessibility_awareness",
];

#[test]
fn a_reviewer_scores_flags_and_submits_in_a_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let p = Project::new();
    assert_eq!(p.run(&["build", "--release-version", V]).code, 0);
    assert_eq!(p.run(&["qa", "sample", "--release-version", V]).code, 0);
    let inv = invite(&p, V, "Browser Reviewer", "bias-cultural", Some(3));
    let server = Server::start(&p, V);

    // Without the link: the sign-in page.
    browser.goto(&format!("{}/assignments", server.base));
    browser.wait_for("Sign in");
    // The link asks to continue as the invited reviewer; then the token leaves the address
    // bar.
    browser.goto(&format!("{}{}", server.base, inv.link_path));
    browser.wait_for("Sign in");
    assert!(browser.text("main").contains("Browser Reviewer"));
    browser.click("#continue");
    browser.wait_for("Your assignments");
    let url = browser.call("GET", "/url", Value::Null);
    assert!(!url.as_str().unwrap().contains("token"), "{url}");
    assert_eq!(browser.count("a.review-link"), 3);

    browser.click("a.review-link");
    for n in 1..=3 {
        browser.wait_for(&format!("Conversation {n} of 3"));
        assert!(browser.count("ol.conversation li.msg") >= 1);
        for c in BIAS {
            browser.click(&format!("label[for='score-{c}-9']"));
        }
        if n == 1 {
            browser.click("label[for='flag-remove']");
            browser.type_into("#flag_reason", "stereotyping");
            browser.type_into("#comment", "needs removal");
            browser.screenshot("review");
        }
        browser.click("#save-next");
    }
    // After the last one: back to the list, everything scored, one flagged.
    browser.wait_for("Your assignments");
    assert!(browser.text("main").contains("3 of 3 conversations scored"));
    assert_eq!(browser.count(".badge.flag"), 1);
    browser.screenshot("assignments");
    // Coming back to a review shows what was saved.
    browser.click("a.review-link");
    browser.wait_for("Conversation 1 of 3");
    assert_eq!(browser.count("input#flag-remove:checked"), 1);
    assert_eq!(
        browser.count("input[type=radio][name^='score.']:checked"),
        BIAS.len()
    );
    browser.goto(&format!("{}/assignments", server.base));
    browser.click("#submit");
    browser.wait_for("Submitted");

    // The signoff counts exactly what was clicked: three reviews at 9, one flag.
    let r = p.run(&["qa", "signoff", "--release-version", V, "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let s = &v["signoff"];
    let bias = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["review_type"] == "bias_cultural")
        .unwrap();
    assert_eq!(bias["reviews"], 3);
    assert_eq!(bias["reviews_passing"], 3);
    assert_eq!(bias["mean_overall"], 9.0);
    let blocked = s["blocklist"].as_array().unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["flag"], "remove: stereotyping");
    assert!(
        blocked[0]["reviewer"]
            .as_str()
            .unwrap()
            .starts_with("Browser Reviewer (rv-")
    );
    assert_eq!(s["decision"], "not_approved");

    let log = server.stop();
    assert!(log.contains("POST /submit 200"), "{log}");
    assert!(!log.contains(&inv.token));
    assert_no_text_in(&log, &packet_texts(&p, V));
}

/// The privacy spot-check in a browser: the page's script turns a selection in a message
/// into the mark form's place (message, code-point offsets); the mark is saved, shown
/// highlighted, and counted by the signoff, which blocklists the record.
#[test]
fn a_spot_checker_marks_a_selection_in_a_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let p = Project::new();
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    let inv = invite(&p, V, "Browser Spotter", "privacy-spot-check", Some(2));
    let server = Server::start(&p, V);
    browser.goto(&format!("{}{}", server.base, inv.link_path));
    browser.wait_for("Sign in");
    browser.click("#continue");
    browser.wait_for("Your assignments");
    assert_eq!(browser.count("a.review-link"), 2);
    browser.click("a.review-link");
    browser.wait_for("Conversation 1 of 2");

    // Select characters 2..6 of the first message, as a mouse drag would.
    browser.call(
        "POST",
        "/execute/sync",
        json!({"script": "document.querySelectorAll('details').forEach(function (d) { d.open = true; });
            var t = document.querySelector('[data-message=\"0\"]').firstChild;
            var r = document.createRange(); r.setStart(t, 2); r.setEnd(t, 6);
            var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);", "args": []}),
    );
    let started = Instant::now();
    loop {
        let v = browser.call(
            "POST",
            "/execute/sync",
            json!({"script": "var f = document.getElementById('mark-form').elements; return [f.message_number.value, f.start.value, f.end.value];", "args": []}),
        );
        if v == json!(["1", "2", "6"]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the selection did not fill the form: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        browser
            .text("#selection-status")
            .contains("4 character(s) in message 1")
    );
    browser.click("#type option[value='name']");
    browser.screenshot("spot_check");
    browser.click("#add-mark");
    browser.wait_for_count("mark.ident", 1);
    browser.wait_for("Conversation 1 of 2");
    assert_eq!(browser.count("#marks tbody tr"), 1);
    assert_eq!(browser.count("#none-left"), 0);

    // The second: nothing left; then submit.
    browser.goto(&format!("{}/assignments", server.base));
    browser.wait_for("Your assignments");
    let second = browser.call(
        "POST",
        "/execute/sync",
        json!({"script": "return document.querySelectorAll('a.review-link')[1].getAttribute('href');", "args": []}),
    );
    browser.goto(&format!("{}{}", server.base, second.as_str().unwrap()));
    browser.wait_for("Conversation 2 of 2");
    browser.click("#none-left");
    browser.wait_for("Your assignments");
    assert!(
        browser
            .text("main")
            .contains("2 of 2 conversations checked")
    );
    browser.click("#submit");
    browser.wait_for("Submitted");

    let r = p.run(&["qa", "signoff", "--release-version", V, "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let s = &v["signoff"]["privacy_spot_check"];
    assert_eq!(s["records_reviewed"], 2);
    assert_eq!(s["records_with_miss"], 1);
    assert_eq!(s["marks_by_type"], json!({"name": 1}));
    assert_eq!(
        s["misses"][0]["marks"],
        json!([{"message": 0, "start": 2, "end": 6, "type": "name"}])
    );
    // Only two of the sample's records were assigned: incomplete, and blocked either way.
    assert_eq!(s["complete"], false);
    assert_eq!(v["signoff"]["blocklist"].as_array().unwrap().len(), 1);
    let log = server.stop();
    assert!(log.contains("POST /submit 200"), "{log}");
    assert_no_text_in(&log, &packet_texts(&p, V));
}
