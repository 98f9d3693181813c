//! The little of SDP (RFC 4566, offer/answer RFC 3264) a G.711 media anchor needs, with SDES
//! keys (RFC 4568) for the peers that offer SRTP.

use std::net::{IpAddr, SocketAddr};

use crate::{Codec, MediaError};

/// What an offer or answer says about its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    /// Where RTP goes.
    pub addr: SocketAddr,
    /// G.711 codecs, in the order offered.
    pub codecs: Vec<Codec>,
    /// RFC 4733 telephone-event payload type.
    pub dtmf_pt: Option<u8>,
    /// The stream is offered as SRTP only (RTP/SAVP): the answer must be so too.
    pub secure: bool,
    /// The first SDES key offered that the anchor takes; with RTP/AVP, SRTP at best effort.
    pub crypto: Option<SdesKey>,
}

/// An SRTP crypto suite of SDES (RFC 4568 §6.2) the anchor takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    /// AES-128 in counter mode, 80-bit HMAC-SHA1 tags: what SBCs and phones offer first.
    AesCm128HmacSha1_80,
    /// The same with 32-bit tags.
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn named(name: &str) -> Option<CryptoSuite> {
        [
            CryptoSuite::AesCm128HmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// An SDES master key and salt (16 and 14 bytes) with its crypto tag and suite.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// The `a=crypto` tag, which the answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// Master key then master salt.
    pub key_salt: [u8; 30],
}

impl std::fmt::Debug for SdesKey {
    // A media key never reaches a log, whatever is printed with `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesKey")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Reads `TAG SUITE inline:KEY[|LIFETIME]` (RFC 4568 §9.1); None for a suite or key form the
/// anchor does not take (a master key identifier among them).
fn crypto(value: &str) -> Option<SdesKey> {
    let mut parts = value.split_whitespace();
    let tag = parts.next()?.parse().ok()?;
    let suite = CryptoSuite::named(parts.next()?)?;
    // Several keys may follow, separated by `;`: the first is the one used.
    let params = parts.next()?.split(';').next()?;
    let inline = params.strip_prefix("inline:")?;
    let mut fields = inline.split('|');
    let key = fields.next()?;
    for field in fields {
        // A lifetime (2^n or a number) is fine; a master key identifier (`1:4`) is not taken.
        if field.contains(':') {
            return None;
        }
    }
    let bytes = data_encoding::BASE64.decode(key.as_bytes()).ok()?;
    Some(SdesKey {
        tag,
        suite,
        key_salt: bytes.try_into().ok()?,
    })
}

fn bad(why: &str) -> MediaError {
    MediaError::Sdp(why.to_owned())
}

/// Reads the first audio stream of an SDP body.
pub fn parse(body: &[u8]) -> Result<SdpMedia, MediaError> {
    // Only the c=, m= and a= lines matter, and they are ASCII: a Latin-1 session name or
    // description from older equipment must not cost the caller the call.
    let text = String::from_utf8_lossy(body);
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut payloads: Vec<u8> = Vec::new();
    let mut dtmf_pt = None;
    let mut secure = false;
    let mut sdes: Option<SdesKey> = None;
    let mut rtpmap: Vec<(u8, String)> = Vec::new();
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                in_audio = false;
                if seen_audio {
                    continue;
                }
                let mut parts = value.split_whitespace();
                if parts.next() != Some("audio") {
                    continue;
                }
                let p: u16 = parts
                    .next()
                    .and_then(|p| p.split('/').next()?.parse().ok())
                    .ok_or_else(|| bad("m=audio without a port"))?;
                let proto = parts
                    .next()
                    .ok_or_else(|| bad("m=audio without a protocol"))?;
                secure = proto.to_ascii_uppercase().contains("SAVP");
                payloads = parts.filter_map(|p| p.parse().ok()).collect();
                port = Some(p);
                in_audio = true;
                seen_audio = true;
            }
            "c" => {
                let ip = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next()?.parse::<IpAddr>().ok())
                    .ok_or_else(|| bad("unreadable c= line"))?;
                if in_audio {
                    media_ip = Some(ip);
                } else if !seen_audio {
                    session_ip = Some(ip);
                }
            }
            "a" if in_audio => {
                if let Some(line) = value.strip_prefix("crypto:") {
                    if sdes.is_none() {
                        sdes = crypto(line);
                    }
                } else if let Some(map) = value.strip_prefix("rtpmap:") {
                    let mut parts = map.split_whitespace();
                    if let (Some(pt), Some(name)) = (parts.next(), parts.next())
                        && let Ok(pt) = pt.parse::<u8>()
                    {
                        rtpmap.push((pt, name.to_ascii_lowercase()));
                    }
                }
            }
            _ => {}
        }
    }
    let port = port.ok_or_else(|| bad("no m=audio stream"))?;
    if port == 0 {
        return Err(bad("the audio stream is refused (port 0)"));
    }
    let ip = media_ip
        .or(session_ip)
        .ok_or_else(|| bad("no c= connection address"))?;
    let mut codecs = Vec::new();
    for pt in &payloads {
        let name = rtpmap
            .iter()
            .find(|(p, _)| p == pt)
            .map(|(_, n)| n.as_str());
        let codec = match (pt, name) {
            (0, None) => Some(Codec::Pcmu),
            (8, None) => Some(Codec::Pcma),
            (_, Some(n)) if n.starts_with("pcmu/8000") => Some(Codec::Pcmu),
            (_, Some(n)) if n.starts_with("pcma/8000") => Some(Codec::Pcma),
            (_, Some(n)) if n.starts_with("telephone-event/8000") => {
                dtmf_pt = Some(*pt);
                None
            }
            _ => None,
        };
        if let Some(c) = codec
            && !codecs.contains(&c)
        {
            codecs.push(c);
        }
    }
    if secure && sdes.is_none() {
        return Err(MediaError::SrtpKey(
            "offered with no key the anchor takes (SDES AES_CM_128_HMAC_SHA1_80 or _32, no MKI)"
                .to_owned(),
        ));
    }
    Ok(SdpMedia {
        addr: SocketAddr::new(ip, port),
        codecs,
        dtmf_pt,
        secure,
        crypto: sdes,
    })
}

/// The codec to answer with: PCMA first, as European networks prefer, then PCMU.
pub fn choose(offer: &SdpMedia) -> Option<Codec> {
    [Codec::Pcma, Codec::Pcmu]
        .into_iter()
        .find(|c| offer.codecs.contains(c))
}

fn ip_kind(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

/// The platform's offer to a call-taker's phone: PCMA, PCMU and telephone-event.
pub fn offer(local: SocketAddr, session_id: u64) -> String {
    let ip = local.ip();
    let kind = ip_kind(ip);
    format!(
        "v=0\r\no=secourir {session_id} 1 IN {kind} {ip}\r\ns=Secourir\r\nc=IN {kind} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        local.port()
    )
}

/// How the answer protects its stream: in clear, or with the anchor's own SDES key (its tag
/// and suite those of the offer's key), under RTP/SAVP when the offer was.
#[derive(Debug, Clone, Copy)]
pub enum Protection<'a> {
    /// RTP.
    Clear,
    /// SRTP with this key of the anchor's.
    Srtp {
        /// The anchor's key, for the peer to read what the anchor sends.
        key: &'a SdesKey,
        /// The offer was RTP/SAVP.
        secure: bool,
    },
}

/// The platform's answer to a caller's offer.
pub fn answer(
    local: SocketAddr,
    session_id: u64,
    codec: Codec,
    dtmf_pt: Option<u8>,
    protection: Protection<'_>,
) -> String {
    let ip = local.ip();
    let kind = ip_kind(ip);
    let pt = codec.payload_type();
    let name = match codec {
        Codec::Pcma => "PCMA",
        Codec::Pcmu => "PCMU",
    };
    let mut sdp = format!(
        "v=0\r\no=secourir {session_id} 1 IN {kind} {ip}\r\ns=Secourir\r\nc=IN {kind} {ip}\r\nt=0 0\r\nm=audio {} {} {pt}",
        local.port(),
        match protection {
            Protection::Srtp { secure: true, .. } => "RTP/SAVP",
            _ => "RTP/AVP",
        }
    );
    if let Some(d) = dtmf_pt {
        sdp.push_str(&format!(" {d}"));
    }
    sdp.push_str(&format!("\r\na=rtpmap:{pt} {name}/8000\r\n"));
    if let Protection::Srtp { key, .. } = protection {
        sdp.push_str(&format!(
            "a=crypto:{} {} inline:{}\r\n",
            key.tag,
            key.suite.name(),
            data_encoding::BASE64.encode(&key.key_salt)
        ));
    }
    if let Some(d) = dtmf_pt {
        sdp.push_str(&format!(
            "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\n"
        ));
    }
    sdp.push_str("a=ptime:20\r\na=sendrecv\r\n");
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn an_srtp_offer_gives_its_key_and_the_answer_gives_ours_without_logging_it() {
        let key = [3u8; 30];
        let inline = data_encoding::BASE64.encode(&key);
        let offer = format!(
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/SAVP 8\r\na=crypto:2 AES_CM_256_HMAC_SHA1_80 inline:AAAA\r\na=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^20\r\n"
        );
        let media = parse(offer.as_bytes()).expect("offer");
        assert!(media.secure);
        let sdes = media.crypto.clone().expect("a key taken");
        assert_eq!(
            (sdes.tag, sdes.suite, sdes.key_salt),
            (5, CryptoSuite::AesCm128HmacSha1_80, key)
        );
        assert!(!format!("{sdes:?}").contains(&inline));

        let ours = SdesKey {
            tag: 5,
            suite: CryptoSuite::AesCm128HmacSha1_80,
            key_salt: [4u8; 30],
        };
        let answer = answer(
            "127.0.0.1:7000".parse().unwrap(),
            1,
            Codec::Pcma,
            None,
            Protection::Srtp {
                key: &ours,
                secure: true,
            },
        );
        assert!(answer.contains("m=audio 7000 RTP/SAVP 8"), "{answer}");
        let answered = parse(answer.as_bytes()).expect("our answer reads back");
        assert_eq!(answered.crypto, Some(ours));

        // Best effort (RFC 4568 under RTP/AVP): SRTP, but the profile stays as offered.
        let best_effort = offer.replace("RTP/SAVP", "RTP/AVP");
        let media = parse(best_effort.as_bytes()).expect("offer");
        assert!(!media.secure && media.crypto.is_some());

        // SRTP only, with nothing the anchor takes: refused, with the reason.
        for only in [
            "a=crypto:1 AEAD_AES_256_GCM inline:AAAA",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^20|1:4"),
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",
        ] {
            let sdp = format!("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/SAVP 8\r\n{only}\r\n");
            let err = parse(sdp.as_bytes()).expect_err(only);
            assert!(matches!(err, MediaError::SrtpKey(_)), "{err}");
        }
    }

    #[test]
    fn a_sipp_offer_is_read() {
        let m = parse(SIPP.as_bytes()).unwrap();
        assert_eq!(m.addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(m.codecs, vec![Codec::Pcma]);
        assert_eq!(m.dtmf_pt, Some(101));
        assert_eq!(choose(&m), Some(Codec::Pcma));
    }

    #[test]
    fn media_level_address_wins_and_static_types_need_no_rtpmap() {
        let sdp = "v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0 8\nc=IN IP4 127.0.0.2\n";
        let m = parse(sdp.as_bytes()).unwrap();
        assert_eq!(m.addr, "127.0.0.2:7000".parse().unwrap());
        assert_eq!(m.codecs, vec![Codec::Pcmu, Codec::Pcma]);
        assert_eq!(choose(&m), Some(Codec::Pcma));
    }

    #[test]
    fn our_offer_and_answer_read_back() {
        let local: SocketAddr = "127.0.0.1:20000".parse().unwrap();
        let o = parse(offer(local, 1).as_bytes()).unwrap();
        assert_eq!(
            (o.addr, o.codecs.clone(), o.dtmf_pt),
            (local, vec![Codec::Pcma, Codec::Pcmu], Some(101))
        );
        let a =
            parse(answer(local, 1, Codec::Pcmu, Some(101), Protection::Clear).as_bytes()).unwrap();
        assert_eq!((a.codecs, a.dtmf_pt), (vec![Codec::Pcmu], Some(101)));
    }

    #[test]
    fn unusable_offers_are_errors() {
        for bad in [
            "",
            "v=0\r\n",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5000 RTP/AVP 96\r\n",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 8\r\n",
            "v=0\r\nm=audio 5000 RTP/AVP 8\r\n",
            "v=0\r\nc=IN IP4 nowhere\r\nm=audio 5000 RTP/AVP 8\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let g729 = parse(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP 18\r\n").unwrap();
        assert_eq!(choose(&g729), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_offers(at in 0usize..200, byte in any::<u8>()) {
            let mut bytes = SIPP.as_bytes().to_vec();
            let at = at % bytes.len();
            bytes[at] = byte;
            let _ = parse(&bytes);
        }
    }
}
