//! The Hub Santé connection (`[hub]`) and the partners' client ids on it. The connection itself
//! is the hub crate's business; what is checked here is what would otherwise fail only when the
//! first case is shared, far from the file: a URL the AMQP client cannot read, a missing id.

use super::{Checker, line_column};
use crate::plan::*;
use crate::raw::*;

/// The hub's topic exchange, where every client publishes.
const DEFAULT_EXCHANGE: &str = "hubsante";

pub(super) fn hub(raw: &toml::Spanned<RawHub>, c: &mut Checker<'_>) -> HubSettings {
    let hub = raw.get_ref();
    let url = hub.url.get_ref();
    let parsed = amqp_url(url);
    if let Err(why) = &parsed {
        c.at(
            hub.url.span(),
            format!("url {url:?} is not an AMQP URL: {why}"),
        );
    }
    // The sender id is what precedes the first '_' of every distributionID: no '_' in it.
    check_client_id("client_id", &hub.client_id, false, c);
    let exchange = match &hub.exchange {
        Some(e) if e.get_ref().trim().is_empty() => {
            c.at(e.span(), "exchange must not be empty");
            DEFAULT_EXCHANGE.to_owned()
        }
        Some(e) => e.get_ref().clone(),
        None => DEFAULT_EXCHANGE.to_owned(),
    };
    for (field, path) in [
        ("certificate", &hub.certificate),
        ("private_key", &hub.private_key),
        ("ca", &hub.ca),
    ] {
        if let Some(path) = path
            && path.get_ref().trim().is_empty()
        {
            c.at(path.span(), format!("{field} must name a PEM file"));
        }
    }
    let identity = match (&hub.certificate, &hub.private_key) {
        (Some(cert), Some(key)) => {
            if parsed.is_ok_and(|secure| !secure) {
                c.at(
                    hub.url.span(),
                    "a certificate and private_key need an amqps:// url",
                );
            }
            if hub.ca.is_none() {
                c.at(
                    cert.span(),
                    "mTLS on the hub needs ca as well: the authority that signs the hub's certificate",
                );
            }
            Some((cert.get_ref().clone(), key.get_ref().clone()))
        }
        (Some(only), None) | (None, Some(only)) => {
            c.at(
                only.span(),
                "mTLS needs both certificate and private_key, not one of them",
            );
            None
        }
        (None, None) => None,
    };
    let qualifications = qualifications(&hub.qualification, c);
    HubSettings {
        qualifications,
        url: url.clone(),
        client_id: hub.client_id.get_ref().clone(),
        exchange,
        identity,
        ca: hub.ca.as_ref().map(|ca| ca.get_ref().clone()),
        line: line_column(c.source, raw.span().start).0,
    }
}

/// The natures of fact the console offers when none are configured: codes and labels of the
/// CISU nomenclature as the hub's published samples use them, the first being the default.
const DEFAULT_QUALIFICATIONS: [(&str, &str); 7] = [
    ("C11.00.00", "Autre nature de fait"),
    ("C04.02.01", "Incendie - Bâtiment d'habitation"),
    ("C04.05.03", "Feu de broussailles"),
    ("C11.02.01", "Malaise/détresse vitale"),
    ("C02.05.02", "Obstétrique"),
    ("C09.03.00", "Fuite de gaz"),
    ("C01.01.04", "2-roues"),
];

/// The configured natures of fact: each code shaped as the schemas want (`Cnn.nn.nn`), each
/// label worded, no code twice.
fn qualifications(
    raw: &[toml::Spanned<RawQualification>],
    c: &mut Checker<'_>,
) -> Vec<CaseQualification> {
    if raw.is_empty() {
        return DEFAULT_QUALIFICATIONS
            .iter()
            .map(|(code, label)| CaseQualification {
                code: (*code).to_owned(),
                label: (*label).to_owned(),
            })
            .collect();
    }
    let mut out: Vec<CaseQualification> = Vec::new();
    for q in raw {
        let q = q.get_ref();
        let code = q.code.get_ref();
        let label = q.label.get_ref().trim();
        if !qualification_code(code) {
            c.at(
                q.code.span(),
                format!("qualification code {code:?} is not a CISU code (Cnn.nn.nn)"),
            );
        } else if out.iter().any(|o| &o.code == code) {
            c.at(
                q.code.span(),
                format!("qualification {code} is listed twice"),
            );
        }
        if label.is_empty() || label.chars().count() > 255 {
            c.at(
                q.label.span(),
                "qualification label must be 1 to 255 characters",
            );
        }
        out.push(CaseQualification {
            code: code.clone(),
            label: label.to_owned(),
        });
    }
    out
}

/// `Cnn.nn.nn`, the pattern of the RC-EDA schema's `whatsHappen.code`.
fn qualification_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 9
        && b[0] == b'C'
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit())
        && b[3] == b'.'
        && b[6] == b'.'
}

/// Each partner's client id; with a `[hub]` table, a partner without one could not be sent its
/// cases, so the file is refused rather than the first transfer.
pub(super) fn partner_hub_ids(raw: &RawConfig, c: &mut Checker<'_>) -> Vec<(Service, String)> {
    let mut out: Vec<(Service, String)> = Vec::new();
    for p in &raw.partner_services {
        let p = p.get_ref();
        // An unknown or repeated service is reported by the partner services' check.
        let Some(service) = Service::parse(p.service.get_ref()) else {
            continue;
        };
        if out.iter().any(|(s, _)| *s == service) {
            continue;
        }
        match &p.hub_id {
            Some(id) if check_client_id("hub_id", id, true, c) => {
                out.push((service, id.get_ref().clone()));
            }
            Some(_) => {}
            None if raw.hub.is_some() => c.at(
                p.service.span(),
                "this partner has no hub_id: with a [hub] table, each partner needs its client id on the hub",
            ),
            None => {}
        }
    }
    out
}

/// A hub client id: letters, digits, '.', '-' (and '_' for a recipient), as the hub reads ids
/// back; true if it is one.
fn check_client_id(
    field: &str,
    id: &toml::Spanned<String>,
    underscore: bool,
    c: &mut Checker<'_>,
) -> bool {
    let value = id.get_ref();
    let why = if value.trim().is_empty() {
        Some(format!("{field} must not be empty"))
    } else if value.len() > 255 {
        Some(format!("{field} is longer than 255 characters"))
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || (underscore && b == b'_'))
    {
        let allowed = if underscore {
            "letters, digits, '.', '-' and '_'"
        } else {
            "letters, digits, '.' and '-'"
        };
        Some(format!("{field} {value:?} may hold only {allowed}"))
    } else {
        None
    };
    match why {
        Some(why) => {
            c.at(id.span(), why);
            false
        }
        None => true,
    }
}

/// Reads `amqp[s]://[user[:password]@]host[:port][/vhost][?query]` as the AMQP URI
/// specification writes it; Ok(true) for amqps. Strict, so that what passes here the hub
/// crate's client reads too.
pub(crate) fn amqp_url(url: &str) -> Result<bool, String> {
    let (secure, rest) = if let Some(rest) = url.strip_prefix("amqps://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("amqp://") {
        (false, rest)
    } else {
        return Err("the scheme must be amqp:// or amqps://".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host_port = match authority.rsplit_once('@') {
        Some((user, host_port)) => {
            if user.is_empty() || user.starts_with(':') {
                return Err("a user is named before '@' but is empty".into());
            }
            host_port
        }
        None => authority,
    };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err("an IPv6 host lacks its ']'".into());
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("{addr:?} is not an IPv6 address"));
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Err("unexpected text after the IPv6 host".into()),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !host_ok {
        return Err("the host is missing or holds characters a host name cannot".into());
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
    {
        return Err(format!("port {port:?} is not a number from 1 to 65535"));
    }
    // The vhost is one percent-encoded segment (`/%2f` for "/"); a second '/' is not AMQP.
    let vhost = path.split('?').next().unwrap_or("");
    if let Some(vhost) = vhost.strip_prefix('/')
        && vhost.contains('/')
    {
        return Err("the vhost must be one segment (write \"/\" as %2f)".into());
    }
    if path.chars().any(char::is_whitespace) {
        return Err("spaces are not allowed".into());
    }
    Ok(secure)
}

#[cfg(test)]
mod tests {
    use super::amqp_url;

    #[test]
    fn amqp_urls_are_read_strictly() {
        for (url, secure) in [
            ("amqp://127.0.0.1:5672/%2f", false),
            ("amqp://guest:guest@localhost", false),
            (
                "amqps://hub.esante.gouv.fr:5671/hubsante?heartbeat=10",
                true,
            ),
            ("amqp://[::1]:5672", false),
        ] {
            assert_eq!(amqp_url(url), Ok(secure), "{url}");
        }
        for url in [
            "http://localhost:5672",
            "amqp://",
            "amqp://:5672",
            "amqp://localhost:0",
            "amqp://localhost:99999",
            "amqp://localhost:port",
            "amqp://local host",
            "amqp://localhost/a/b",
            "amqp://@localhost",
            "amqp://[::1",
        ] {
            assert!(amqp_url(url).is_err(), "{url} accepted");
        }
    }
}
