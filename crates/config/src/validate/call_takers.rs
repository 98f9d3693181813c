//! Call-takers' accounts: login, CTA, digest hashes, web password, role and second factor.

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::Checker;
use crate::plan::*;
use crate::raw::*;

pub(super) fn call_takers(
    raw: &RawConfig,
    cta_index: &HashMap<String, CtaId>,
    c: &mut Checker<'_>,
) -> Vec<CallTaker> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in &raw.call_takers {
        let t = t.get_ref();
        let login = t.login.get_ref();
        if login.is_empty()
            || !login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            c.at(
                t.login.span(),
                format!("login {login:?} must be letters, digits, '-', '_' or '.'"),
            );
            continue;
        }
        if !seen.insert(login.clone()) {
            c.at(
                t.login.span(),
                format!("call-taker {login:?} is defined twice"),
            );
            continue;
        }
        let Some(&cta) = cta_index.get(t.cta.get_ref()) else {
            c.at(t.cta.span(), format!("unknown CTA {:?}", t.cta.get_ref()));
            continue;
        };
        let Ok(ha1) = hex_hash(t.sip_ha1.as_ref(), 32, "sip_ha1", "MD5", c) else {
            continue;
        };
        let Ok(ha1_sha256) = hex_hash(
            t.sip_ha1_sha256.as_ref(),
            64,
            "sip_ha1_sha256",
            "SHA-256",
            c,
        ) else {
            continue;
        };
        let mut web_password = None;
        if let Some(w) = &t.web_password {
            if !w.get_ref().starts_with("$argon2") {
                c.at(
                    w.span(),
                    "web_password must be an argon2 hash ($argon2id$v=19$…), never a password",
                );
                continue;
            }
            web_password = Some(w.get_ref().clone());
        }
        let role = match t.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("ota") => Role::Ota,
            Some("chef_de_salle") => Role::ChefDeSalle,
            Some("admin") => Role::Admin,
            Some(other) => {
                let span = t.role.as_ref().map_or(t.login.span(), |r| r.span());
                c.at(
                    span,
                    format!("unknown role {other:?}: ota, chef_de_salle or admin"),
                );
                continue;
            }
        };
        let totp_secret = match &t.totp_secret {
            Some(secret) => {
                let text: String = secret
                    .get_ref()
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '=')
                    .collect::<String>()
                    .to_ascii_uppercase();
                match data_encoding::BASE32_NOPAD.decode(text.as_bytes()) {
                    Ok(bytes) if bytes.len() >= 16 => Some(bytes),
                    Ok(_) => {
                        c.at(
                            secret.span(),
                            "totp_secret must hold at least 128 bits (26 base32 characters)",
                        );
                        continue;
                    }
                    Err(_) => {
                        c.at(secret.span(), "totp_secret must be base32 (A-Z, 2-7)");
                        continue;
                    }
                }
            }
            None => None,
        };
        if role.supervises() && totp_secret.is_none() && web_password.is_some() {
            c.at(
                t.login.span(),
                format!(
                    "{login}: a {} signs in with a second factor: give it a totp_secret",
                    role.as_str()
                ),
            );
        }
        let preference = t.dequeue_preference.unwrap_or(3);
        if !(1..=5).contains(&preference) {
            c.at(t.login.span(), "dequeue_preference goes from 1 to 5");
        }
        out.push(CallTaker {
            login: login.clone(),
            name: t.name.clone(),
            cta,
            site: t.site,
            dequeue_preference: preference.clamp(1, 5),
            sip_ha1: ha1,
            sip_ha1_sha256: ha1_sha256,
            web_password,
            role,
            totp_secret,
        });
    }
    out
}

/// A digest HA1 as the configuration holds it: `digits` hexadecimal digits of the `algorithm`
/// hash of `login:secourir:password`, kept in lowercase; Err once the problem is noted.
fn hex_hash(
    value: Option<&Spanned<String>>,
    digits: usize,
    field: &str,
    algorithm: &str,
    c: &mut Checker<'_>,
) -> Result<Option<String>, ()> {
    let Some(h) = value else {
        return Ok(None);
    };
    let text = h.get_ref();
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        c.at(
            h.span(),
            format!(
                "{field} must be {digits} hexadecimal digits: {algorithm} of \"login:secourir:password\""
            ),
        );
        return Err(());
    }
    Ok(Some(text.to_ascii_lowercase()))
}
