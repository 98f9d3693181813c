//! Digest authentication of call-takers' phones (RFC 3261 §22, RFC 7616 with qop=auth, SHA-256
//! as RFC 8760 brings it to SIP, MD5 for the phones that know nothing else), checked against the
//! stored HA1 so that no password is ever kept in clear.
//!
//! A nonce is bound to the address it was issued to, and each of its nonce counts is taken
//! once: a REGISTER captured on the wire and sent again, from elsewhere or from the same
//! place, proves nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// How long a nonce stays good, in seconds.
pub const NONCE_LIFETIME_S: u64 = 300;

/// Issues and checks stateless nonces: the issue time and a serial number, signed with a
/// secret of this process and the address the nonce is issued to. The serial number makes
/// every nonce new, so that its nonce counts are its phone's alone.
#[derive(Clone)]
pub struct Nonces {
    secret: [u8; 32],
    serial: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh.
    Fresh,
    /// Ours but too old: challenge again with `stale=true`.
    Stale,
    /// Not ours.
    Forged,
}

impl Nonces {
    /// A nonce source with this secret.
    pub fn new(secret: [u8; 32]) -> Nonces {
        Nonces {
            secret,
            serial: Default::default(),
        }
    }

    fn sign(&self, issued_s: u64, serial: u64, to: IpAddr) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length works");
        mac.update(&issued_s.to_be_bytes());
        mac.update(&serial.to_be_bytes());
        match to {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// A nonce issued at `now_s` (seconds since the epoch) to the phone at `to`.
    pub fn issue(&self, now_s: u64, to: IpAddr) -> String {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{now_s:x}.{serial:x}.{}", self.sign(now_s, serial, to))
    }

    /// Whether this nonce is ours, issued to `from`, and fresh at `now_s`.
    pub fn check(&self, nonce: &str, now_s: u64, from: IpAddr) -> NonceCheck {
        let mut parts = nonce.splitn(3, '.');
        let (Some(issued), Some(serial), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return NonceCheck::Forged;
        };
        let (Ok(issued_s), Ok(serial)) = (
            u64::from_str_radix(issued, 16),
            u64::from_str_radix(serial, 16),
        ) else {
            return NonceCheck::Forged;
        };
        if self.sign(issued_s, serial, from) != signature {
            return NonceCheck::Forged;
        }
        if now_s.saturating_sub(issued_s) > NONCE_LIFETIME_S || issued_s > now_s + 5 {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }
}

/// Nonce counts already taken, per nonce: an answer is good once. Bounded: nonces past their
/// lifetime are forgotten (they are refused as stale anyway), and beyond `MAX_NONCES` the
/// oldest go first.
#[derive(Debug, Default)]
pub struct Counts {
    highest: HashMap<String, (u64, u32)>,
}

/// Nonces whose counts are kept at once: far beyond the phones registering in 5 minutes.
const MAX_NONCES: usize = 65_536;

impl Counts {
    /// Takes nonce count `nc` (hex) of `nonce`, issued at `issued_s`; false when it was
    /// taken already (or a higher one was), or does not read.
    pub fn take(&mut self, nonce: &str, nc: &str, now_s: u64) -> bool {
        let Ok(nc) = u32::from_str_radix(nc, 16) else {
            return false;
        };
        let issued_s = nonce
            .split_once('.')
            .and_then(|(issued, _)| u64::from_str_radix(issued, 16).ok())
            .unwrap_or(now_s);
        if self.highest.len() >= MAX_NONCES {
            self.highest
                .retain(|_, (issued, _)| now_s.saturating_sub(*issued) <= NONCE_LIFETIME_S);
            if self.highest.len() >= MAX_NONCES
                && let Some(oldest) = self
                    .highest
                    .iter()
                    .min_by_key(|(_, (issued, _))| *issued)
                    .map(|(n, _)| n.clone())
            {
                self.highest.remove(&oldest);
            }
        }
        match self.highest.get_mut(nonce) {
            Some((_, highest)) if nc <= *highest => false,
            Some((_, highest)) => {
                *highest = nc;
                true
            }
            None => {
                self.highest.insert(nonce.to_owned(), (issued_s, nc));
                true
            }
        }
    }
}

/// The parameters of an `Authorization: Digest …` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestAnswer {
    /// User name.
    pub username: String,
    /// Realm.
    pub realm: String,
    /// Nonce we issued.
    pub nonce: String,
    /// Digest URI, exactly as the phone wrote it.
    pub uri: String,
    /// The phone's response hash.
    pub response: String,
    /// `auth`, or absent for RFC 2069 style.
    pub qop: Option<String>,
    /// Nonce count.
    pub nc: Option<String>,
    /// Client nonce.
    pub cnonce: Option<String>,
    /// Algorithm, MD5 if absent.
    pub algorithm: Option<String>,
}

/// Reads the parameters of a Digest `Authorization` value; None when it is not Digest.
pub fn parse_authorization(value: &str) -> Option<DigestAnswer> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut answer = DigestAnswer::default();
    let mut chars = params.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars
            .by_ref()
            .take_while(|&c| c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if name.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        match name.as_str() {
            "username" => answer.username = value,
            "realm" => answer.realm = value,
            "nonce" => answer.nonce = value,
            "uri" => answer.uri = value,
            "response" => answer.response = value.to_ascii_lowercase(),
            "qop" => answer.qop = Some(value),
            "nc" => answer.nc = Some(value),
            "cnonce" => answer.cnonce = Some(value),
            "algorithm" => answer.algorithm = Some(value),
            _ => {}
        }
    }
    Some(answer)
}

/// A digest algorithm the platform checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 2617's, which every SIP phone knows.
    Md5,
    /// RFC 7616's SHA-256, for SIP by RFC 8760.
    Sha256,
}

impl Algorithm {
    /// The name in the `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hex(self, text: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(text.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(text.as_bytes())),
        }
    }
}

impl DigestAnswer {
    /// The algorithm the answer was computed with: MD5 when it names none, None when it names
    /// one the platform does not check (the `-sess` variants, SHA-512-256).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("md5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("sha-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }
}

/// HA1 as the configuration stores it: MD5 of `user:realm:password`.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    ha1_with(Algorithm::Md5, user, realm, password)
}

/// HA1 with `algorithm`: its hash of `user:realm:password`, in lowercase hexadecimal.
pub fn ha1_with(algorithm: Algorithm, user: &str, realm: &str, password: &str) -> String {
    algorithm.hex(&format!("{user}:{realm}:{password}"))
}

/// Whether the phone's response proves it knows the password behind `ha1`, an HA1 of the
/// algorithm the answer names.
pub fn verify(answer: &DigestAnswer, ha1: &str, method: &str) -> bool {
    let Some(algorithm) = answer.algorithm() else {
        return false;
    };
    let ha2 = algorithm.hex(&format!("{method}:{}", answer.uri));
    // qop=auth only: without a nonce count an answer could be replayed unnoticed.
    let expected = match (&answer.qop, &answer.nc, &answer.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) if qop.eq_ignore_ascii_case("auth") => {
            algorithm.hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", answer.nonce))
        }
        _ => return false,
    };
    // Equal length hex strings: a plain comparison leaks nothing useful about a hash.
    expected.eq_ignore_ascii_case(&answer.response)
}

/// The `WWW-Authenticate` value of a challenge with `algorithm`.
pub fn challenge(algorithm: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
        algorithm.name()
    )
}

/// The algorithms every challenge offers, most preferred first (RFC 8760 §2.4): SHA-256 if
/// any account has its hash, MD5 if any has that one. Decided for the whole platform, never per
/// login, so that a challenge tells nobody which logins exist or how they are kept.
pub fn offered(hashes: impl IntoIterator<Item = (bool, bool)>) -> Vec<Algorithm> {
    let (mut md5, mut sha256) = (false, false);
    for (has_md5, has_sha256) in hashes {
        md5 |= has_md5;
        sha256 |= has_sha256;
    }
    let mut offered = Vec::new();
    if sha256 {
        offered.push(Algorithm::Sha256);
    }
    if md5 || !sha256 {
        offered.push(Algorithm::Md5);
    }
    offered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_verifies() {
        // RFC 2617 §3.5, with the HA1 computed from the example's password.
        let header = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let answer = parse_authorization(header).expect("digest");
        assert_eq!(answer.username, "Mufasa");
        assert_eq!(answer.uri, "/dir/index.html");
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert!(verify(&answer, &ha1, "GET"));
        assert!(!verify(&answer, &ha1, "POST"));
        let wrong = super::ha1("Mufasa", "testrealm@host.com", "circle of life");
        assert!(!verify(&answer, &wrong, "GET"));
    }

    #[test]
    fn rfc_7616_examples_verify_with_sha_256_and_md5() {
        // RFC 7616 §3.9.1: the same request answered with SHA-256, then with MD5.
        let common = r#"username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let sha = parse_authorization(&format!(
            r#"Digest {common}, algorithm=SHA-256, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
        ))
        .expect("digest");
        let md5 = parse_authorization(&format!(
            r#"Digest {common}, algorithm=MD5, response="8ca523f5e9506fed4657c9700eebdbec""#
        ))
        .expect("digest");
        let realm = "http-auth@example.org";
        let sha_ha1 = ha1_with(Algorithm::Sha256, "Mufasa", realm, "Circle of Life");
        let md5_ha1 = ha1_with(Algorithm::Md5, "Mufasa", realm, "Circle of Life");
        assert_eq!(sha.algorithm(), Some(Algorithm::Sha256));
        assert!(verify(&sha, &sha_ha1, "GET"));
        assert!(verify(&md5, &md5_ha1, "GET"));
        // Each answer proves nothing against the other algorithm's HA1.
        assert!(!verify(&sha, &md5_ha1, "GET"));
        assert!(!verify(&md5, &sha_ha1, "GET"));
        let sess = parse_authorization(&format!(
            r#"Digest {common}, algorithm=SHA-256-sess, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
        ))
        .expect("digest");
        assert_eq!(sess.algorithm(), None);
        assert!(!verify(&sess, &sha_ha1, "GET"));
    }

    #[test]
    fn challenges_offer_sha_256_first_and_the_same_for_every_login() {
        assert_eq!(offered([(true, false)]), [Algorithm::Md5]);
        assert_eq!(offered([(false, true)]), [Algorithm::Sha256]);
        assert_eq!(
            offered([(true, false), (false, true)]),
            [Algorithm::Sha256, Algorithm::Md5]
        );
        assert_eq!(offered([]), [Algorithm::Md5]);
        let c = challenge(Algorithm::Sha256, "secourir", "n", false);
        assert!(
            c.contains("algorithm=SHA-256") && c.contains(r#"qop="auth""#),
            "{c}"
        );
    }

    #[test]
    fn nonces_are_ours_bound_to_their_address_and_expire() {
        let nonces = Nonces::new([7; 32]);
        let phone: IpAddr = "192.0.2.10".parse().expect("addr");
        let elsewhere: IpAddr = "198.51.100.7".parse().expect("addr");
        let n = nonces.issue(1_000_000, phone);
        assert_eq!(nonces.check(&n, 1_000_010, phone), NonceCheck::Fresh);
        assert_eq!(nonces.check(&n, 1_000_010, elsewhere), NonceCheck::Forged);
        assert_eq!(
            nonces.check(&n, 1_000_000 + NONCE_LIFETIME_S + 1, phone),
            NonceCheck::Stale
        );
        assert_eq!(
            Nonces::new([8; 32]).check(&n, 1_000_010, phone),
            NonceCheck::Forged
        );
        assert_eq!(
            nonces.check("f4240.0.00", 1_000_010, phone),
            NonceCheck::Forged
        );
        // Two nonces issued in the same second to the same address differ.
        assert_ne!(
            nonces.issue(1_000_000, phone),
            nonces.issue(1_000_000, phone)
        );
        assert_eq!(
            nonces.check("nonsense", 1_000_010, phone),
            NonceCheck::Forged
        );
    }

    #[test]
    fn each_nonce_count_is_taken_once() {
        let mut counts = Counts::default();
        let nonce = "f4240.abc";
        assert!(counts.take(nonce, "00000001", 1_000_000));
        assert!(!counts.take(nonce, "00000001", 1_000_001), "replayed");
        assert!(counts.take(nonce, "00000002", 1_000_002));
        assert!(!counts.take(nonce, "00000001", 1_000_003), "older");
        assert!(
            counts.take("f4241.def", "00000001", 1_000_003),
            "another nonce"
        );
        assert!(!counts.take(nonce, "zz", 1_000_003), "unreadable");
    }

    #[test]
    fn counts_stay_bounded() {
        let mut counts = Counts::default();
        for i in 0..(MAX_NONCES as u64 + 10) {
            assert!(counts.take(&format!("{:x}.n", 1_000_000 + i), "1", 1_000_000 + i));
        }
        assert!(counts.highest.len() <= MAX_NONCES);
    }

    #[test]
    fn an_answer_without_qop_proves_nothing() {
        let ha1 = ha1("ota", SIP_REALM_FOR_TESTS, "secourir");
        let ha2 = Algorithm::Md5.hex("REGISTER:sip:x");
        let answer = DigestAnswer {
            username: "ota".into(),
            realm: SIP_REALM_FOR_TESTS.into(),
            nonce: "n".into(),
            uri: "sip:x".into(),
            response: Algorithm::Md5.hex(&format!("{ha1}:n:{ha2}")),
            ..DigestAnswer::default()
        };
        assert!(!verify(&answer, &ha1, "REGISTER"));
    }

    const SIP_REALM_FOR_TESTS: &str = "secourir";

    #[test]
    fn basic_and_garbage_are_not_digest() {
        assert!(parse_authorization("Basic dXNlcjpwYXNz").is_none());
        assert!(parse_authorization("").is_none());
        let odd = parse_authorization("Digest username=\"a\\\"b\", ,,nonce=x").expect("digest");
        assert_eq!(odd.username, "a\"b");
        assert_eq!(odd.nonce, "x");
    }
}
