//! An INVITE the SIP stack could parse, read for the emergency call it places: service,
//! caller, trunk, SDP, locations by value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = rsipstack::sip::Request::try_from(data) {
        let _ = secourir_sip::ingress::read_invite(&request);
    }
});
