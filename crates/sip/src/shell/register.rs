//! REGISTER handling: the digest check, its throttle, and the bindings of the phones.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, Request, StatusCode, Transport};
use rsipstack::transaction::Transaction;
use secourir_config::SIP_REALM;
use secourir_core::AgentId;
use secourir_throttle::{Lockout, Verdict};
use tracing::{info, warn};

use super::{Sip, SipEvent, lock, now_s, status};
use crate::digest::{self, NonceCheck};
use crate::registrar::{Binding, Over};

impl Sip {
    /// Takes in a phone registered on another node of the cluster, so that this node can
    /// ring it directly; an expiry in the past removes it.
    pub fn bind(&self, agent: AgentId, binding: Binding) {
        let mut registrar = lock(&self.inner.registrar);
        let now = now_s();
        let expires = binding.expires_at_s.saturating_sub(now);
        // Another node's TCP or TLS connection cannot be borrowed: the phone is reached at its
        // Contact.
        registrar.register(
            agent.0 as usize,
            binding.contact,
            binding.source,
            Over::Udp,
            expires,
            now,
        );
    }

    /// Phones registered now.
    pub fn registered(&self) -> usize {
        lock(&self.inner.registrar).live(now_s())
    }

    /// Whether this call-taker's phone is registered.
    pub fn is_registered(&self, agent: AgentId) -> bool {
        lock(&self.inner.registrar)
            .lookup(agent.0 as usize, now_s())
            .is_some()
    }

    pub(super) async fn on_register(&self, tx: &mut Transaction) -> rsipstack::Result<()> {
        let request = &tx.original;
        let Some(login) = to_user(request) else {
            return tx.reply(status(400, "Bad Request - no user in To")).await;
        };
        let from = self.source_of(tx).ip();
        // An unknown login is answered exactly as a wrong password, after the same work: the
        // answers tell nobody which logins exist.
        let account = self.inner.plan.call_taker(&login);
        let now = now_s();
        let authorization = request
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case("Authorization"))
            .map(|h| h.value().to_owned());
        let answer = authorization
            .as_deref()
            .and_then(digest::parse_authorization);
        let algorithm = answer
            .as_ref()
            .and_then(|a| a.algorithm())
            .unwrap_or(digest::Algorithm::Md5);
        let stored = account.and_then(|(_, t)| match algorithm {
            digest::Algorithm::Md5 => t.sip_ha1.clone(),
            digest::Algorithm::Sha256 => t.sip_ha1_sha256.clone(),
        });
        let known = stored.is_some();
        let ha1 = stored
            .unwrap_or_else(|| digest::ha1_with(algorithm, &login, SIP_REALM, "\u{0}no account"));
        // An answer is only checked at the pace the throttle allows this login from this
        // source: wrong answers from elsewhere never hold back a phone from where it registered.
        let held = match answer {
            Some(_) => {
                lock(&self.inner.throttle).check(&login, Some(from), std::time::Instant::now())
            }
            None => Verdict::Try,
        };
        if let Verdict::Wait(wait) = held {
            return tx
                .reply_with(
                    status(503, "Service Unavailable - too many failed attempts"),
                    vec![make_header(
                        "Retry-After",
                        wait.as_secs().max(1).to_string(),
                    )],
                    None,
                )
                .await;
        }
        let mut failed = false;
        let verdict = match &answer {
            None => Err(false),
            Some(a) if a.username != login || a.realm != SIP_REALM => Err(false),
            Some(a) => match self.inner.nonces.check(&a.nonce, now, from) {
                NonceCheck::Forged => Err(false),
                NonceCheck::Stale => Err(true),
                NonceCheck::Fresh if !digest::verify(a, &ha1, "REGISTER") || !known => {
                    warn!(%login, "REGISTER refused: unknown login or wrong password");
                    failed = true;
                    Err(false)
                }
                NonceCheck::Fresh
                    if !lock(&self.inner.counts).take(
                        &a.nonce,
                        a.nc.as_deref().unwrap_or(""),
                        now,
                    ) =>
                {
                    warn!(%login, %from, "REGISTER refused: an answer already used (replayed)");
                    failed = true;
                    Err(false)
                }
                NonceCheck::Fresh => Ok(()),
            },
        };
        let locked = {
            let mut throttle = lock(&self.inner.throttle);
            let at = std::time::Instant::now();
            if failed {
                throttle.failed(&login, Some(from), at)
            } else {
                if verdict.is_ok() {
                    // From now on, wrong answers from elsewhere cannot hold this phone back.
                    throttle.succeeded(&login, Some(from), at);
                }
                Vec::new()
            }
        };
        for lockout in locked {
            let what = match lockout {
                Lockout::LoginFrom { login, source } => format!(
                    "enregistrements du téléphone de {login} depuis {source} bloqués 15 min après des réponses fausses"
                ),
                Lockout::Source(ip) => format!(
                    "enregistrements de téléphones depuis {ip} bloqués 15 min après des réponses fausses"
                ),
                Lockout::LoginFromUnknown(login) => format!(
                    "enregistrements du téléphone de {login} depuis des adresses inconnues bloqués 15 min après des réponses fausses"
                ),
            };
            warn!(%what, "phone registration locked out");
            self.notify(SipEvent::LockedOut { what }).await;
        }
        let (Ok(()), Some((index, _))) = (verdict, account) else {
            let stale = verdict == Err(true);
            let nonce = self.inner.nonces.issue(now, from);
            let challenges = self
                .inner
                .offered
                .iter()
                .map(|a| {
                    make_header(
                        "WWW-Authenticate",
                        digest::challenge(*a, SIP_REALM, &nonce, stale),
                    )
                })
                .collect();
            return tx
                .reply_with(status(401, "Unauthorized"), challenges, None)
                .await;
        };
        let contact = request
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case("Contact"))
            .map(|h| h.value().to_owned());
        let Some(contact) = contact else {
            // A REGISTER without Contact asks for the current bindings (RFC 3261 §10.2.3).
            return tx.reply(StatusCode::OK).await;
        };
        let wildcard = contact.trim() == "*";
        let expires = contact_expires(&contact)
            .or_else(|| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name().eq_ignore_ascii_case("Expires"))
                    .and_then(|h| h.value().trim().parse().ok())
            })
            .unwrap_or(3600);
        let uri = contact_uri(&contact);
        let source = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok());
        let over = match tx.connection.as_ref().map(|c| c.get_addr().r#type) {
            Some(Some(Transport::Tls)) => Over::Tls,
            Some(Some(Transport::Tcp)) => Over::Tcp,
            _ => Over::Udp,
        };
        let (Some(uri), Some(source)) = (uri, source) else {
            if wildcard {
                lock(&self.inner.registrar).register(
                    index,
                    String::new(),
                    self.inner.local,
                    Over::Udp,
                    0,
                    now,
                );
                self.notify(SipEvent::Unregistered {
                    agent: AgentId(index as u32),
                })
                .await;
                return tx.reply(StatusCode::OK).await;
            }
            return tx
                .reply(status(400, "Bad Request - unreadable Contact"))
                .await;
        };
        let granted =
            lock(&self.inner.registrar).register(index, uri.clone(), source, over, expires, now);
        let agent = AgentId(index as u32);
        if granted == 0 {
            info!(%login, "phone unregistered");
            self.notify(SipEvent::Unregistered { agent }).await;
            return tx.reply(StatusCode::OK).await;
        }
        info!(%login, %source, expires = granted, "phone registered");
        let binding = lock(&self.inner.registrar).lookup(index, now).cloned();
        if let Some(binding) = binding {
            self.notify(SipEvent::Registered { agent, binding }).await;
        }
        tx.reply_with(
            StatusCode::OK,
            vec![
                make_header("Contact", format!("<{uri}>;expires={granted}")),
                make_header("Expires", granted.to_string()),
            ],
            None,
        )
        .await
    }
}

fn to_user(request: &Request) -> Option<String> {
    let to = request
        .headers
        .iter()
        .find(|h| matches!(h, Header::To(_)))?
        .value()
        .to_owned();
    let inner = match (to.find('<'), to.find('>')) {
        (Some(a), Some(b)) if a < b => to[a + 1..b].to_owned(),
        _ => to.split(';').next().unwrap_or(&to).to_owned(),
    };
    let rest = inner.split_once(':').map_or(inner.as_str(), |(_, r)| r);
    let user = rest.split(['@', ';']).next()?.trim();
    (!user.is_empty()).then(|| user.to_owned())
}

fn contact_uri(contact: &str) -> Option<String> {
    let contact = contact.split(',').next()?.trim();
    let uri = match (contact.find('<'), contact.find('>')) {
        (Some(a), Some(b)) if a < b => &contact[a + 1..b],
        _ => contact.split(';').next()?,
    };
    let uri = uri.trim();
    (uri.starts_with("sip:") || uri.starts_with("sips:")).then(|| uri.to_owned())
}

fn contact_expires(contact: &str) -> Option<u64> {
    let params = match contact.find('>') {
        Some(i) => &contact[i + 1..],
        None => contact,
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_read() {
        assert_eq!(
            contact_uri("\"ota\" <sip:ota-13-1@127.0.0.1:5071;transport=udp>;expires=60")
                .as_deref(),
            Some("sip:ota-13-1@127.0.0.1:5071;transport=udp")
        );
        assert_eq!(contact_expires("<sip:a@b>;expires=60"), Some(60));
        assert_eq!(contact_expires("<sip:a@b;expires=9>"), None);
        assert_eq!(contact_uri("sip:a@b;expires=3").as_deref(), Some("sip:a@b"));
        assert_eq!(contact_uri("*"), None);
    }
}
