//! Tests of the screen: what passes, what is repaired, and the right 4xx for the rest.

use proptest::prelude::*;

use super::*;

const INVITE: &str = "INVITE sip:18@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: <sip:0601020304@127.0.0.1>;tag=a\r\nTo: <sip:18@127.0.0.1>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

fn status(v: &Verdict) -> Option<(u16, String)> {
    match v {
        Verdict::Reply { response, code } => {
            Some((*code, String::from_utf8_lossy(response).into_owned()))
        }
        _ => None,
    }
}

#[test]
fn a_whole_invite_passes() {
    assert_eq!(screen(INVITE.as_bytes()), Verdict::Pass);
}

#[test]
fn a_truncated_body_gets_400_with_the_dialog_identifiers() {
    let truncated = INVITE.replace("Content-Length: 4", "Content-Length: 400");
    let (code, text) = status(&screen(truncated.as_bytes())).expect("a reply");
    assert_eq!(code, 400);
    assert!(text.starts_with("SIP/2.0 400 Bad Request - body shorter"));
    assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"));
    assert!(text.contains("Call-ID: x@y\r\n"));
    assert!(text.contains("CSeq: 1 INVITE\r\n"));
    assert!(text.contains("To: <sip:18@127.0.0.1>;tag="));
    // The reply must itself be valid SIP.
    assert!(matches!(
        SipMessage::try_from(text.as_bytes()),
        Ok(SipMessage::Response(_))
    ));
}

#[test]
fn an_invite_cut_in_its_headers_gets_400() {
    let cut = &INVITE.as_bytes()[..150];
    let (code, _) = status(&screen(cut)).expect("a reply");
    assert_eq!(code, 400);
}

#[test]
fn a_request_without_call_id_gets_400() {
    let no_call_id = INVITE.replace("Call-ID: x@y\r\n", "");
    let (code, text) = status(&screen(no_call_id.as_bytes())).expect("a reply");
    assert_eq!(code, 400);
    assert!(text.contains("missing Call-ID"));
}

#[test]
fn an_unknown_method_gets_501() {
    let odd = INVITE.replacen("INVITE sip", "FROBNICATE sip", 1);
    let (code, _) = status(&screen(odd.as_bytes())).expect("a reply");
    assert_eq!(code, 501);
}

#[test]
fn garbage_is_dropped_without_answer() {
    assert!(matches!(screen(b"\x00\x01\x02garbage"), Verdict::Drop(_)));
    assert!(matches!(
        screen(b"GET / HTTP/1.1\r\n\r\n"),
        Verdict::Drop(_)
    ));
}

#[test]
fn an_oversized_request_gets_513() {
    let mut big = INVITE.replace("Content-Length: 4", "Content-Length: 20000");
    big.push_str(&"x".repeat(20_000));
    let (code, _) = status(&screen(big.as_bytes())).expect("a reply");
    assert_eq!(code, 513);
}

fn latin1_invite() -> Vec<u8> {
    INVITE
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nSubject: fum#e\r\nP-Asserted-Identity: \"Ren#\" <sip:0611223344@x>\r\n",
        )
        .bytes()
        .map(|b| if b == b'#' { 0xE9 } else { b })
        .collect()
}

#[test]
fn a_latin1_header_is_repaired_and_every_header_after_it_kept() {
    let invite = latin1_invite();
    // Without repair the stack stops at the Subject and loses the Content-Length.
    let SipMessage::Request(broken) = SipMessage::try_from(invite.as_slice()).expect("parses")
    else {
        unreachable!()
    };
    assert!(broken.body.is_empty());
    let repaired = repair(&invite, MAX_UDP_MESSAGE).expect("repaired");
    assert_eq!(screen(&repaired), Verdict::Pass);
    let SipMessage::Request(request) = SipMessage::try_from(repaired.as_slice()).expect("parses")
    else {
        unreachable!()
    };
    assert_eq!(request.body, b"v=0\n");
    let text = String::from_utf8(repaired).expect("UTF-8 now");
    assert!(text.contains("Subject: fumée\r\n"), "{text}");
    assert!(text.contains("\"René\""), "{text}");
    assert!(
        text.contains(
            "X-Secourir-Repaired: Subject, P-Asserted-Identity (read as Latin-1)\r\n\r\n"
        ),
        "{text}"
    );
}

#[test]
fn a_clean_request_is_left_alone_and_a_forged_note_removed() {
    assert_eq!(repair(INVITE.as_bytes(), MAX_UDP_MESSAGE), None);
    let forged = INVITE.replace("CSeq", "x-secourir-repaired : lies\r\nCSeq");
    let repaired = repair(forged.as_bytes(), MAX_UDP_MESSAGE).expect("note removed");
    assert_eq!(repaired, INVITE.as_bytes());
}

#[test]
fn an_invite_without_contact_gets_the_source_address() {
    let source: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
    let with = add_contact(INVITE.as_bytes(), source).expect("added");
    let text = String::from_utf8(with).expect("UTF-8");
    assert!(
        text.contains("\r\nContact: <sip:127.0.0.1:5070>\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nv=0\n"), "{text}");
    assert_eq!(screen(text.as_bytes()), Verdict::Pass);
    assert_eq!(add_contact(text.as_bytes(), source), None);
    let options = INVITE.replacen("INVITE sip", "OPTIONS sip", 1);
    assert_eq!(add_contact(options.as_bytes(), source), None);
}

#[test]
fn a_repair_that_would_not_fit_keeps_the_length() {
    let invite = latin1_invite();
    let repaired = repair(&invite, invite.len()).expect("repaired");
    assert_eq!(repaired.len(), invite.len());
    assert!(
        String::from_utf8(repaired)
            .expect("UTF-8")
            .contains("Subject: fum?e")
    );
}

proptest! {
    #[test]
    fn repair_never_panics_and_always_yields_utf8_headers(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Some(out) = repair(&bytes, MAX_UDP_MESSAGE) {
            let (head, _) = head(&out);
            prop_assert!(std::str::from_utf8(head).is_ok());
        }
    }

    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = screen(&bytes);
    }

    #[test]
    fn never_panics_on_a_cut_or_mutated_invite(cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        let mut bytes = INVITE.as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.min(bytes.len()));
        let _ = screen(&bytes);
    }
}
