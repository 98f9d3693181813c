//! An SDP offer, and the codec chosen from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = secourir_media::sdp::parse(data) {
        let _ = secourir_media::sdp::choose(&offer);
    }
});
