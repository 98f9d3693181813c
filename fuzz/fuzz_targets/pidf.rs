//! A PIDF-LO document, alone or as a part of a multipart SIP body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = secourir_location::parse_pidf(data);
    let _ = secourir_location::parse_sip_body("multipart/mixed;boundary=b1", data);
});
