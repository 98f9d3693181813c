//! A MESSAGE the SIP stack could parse, read as a caller's text: service, caller, conversation,
//! DEC112 message type, and its body (text, a position, or why it is refused).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = rsipstack::sip::Request::try_from(data)
        && let Ok(ingress) = secourir_sip::ingress::read_message(&request)
    {
        let _ = secourir_text::kind_of(ingress.call_infos.iter().map(String::as_str));
        let _ = secourir_text::read_message(&ingress.content_type, &ingress.body);
    }
});
