//! What a SIP MESSAGE (RFC 3428) brings: the caller's text, their position, the DEC112 message
//! type; or why it cannot be read, with the status its sender gets.

use secourir_location::{PidfLocation, parse_sip_body, sip_body_part};

/// Longest text taken in one message: a page of writing, far above an SMS (160 characters) or a
/// DEC112 chat line, and under what a MESSAGE over UDP should carry.
pub const MAX_TEXT_BYTES: usize = 4_096;

/// The DEC112 / ETSI TS 103 698 message type of a chat message, from its `Call-Info` header
/// with `purpose=dec112-MsgType` (`<urn:dec112:uid:msgtype:N:…>`): bit 1 starts the
/// conversation, bit 4 stops it. A peer that sends none writes ordinary messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kind {
    /// The caller's app opens the conversation.
    pub start: bool,
    /// The caller's app ends it.
    pub stop: bool,
}

/// The message type the `Call-Info` header values give.
pub fn kind_of<'a>(call_infos: impl IntoIterator<Item = &'a str>) -> Kind {
    let mut kind = Kind::default();
    for value in call_infos {
        for entry in value.split(',') {
            if !entry
                .to_ascii_lowercase()
                .contains("purpose=dec112-msgtype")
            {
                continue;
            }
            let bits = entry
                .split("msgtype:")
                .nth(1)
                .and_then(|rest| rest.split([':', '>']).next())
                .and_then(|n| n.trim().parse::<u32>().ok())
                .unwrap_or(0);
            kind.start |= bits & 1 != 0;
            kind.stop |= bits & 4 != 0;
        }
    }
    kind
}

/// A message read.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// What the caller wrote; none in a message that carries only a position or a start.
    pub text: Option<String>,
    /// Positions carried by value (PIDF-LO), in document order.
    pub locations: Vec<PidfLocation>,
    /// Why a position that was sent could not be used.
    pub location_problem: Option<String>,
}

/// Why a message body cannot be read, and the answer its sender gets. The message still
/// counts: its conversation is opened or goes on, and the transcript says what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unreadable {
    /// SIP status.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
}

const fn unreadable(code: u16, reason: &'static str) -> Unreadable {
    Unreadable { code, reason }
}

/// Reads a MESSAGE body of type `content_type`: `text/plain` in UTF-8, or a multipart body
/// with a `text/plain` part and a PIDF-LO, or a PIDF-LO alone.
pub fn read_message(content_type: &str, body: &[u8]) -> Result<Message, Unreadable> {
    if body.len() > secourir_location::MAX_SIP_BODY_BYTES {
        return Err(unreadable(513, "Message Too Large"));
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text_part = match media.as_str() {
        "" if body.is_empty() => None,
        "text/plain" => Some((content_type, body)),
        "application/pidf+xml" => None,
        "multipart/mixed" | "multipart/related" => {
            match sip_body_part(content_type, body, "text/plain") {
                Ok(Some(part)) => Some(("text/plain", part)),
                Ok(None) => None,
                Err(_) => return Err(unreadable(400, "Bad Request - multipart body unreadable")),
            }
        }
        _ => {
            return Err(unreadable(
                415,
                "Unsupported Media Type - text/plain in UTF-8, with a PIDF-LO if any",
            ));
        }
    };
    let text = match text_part {
        None => None,
        Some((part_type, bytes)) => Some(read_text(part_type, bytes)?),
    };
    let (locations, location_problem) = match media.as_str() {
        "application/pidf+xml" | "multipart/mixed" | "multipart/related" => {
            match parse_sip_body(content_type, body) {
                Ok(locations) => (locations, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        }
        _ => (Vec::new(), None),
    };
    Ok(Message {
        text: text.filter(|t| !t.trim().is_empty()),
        locations,
        location_problem,
    })
}

fn read_text(content_type: &str, bytes: &[u8]) -> Result<String, Unreadable> {
    let charset = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase());
    if charset
        .as_deref()
        .is_some_and(|c| c != "utf-8" && c != "utf8" && c != "us-ascii")
    {
        return Err(unreadable(415, "Unsupported Media Type - UTF-8 text only"));
    }
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(unreadable(513, "Message Too Large"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| unreadable(415, "Unsupported Media Type - the text is not UTF-8"))?;
    // Control characters other than line breaks and tabs are dropped: they would only garble
    // the console.
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    // Line breaks a phone or a gateway adds at the end are no part of what the caller wrote.
    Ok(kept.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PIDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
  xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0"
  entity="pres:caller@example.org">
  <tuple id="t1"><status><gp:geopriv><gp:location-info>
    <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">
      <gml:pos>43.2965 5.3698</gml:pos>
      <gs:radius uom="urn:ogc:def:uom:EPSG::9001">30</gs:radius>
    </gs:Circle>
  </gp:location-info></gp:geopriv></status></tuple>
</presence>"#;

    #[test]
    fn plain_text_is_read() {
        let m = read_message("text/plain;charset=UTF-8", "Au feu, 3e étage".as_bytes()).unwrap();
        assert_eq!(m.text.as_deref(), Some("Au feu, 3e étage"));
        assert!(m.locations.is_empty());
    }

    #[test]
    fn text_and_position_come_together_in_a_multipart_body() {
        let body = format!(
            "--b1\r\nContent-Type: text/plain\r\n\r\nJe ne peux pas parler\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n{PIDF}\r\n--b1--\r\n"
        );
        let m = read_message("multipart/mixed;boundary=b1", body.as_bytes()).unwrap();
        assert_eq!(m.text.as_deref(), Some("Je ne peux pas parler"));
        assert_eq!(m.locations.len(), 1);
    }

    #[test]
    fn what_is_not_utf8_text_is_refused_with_its_status() {
        assert_eq!(
            read_message("text/plain", &[0xff, 0xfe]).unwrap_err().code,
            415
        );
        assert_eq!(read_message("image/png", b"\x89PNG").unwrap_err().code, 415);
        assert_eq!(
            read_message("text/plain;charset=iso-8859-1", b"caf\xe9")
                .unwrap_err()
                .code,
            415
        );
        let long = vec![b'a'; MAX_TEXT_BYTES + 1];
        assert_eq!(read_message("text/plain", &long).unwrap_err().code, 513);
    }

    #[test]
    fn the_dec112_message_type_says_start_and_stop() {
        let start = "<urn:dec112:uid:msgtype:1:service.dec112.at>; purpose=dec112-MsgType";
        let chat = "<urn:dec112:uid:msgtype:2:service.dec112.at>; purpose=dec112-MsgType";
        let stop = "<urn:dec112:uid:msgtype:4:service.dec112.at>;purpose=dec112-MsgType";
        let callid = "<urn:dec112:uid:callid:7:service.dec112.at>; purpose=dec112-CallId";
        assert_eq!(
            kind_of([callid, start]),
            Kind {
                start: true,
                stop: false
            }
        );
        assert_eq!(kind_of([chat]), Kind::default());
        assert_eq!(
            kind_of([stop]),
            Kind {
                start: false,
                stop: true
            }
        );
        assert_eq!(kind_of(["<urn:x>;purpose=dec112-MsgType"]), Kind::default());
    }

    proptest! {
        #[test]
        fn no_body_makes_the_reader_panic(
            content_type in "(text/plain|multipart/mixed;boundary=b|application/pidf\\+xml|[a-z/;=]{0,20})",
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let _ = read_message(&content_type, &body);
        }
    }
}
