//! Who is signed in to the pages: the sessions behind the cookies, and what each may see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use secourir_config::{Plan, Role};
use tokio::sync::watch;

use crate::live::Snapshot;

/// A session lasts a shift and a half.
const SESSION_LIFETIME: Duration = Duration::from_secs(18 * 3600);
/// A session nobody used for this long is closed: a console left open keeps its own alive
/// (its live page counts), a browser closed without logging out does not.
const IDLE_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Sessions one login keeps open at most; logging in once more closes the oldest.
const SESSIONS_PER_LOGIN: usize = 8;
pub(crate) const COOKIE: &str = "secourir_session";

/// Who is logged in to a page.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) login: String,
    pub(crate) role: Role,
    pub(crate) cta: String,
    /// CTAs whose queues this person may see and pick from: their own and its partners.
    pub(crate) partners: Vec<String>,
    expires: Instant,
    last_seen: Instant,
}

impl Session {
    /// A session starting now.
    pub(crate) fn new(login: String, role: Role, cta: String, partners: Vec<String>) -> Session {
        Session {
            login,
            role,
            cta,
            partners,
            expires: Instant::now() + SESSION_LIFETIME,
            last_seen: Instant::now(),
        }
    }

    fn alive(&self, now: Instant) -> bool {
        self.expires > now && now.saturating_duration_since(self.last_seen) < IDLE_LIMIT
    }
}

/// The pages' shared state.
#[derive(Clone)]
pub(crate) struct Web {
    pub(crate) plan: Arc<Plan>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The territory's outlines, drawn once.
    pub(crate) outlines: Arc<std::sync::OnceLock<String>>,
    /// How often passwords may be tried.
    pub(crate) throttle: Arc<Mutex<secourir_throttle::Throttle>>,
    /// The last step of one-time code used by each login: a code is good once.
    pub(crate) codes_used: Arc<Mutex<HashMap<String, u64>>>,
    /// Counts the logouts, so that the live pages of a login signed out elsewhere stop at once.
    closings: Arc<watch::Sender<u64>>,
}

impl Web {
    pub(crate) fn new(plan: Arc<Plan>, snapshots: watch::Receiver<Arc<Snapshot>>) -> Web {
        Web {
            plan,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            snapshots,
            outlines: Arc::new(std::sync::OnceLock::new()),
            throttle: Arc::default(),
            codes_used: Arc::default(),
            closings: Arc::new(watch::channel(0).0),
        }
    }

    /// Changes at every logout: a live page then looks whether its own session is still open.
    pub(crate) fn closings(&self) -> watch::Receiver<u64> {
        self.closings.subscribe()
    }

    /// The session named by the request's cookie, if alive.
    /// Opens a session; the token for its cookie. A login keeps its latest
    /// `SESSIONS_PER_LOGIN` sessions (a console on each of a few screens), so that logging in
    /// again and again never grows the table.
    pub(crate) fn open(&self, session: Session) -> String {
        let token =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.alive(now));
        let mut own: Vec<(Instant, String)> = sessions
            .iter()
            .filter(|(_, s)| s.login == session.login)
            .map(|(t, s)| (s.expires, t.clone()))
            .collect();
        own.sort();
        let excess = (own.len() + 1).saturating_sub(SESSIONS_PER_LOGIN);
        for (_, old) in own.into_iter().take(excess) {
            sessions.remove(&old);
        }
        sessions.insert(token.clone(), session);
        token
    }

    /// Closes every session of this login.
    pub(crate) fn close(&self, login: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.login != login);
        self.closings.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                kv.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(str::to_owned)
            })?;
        self.session_at(&token, Instant::now())
    }

    /// The session of `token` at `now`, if alive; using it keeps it alive.
    fn session_at(&self, token: &str, now: Instant) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.alive(now));
        let session = sessions.get_mut(token)?;
        session.last_seen = now;
        Some(session.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_in_again_and_again_keeps_a_bounded_number_of_sessions() {
        let plan = secourir_config::fixtures::one_cta_plan("");
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let web = Web::new(plan, rx);
        let tokens: Vec<String> = (0..50)
            .map(|_| {
                web.open(Session::new(
                    "ota".into(),
                    Role::Ota,
                    "cta-13".into(),
                    Vec::new(),
                ))
            })
            .collect();
        let open = web.sessions.lock().map(|s| s.len()).unwrap_or(0);
        assert_eq!(open, SESSIONS_PER_LOGIN);
        let mut headers = HeaderMap::new();
        let cookie = format!("{COOKIE}={}", tokens[49]);
        headers.insert(header::COOKIE, cookie.parse().expect("header"));
        assert!(web.session(&headers).is_some(), "the latest session stays");
        let cookie = format!("{COOKIE}={}", tokens[0]);
        headers.insert(header::COOKIE, cookie.parse().expect("header"));
        assert!(web.session(&headers).is_none(), "the oldest is closed");
    }

    #[test]
    fn a_session_unused_for_half_an_hour_is_closed_and_one_in_use_is_not() {
        let plan = secourir_config::fixtures::one_cta_plan("");
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let web = Web::new(plan, rx);
        let session = |login: &str| Session::new(login.into(), Role::Ota, "cta-13".into(), vec![]);
        let used = web.open(session("used"));
        let idle = web.open(session("idle"));
        let t0 = Instant::now();
        // One is used every 20 minutes for three hours; the other never again.
        for step in 1..=9 {
            let now = t0 + Duration::from_secs(step * 20 * 60);
            assert!(
                web.session_at(&used, now).is_some(),
                "in use, closed at step {step}"
            );
        }
        assert!(
            web.session_at(&idle, t0 + Duration::from_secs(9 * 20 * 60))
                .is_none()
        );
    }
}
