//! What an incoming INVITE asks for: the service dialled, the caller, the trunk, the media offer
//! and the caller's location, or the reason it cannot be served.

use rsipstack::sip::{Header, Request};
use secourir_config::Service;
use secourir_location::{LocationError, PidfLocation, parse_sip_body, sip_body_part};

/// Largest INVITE body accepted (SDP plus a PIDF-LO).
pub const MAX_BODY: usize = secourir_location::MAX_SIP_BODY_BYTES;

/// An emergency INVITE, read.
#[derive(Debug, Clone)]
pub struct Ingress {
    /// Service dialled.
    pub service: Service,
    /// Caller's number or user, from P-Asserted-Identity, else From.
    pub caller: Option<String>,
    /// Ingress trunk named by the Request-URI's `trunk` parameter.
    pub trunk: Option<String>,
    /// The SDP offer.
    pub sdp: Vec<u8>,
    /// Locations carried by value (PIDF-LO), in document order.
    pub locations: Vec<PidfLocation>,
    /// Why a location that was sent could not be used, if so.
    pub location_problem: Option<String>,
    /// `emergency-CallId` of an upstream i3 element, if any.
    pub upstream_call_id: Option<String>,
    /// `emergency-IncidentId` of an upstream i3 element, if any.
    pub upstream_incident_id: Option<String>,
    /// Resource-Priority asked (RFC 4412 `esnet.N`), if any.
    pub resource_priority: Option<u8>,
    /// Header lines the screen had to repair (bytes that were not UTF-8), for the call's trail.
    pub repaired_headers: Option<String>,
    /// The INVITE names an emergency service but its body cannot be used: the call is still
    /// offered (the core refuses it, on record and on the call-back list), and this is the
    /// answer its sender gets.
    pub unusable: Option<Refusal>,
}

/// Why an INVITE is refused before it reaches the core, with the SIP status to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status code.
    pub code: u16,
    /// Reason phrase, for the caller's equipment and the operator's log.
    pub reason: &'static str,
}

const fn refuse(code: u16, reason: &'static str) -> Refusal {
    Refusal { code, reason }
}

/// The service a Request-URI names: `18`, `112`, `sip:18@…`, `tel:112`, `urn:service:sos[.fire]`.
pub fn service_of(uri: &str) -> Option<Service> {
    let uri = uri.trim();
    let lower = uri.to_ascii_lowercase();
    if lower.starts_with("urn:service:") {
        return Service::parse(&lower);
    }
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme))
        .unwrap_or(&lower);
    let user = rest.split(['@', ';', '?']).next().unwrap_or("");
    match user {
        "18" | "112" => Service::parse(user),
        _ => None,
    }
}

fn header_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(Header::value)
}

/// User part of the first URI in a name-addr or addr-spec.
fn uri_user(value: &str) -> Option<String> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    };
    let rest = inner.split_once(':').map_or(inner, |(_, r)| r);
    let user = rest.split(['@', ';']).next()?.trim();
    (!user.is_empty() && user.len() <= 64).then(|| user.to_owned())
}

/// Reads an INVITE: what it asks, or the refusal of one that names no emergency service.
pub fn read_invite(request: &Request) -> Result<Ingress, Refusal> {
    let uri = request.uri.to_string();
    let to = header_value(request, "To").unwrap_or("");
    let service = service_of(&uri)
        .or_else(|| uri_user(to).and_then(|u| service_of(&u)))
        .ok_or(refuse(
            404,
            "Not Found - this platform answers 18, 112 and urn:service:sos only",
        ))?;
    let caller = header_value(request, "P-Asserted-Identity")
        .and_then(uri_user)
        .or_else(|| header_value(request, "From").and_then(uri_user));
    let trunk = uri_param(&uri, "trunk");
    let content_type = header_value(request, "Content-Type").unwrap_or("");
    let (sdp, unusable) = match offer_of(content_type, &request.body) {
        Ok(sdp) => (sdp, None),
        Err(refusal) => (Vec::new(), Some(refusal)),
    };
    let body: &[u8] = if request.body.len() > MAX_BODY {
        &[]
    } else {
        &request.body
    };
    let (locations, location_problem) = match parse_sip_body(content_type, body) {
        Ok(locations) => (locations, None),
        Err(LocationError::NoLocation | LocationError::UnsupportedContentType(_)) => {
            (Vec::new(), None)
        }
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut upstream_call_id = None;
    let mut upstream_incident_id = None;
    for header in request.headers.iter() {
        if header.name().eq_ignore_ascii_case("Call-Info") {
            for item in header.value().split(',') {
                let (uri, params) = item.split_once(';').unwrap_or((item, ""));
                let uri = uri.trim().trim_matches(['<', '>']).to_owned();
                let purpose = params.to_ascii_lowercase();
                if purpose.contains("purpose=emergency-callid") {
                    upstream_call_id = Some(uri);
                } else if purpose.contains("purpose=emergency-incidentid") {
                    upstream_incident_id = Some(uri);
                }
            }
        }
    }
    let resource_priority = resource_priority(request);
    let notes: Vec<&str> = request
        .headers
        .iter()
        .filter(|h| {
            h.name()
                .eq_ignore_ascii_case(crate::screen::REPAIRED_HEADER)
        })
        .map(Header::value)
        .collect();
    let repaired_headers =
        (!notes.is_empty()).then(|| notes.join("; ").chars().take(300).collect());
    Ok(Ingress {
        unusable,
        repaired_headers,
        service,
        caller,
        trunk,
        sdp,
        locations,
        location_problem,
        upstream_call_id,
        upstream_incident_id,
        resource_priority,
    })
}

/// The SDP offer of an INVITE's body, or why there is none the platform can use.
fn offer_of(content_type: &str, body: &[u8]) -> Result<Vec<u8>, Refusal> {
    if body.len() > MAX_BODY {
        return Err(refuse(
            413,
            "Request Entity Too Large - INVITE body over 64 KiB",
        ));
    }
    if body.is_empty() {
        return Err(refuse(
            488,
            "Not Acceptable Here - an SDP offer is required (no late offer)",
        ));
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/sdp" && !media.starts_with("multipart/") {
        return Err(refuse(
            415,
            "Unsupported Media Type - send application/sdp, or multipart/mixed with SDP and PIDF-LO",
        ));
    }
    match sip_body_part(content_type, body, "application/sdp") {
        Ok(Some(sdp)) => Ok(sdp.to_vec()),
        Ok(None) => Err(refuse(
            488,
            "Not Acceptable Here - no application/sdp part in the body",
        )),
        Err(_) => Err(refuse(400, "Bad Request - unreadable multipart body")),
    }
}

/// An emergency SIP MESSAGE (RFC 3428), read: who wrote, where replies go, what it carries.
#[derive(Debug, Clone)]
pub struct TextIngress {
    /// Service written to.
    pub service: Service,
    /// Caller's number or user, from P-Asserted-Identity, else From.
    pub caller: Option<String>,
    /// The conversation it belongs to, as the caller's side names it: the DEC112 conversation
    /// id when the app sends one, else the caller's address.
    pub peer: String,
    /// Where replies go: the From URI.
    pub reply_to: String,
    /// Ingress trunk named by the Request-URI's `trunk` parameter.
    pub trunk: Option<String>,
    /// Content-Type of the body.
    pub content_type: String,
    /// The body, unread.
    pub body: Vec<u8>,
    /// Values of the Call-Info headers (DEC112 message type and conversation id).
    pub call_infos: Vec<String>,
    /// Resource-Priority asked (RFC 4412 `esnet.N`), if any.
    pub resource_priority: Option<u8>,
    /// Its Call-ID: replies in the conversation carry it, so that the caller's side (a phone's
    /// chat, a gateway) threads them with what it sent.
    pub call_id: String,
}

/// The addr-spec of a name-addr or addr-spec (`"A" <sip:a@b>;tag=x` gives `sip:a@b`).
fn addr_spec(value: &str) -> Option<String> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    };
    let inner = inner.trim();
    (!inner.is_empty() && inner.len() <= 256).then(|| inner.to_owned())
}

/// Reads a MESSAGE sent outside a dialog: what it is, or the refusal of one that names no
/// emergency service.
pub fn read_message(request: &Request) -> Result<TextIngress, Refusal> {
    let uri = request.uri.to_string();
    let to = header_value(request, "To").unwrap_or("");
    let service = service_of(&uri)
        .or_else(|| uri_user(to).and_then(|u| service_of(&u)))
        .ok_or(refuse(
            404,
            "Not Found - this platform answers 18, 112 and urn:service:sos only",
        ))?;
    let from = header_value(request, "From").unwrap_or("");
    let reply_to = addr_spec(from).ok_or(refuse(400, "Bad Request - no From URI to reply to"))?;
    let caller = header_value(request, "P-Asserted-Identity")
        .and_then(uri_user)
        .or_else(|| uri_user(from));
    let call_infos: Vec<String> = request
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Call-Info"))
        .map(|h| h.value().to_owned())
        .collect();
    let conversation = call_infos
        .iter()
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            item.to_ascii_lowercase()
                .contains("purpose=dec112-callid")
                .then(|| addr_spec(item))
                .flatten()
        });
    let resource_priority = resource_priority(request);
    Ok(TextIngress {
        service,
        caller,
        peer: conversation.unwrap_or_else(|| reply_to.clone()),
        reply_to,
        trunk: uri_param(&uri, "trunk"),
        content_type: header_value(request, "Content-Type")
            .unwrap_or("")
            .to_owned(),
        body: request.body.clone(),
        call_infos,
        resource_priority,
        call_id: header_value(request, "Call-ID").unwrap_or("").to_owned(),
    })
}

/// The RFC 4412 `esnet` level a request asks in its Resource-Priority, if any.
fn resource_priority(request: &Request) -> Option<u8> {
    header_value(request, "Resource-Priority").and_then(|v| {
        v.split(',').find_map(|p| {
            let (ns, level) = p.trim().split_once('.')?;
            ns.eq_ignore_ascii_case("esnet")
                .then(|| level.parse::<u8>().ok())?
        })
    })
}

fn uri_param(uri: &str, name: &str) -> Option<String> {
    uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.split('?').next().unwrap_or(v).trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    fn invite(uri: &str, extra: &str, content_type: &str, body: &str) -> Request {
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: <sip:0601020304@127.0.0.1>;tag=a\r\nTo: <{uri}>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match SipMessage::try_from(text.as_bytes()).expect("valid") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n";

    fn message(uri: &str, extra: &str, body: &str) -> Request {
        let text = format!(
            "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2\r\nFrom: \"Caller\" <sip:+33612345678@127.0.0.1:5070>;tag=a\r\nTo: <{uri}>\r\nCall-ID: m@y\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n{extra}Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match SipMessage::try_from(text.as_bytes()).expect("valid") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn a_message_to_an_emergency_number_says_who_wrote_and_where_replies_go() {
        let read = read_message(&message("sip:112@127.0.0.1;trunk=sms-gw", "", "Au feu")).unwrap();
        assert_eq!(read.service, Service::Sos);
        assert_eq!(read.caller.as_deref(), Some("+33612345678"));
        assert_eq!(read.reply_to, "sip:+33612345678@127.0.0.1:5070");
        assert_eq!(read.peer, read.reply_to);
        assert_eq!(read.trunk.as_deref(), Some("sms-gw"));
        assert_eq!(read.body, b"Au feu");
        let dec112 = "Call-Info: <urn:dec112:uid:callid:c-7:service.dec112.at>; purpose=dec112-CallId\r\nCall-Info: <urn:dec112:uid:msgtype:1:service.dec112.at>; purpose=dec112-MsgType\r\n";
        let read = read_message(&message("sip:18@127.0.0.1", dec112, "")).unwrap();
        assert_eq!(read.peer, "urn:dec112:uid:callid:c-7:service.dec112.at");
        assert_eq!(read.call_infos.len(), 2);
        assert_eq!(
            read_message(&message("sip:bob@127.0.0.1", "", "x"))
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn emergency_numbers_and_urns_are_recognised() {
        for (uri, service) in [
            ("sip:18@127.0.0.1", Service::Fire),
            ("sip:112@127.0.0.1;user=phone", Service::Sos),
            ("tel:112", Service::Sos),
            ("urn:service:sos", Service::Sos),
            ("URN:Service:SOS.Fire", Service::Fire),
            ("18", Service::Fire),
        ] {
            assert_eq!(service_of(uri), Some(service), "{uri}");
        }
        for uri in [
            "sip:0601020304@127.0.0.1",
            "sip:1812@x",
            "urn:service:counseling",
            "sip:@x",
        ] {
            assert_eq!(service_of(uri), None, "{uri}");
        }
    }

    #[test]
    fn caller_comes_from_p_asserted_identity_first() {
        let r = invite(
            "sip:18@127.0.0.1;trunk=ingress-13",
            "P-Asserted-Identity: \"Jean\" <sip:+33491000000@operator.fr>\r\nCall-Info: <urn:emergency:uid:callid:abc:bcf.fr>;purpose=emergency-CallId\r\nResource-Priority: esnet.1\r\n",
            "application/sdp",
            SDP,
        );
        let ingress = read_invite(&r).expect("served");
        assert_eq!(ingress.caller.as_deref(), Some("+33491000000"));
        assert_eq!(ingress.trunk.as_deref(), Some("ingress-13"));
        assert_eq!(ingress.service, Service::Fire);
        assert_eq!(
            ingress.upstream_call_id.as_deref(),
            Some("urn:emergency:uid:callid:abc:bcf.fr")
        );
        assert_eq!(ingress.resource_priority, Some(1));
        assert!(ingress.locations.is_empty());
    }

    #[test]
    fn multipart_with_pidf_gives_sdp_and_location() {
        let pidf = include_str!("../../../examples/pidf-marseille.xml");
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc@caller>\r\n\r\n{pidf}\r\n--b1--\r\n"
        );
        let r = invite(
            "urn:service:sos.fire",
            "Geolocation: <cid:loc@caller>\r\n",
            "multipart/mixed;boundary=b1",
            &body,
        );
        let ingress = read_invite(&r).expect("served");
        assert!(String::from_utf8_lossy(&ingress.sdp).starts_with("v=0"));
        assert_eq!(ingress.locations.len(), 1);
        assert_eq!(ingress.location_problem, None);
    }

    #[test]
    fn a_bad_location_is_noted_and_the_call_still_served() {
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n<presence><broken\r\n--b1--\r\n"
        );
        let r = invite("sip:112@x", "", "multipart/mixed; boundary=\"b1\"", &body);
        let ingress = read_invite(&r).expect("served");
        assert!(ingress.locations.is_empty());
        assert!(ingress.location_problem.is_some());
    }

    #[test]
    fn refusals_carry_the_right_status() {
        assert_eq!(
            read_invite(&invite("sip:0601@x", "", "application/sdp", SDP))
                .unwrap_err()
                .code,
            404
        );
        // An emergency INVITE with a body it cannot use is still read: it reaches the core.
        let unusable = |content_type: &str, body: &str| {
            let ingress = read_invite(&invite("sip:18@x", "", content_type, body))
                .expect("an emergency call is read whatever its body");
            assert!(ingress.sdp.is_empty());
            ingress.unusable.expect("a refusal").code
        };
        assert_eq!(unusable("text/plain", "hello"), 415);
        assert_eq!(unusable("application/sdp", ""), 488);
        let only_pidf = "--b1\r\nContent-Type: application/pidf+xml\r\n\r\n<x/>\r\n--b1--\r\n";
        assert_eq!(unusable("multipart/mixed;boundary=b1", only_pidf), 488);
        assert_eq!(unusable("application/sdp", &"v".repeat(MAX_BODY + 1)), 413);
        assert!(
            read_invite(&invite("sip:18@x", "", "application/sdp", SDP))
                .expect("served")
                .unusable
                .is_none()
        );
    }
}
