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
        }
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
}

impl Web {
    pub(crate) fn new(plan: Arc<Plan>, snapshots: watch::Receiver<Arc<Snapshot>>) -> Web {
        Web {
            plan,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            snapshots,
            outlines: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The session named by the request's cookie, if alive.
    /// Opens a session; the token for its cookie.
    pub(crate) fn open(&self, session: Session) -> String {
        let token =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), session);
        token
    }

    /// Closes every session of this login.
    pub(crate) fn close(&self, login: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.login != login);
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
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.get(&token).cloned()
    }
}
