//! Sessions: a random id in an HttpOnly, SameSite=Strict cookie, a CSRF token per session,
//! and expiry after an idle time and a maximum age. Sessions live in memory only: a restart
//! signs everybody out (their saved work is in the store).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

pub const COOKIE: &str = "gatehouse_review";

/// Sessions one reviewer may hold at once (browsers, devices); a new sign-in past this ends
/// their least recently used one. Signing in again and again cannot grow the map.
pub const MAX_PER_REVIEWER: usize = 8;
/// Sessions the app holds at once; past this a sign-in ends the least recently used session.
pub const MAX_TOTAL: usize = 10_000;
pub const CLEAR_COOKIE: &str = "gatehouse_review=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";

/// When sessions end.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Ends this long after sign-in, however active.
    pub max_age: Duration,
    /// Adds `Secure` to the cookie (set it when the app is served over HTTPS).
    pub secure_cookie: bool,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60 * 60),
            max_age: Duration::from_secs(12 * 3600),
            secure_cookie: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub reviewer_id: String,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    policy: SessionPolicy,
    live: Mutex<HashMap<String, Session>>,
}

fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Starts a session; returns its id (the cookie's value).
    pub fn create(&self, reviewer_id: &str) -> Result<String, getrandom::Error> {
        let id = random_hex(32)?;
        let now = Instant::now();
        let s = Session {
            id: id.clone(),
            reviewer_id: reviewer_id.to_string(),
            csrf: random_hex(32)?,
            created: now,
            last_seen: now,
        };
        let mut live = crate::app::lock(&self.live);
        // Expired sessions are dropped here, so the map stays as small as the live ones,
        // and bounded: per reviewer and in all, the least recently used session gives way.
        let policy = self.policy;
        live.retain(|_, s| !expired(&policy, s, now));
        let least_recent = |live: &HashMap<String, Session>, of: Option<&str>| {
            live.values()
                .filter(|s| of.is_none_or(|r| s.reviewer_id == r))
                .min_by_key(|s| (s.last_seen, s.created))
                .map(|s| s.id.clone())
        };
        while live
            .values()
            .filter(|s| s.reviewer_id == reviewer_id)
            .count()
            >= MAX_PER_REVIEWER
        {
            match least_recent(&live, Some(reviewer_id)) {
                Some(old) => live.remove(&old),
                None => break,
            };
        }
        while live.len() >= MAX_TOTAL {
            match least_recent(&live, None) {
                Some(old) => live.remove(&old),
                None => break,
            };
        }
        live.insert(id.clone(), s);
        Ok(id)
    }

    /// The live session with this id (refreshing its idle time), or none.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut live = crate::app::lock(&self.live);
        let s = live.get_mut(id)?;
        if expired(&self.policy, s, now) {
            live.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        crate::app::lock(&self.live).remove(id);
    }
}

fn expired(p: &SessionPolicy, s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) > p.idle || now.duration_since(s.created) > p.max_age
}

/// The session id from the request's cookie.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn set_cookie(id: &str, policy: &SessionPolicy) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        policy.max_age.as_secs(),
        if policy.secure_cookie { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle() {
        let s = Sessions::new(SessionPolicy {
            idle: Duration::from_millis(30),
            max_age: Duration::from_secs(60),
            secure_cookie: false,
        });
        let id = s.create("rv-1").unwrap();
        assert_eq!(s.get(&id).unwrap().reviewer_id, "rv-1");
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn sessions_end_at_their_maximum_age_even_when_active() {
        let s = Sessions::new(SessionPolicy {
            idle: Duration::from_secs(60),
            max_age: Duration::from_millis(50),
            secure_cookie: false,
        });
        let id = s.create("rv-1").unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(10));
            assert!(s.get(&id).is_some());
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn sign_ins_cannot_grow_the_sessions_without_bound() {
        let s = Sessions::new(SessionPolicy::default());
        let first = s.create("rv-1").unwrap();
        for _ in 0..50_000 {
            s.create("rv-1").unwrap();
        }
        assert_eq!(crate::app::lock(&s.live).len(), MAX_PER_REVIEWER);
        assert!(
            s.get(&first).is_none(),
            "the least recently used session gave way"
        );
        let kept = s.create("rv-2").unwrap();
        for i in 0..(MAX_TOTAL + 10) {
            s.create(&format!("rv-x{i}")).unwrap();
        }
        assert_eq!(crate::app::lock(&s.live).len(), MAX_TOTAL);
        assert!(s.get(&kept).is_none());
    }

    #[test]
    fn the_cookie_is_parsed_strictly() {
        let mut h = HeaderMap::new();
        let id = "ab".repeat(32);
        h.insert(
            header::COOKIE,
            format!("x=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(cookie(&h).as_deref(), Some(id.as_str()));
        h.insert(header::COOKIE, format!("{COOKIE}=../x").parse().unwrap());
        assert!(cookie(&h).is_none());
        let c = set_cookie(&id, &SessionPolicy::default());
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }
}
