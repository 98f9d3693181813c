//! Every emergency INVITE the platform cannot carry to a call-taker still reaches the core: it is
//! refused with the right SIP status, and its call is on record (why, the caller's number, where
//! they are) and on the call-back list of the CTA serving them. And a media range partly held by
//! another program is searched whole before a caller is refused for want of a port.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A PIDF-LO placing the caller in Marseille.
const PIDF_MARSEILLE: &str = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:gp=\"urn:ietf:params:xml:ns:pidf:geopriv10\" xmlns:gml=\"http://www.opengis.net/gml\" entity=\"pres:caller@example.fr\"><tuple id=\"t\"><status><gp:geopriv><gp:location-info><gml:Point srsName=\"urn:ogc:def:crs:EPSG::4326\"><gml:pos>43.2965 5.3698</gml:pos></gml:Point></gp:location-info><gp:usage-rules/></gp:geopriv></status></tuple></presence>";

/// An INVITE to 18 from `number` with this body part (its content type and text) beside the
/// caller's PIDF-LO; the first line of the final answer.
fn invite(platform: &Platform, number: &str, part_type: &str, part: &str) -> String {
    let socket = udp_socket("127.0.0.1");
    let port = socket.local_addr().expect("addr").port();
    let body = format!(
        "--b1\r\nContent-Type: {part_type}\r\n\r\n{part}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{PIDF_MARSEILLE}\r\n--b1--\r\n"
    );
    let sip = platform.sip;
    let text = format!(
        "INVITE sip:18@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{number}\r\nFrom: <sip:{number}@127.0.0.1>;tag={number}\r\nTo: <sip:18@127.0.0.1>\r\nCall-ID: nc-{number}\r\nCSeq: 1 INVITE\r\nContact: <sip:{number}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange_within(&socket, sip, text.as_bytes(), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final answer to the INVITE\n{}", platform.log()));
    answer.lines().next().unwrap_or("").to_owned()
}

/// An SDP offer of audio with these payload types and lines.
fn sdp(profile: &str, payloads: &str, lines: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 {profile} {payloads}\r\n{lines}"
    )
}

/// The call from `number`, once refused, with its record and call-back entry checked.
fn refused_on_record(platform: &Platform, number: &str, why: &str) {
    let call = platform.wait_call(&format!("the refused call from {number}"), |c| {
        c["caller"] == number && c["ended_at"].is_i64()
    });
    assert_eq!(call["outcome"], "rejected", "{call}");
    assert_eq!(
        call["reason"].as_str(),
        Some(format!("appel non acheminable : {why}").as_str()),
        "{call}"
    );
    assert_eq!(call["departement"], "13", "{call}");
    assert_eq!(call["commune"], "Marseille", "{call}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = platform.get("/api/callbacks?cta=cta-13");
        let listed = list
            .as_array()
            .into_iter()
            .flatten()
            .any(|entry: &Value| entry["caller"] == number && entry["call"] == call["call"]);
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{number} is not on CTA 13's call-back list: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_emergency_invite_the_platform_cannot_carry_is_on_record_and_on_the_call_back_list() {
    let platform = Platform::start();
    // G.729 only: no codec in common.
    let status = invite(
        &platform,
        "0611000001",
        "application/sdp",
        &sdp("RTP/AVP", "18", "a=rtpmap:18 G729/8000\r\n"),
    );
    assert!(status.starts_with("SIP/2.0 488 "), "{status}");
    refused_on_record(
        &platform,
        "0611000001",
        "aucun codec audio commun (G.711 attendu)",
    );
    // SRTP offered with a key too short to use.
    let status = invite(
        &platform,
        "0611000002",
        "application/sdp",
        &sdp(
            "RTP/SAVP",
            "8",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n",
        ),
    );
    assert!(status.starts_with("SIP/2.0 488 "), "{status}");
    refused_on_record(&platform, "0611000002", "clé SRTP inutilisable");
    // No SDP at all beside the location: a body the platform cannot use.
    let status = invite(&platform, "0611000003", "text/plain", "bonjour");
    assert!(status.starts_with("SIP/2.0 488 "), "{status}");
    refused_on_record(&platform, "0611000003", "pas d'offre audio lisible");
}

/// Binds every port of `ports` that is free, for as long as the guard lives: another program
/// holding part of the media range.
fn hold(ports: std::ops::RangeInclusive<u16>) -> Vec<UdpSocket> {
    ports
        .filter_map(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
        .collect()
}

#[test]
fn with_every_media_port_held_elsewhere_a_caller_is_refused_on_record_and_called_back() {
    let platform = Platform::start();
    let (first, last) = platform.media_range();
    let held = hold(first..=last);
    assert!(held.len() > 390, "{} of 400 ports held", held.len());
    let status = invite(
        &platform,
        "0622000001",
        "application/sdp",
        &sdp("RTP/AVP", "8", ""),
    );
    assert!(
        status.starts_with("SIP/2.0 503 Service Unavailable - media ports exhausted"),
        "{status}"
    );
    refused_on_record(&platform, "0622000001", "aucun port média libre");
    drop(held);
}

#[test]
fn the_first_call_after_a_start_is_answered_with_most_of_the_media_range_held_elsewhere() {
    let platform = Platform::start();
    let (first, _) = platform.media_range();
    // The first 300 of its 400 ports are another program's (formerly: refused after 64 tries).
    let held = hold(first..=first + 299);
    assert!(held.len() > 290, "{} of 300 ports held", held.len());
    let caller = platform.caller("0633000001", 43.2965, 5.3698, 1_000);
    wait_ok(caller, "the caller answered");
    let call = platform.wait_call("the call", |c| c["caller"] == "0633000001");
    assert_ne!(call["outcome"], "rejected", "{call}");
    drop(held);
}
