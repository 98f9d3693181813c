//! Bytes of a SIP connection over TCP, framed into messages by their Content-Length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = secourir_sip::stream::frame(data);
});
