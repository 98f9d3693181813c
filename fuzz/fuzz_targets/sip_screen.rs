//! A UDP datagram as it reaches the platform: screened, repaired (bytes that are not UTF-8),
//! given a Contact from its source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secourir_sip::screen;

fuzz_target!(|data: &[u8]| {
    let _ = screen::screen(data);
    if let Some(repaired) = screen::repair(data, 65_536) {
        let _ = screen::screen(&repaired);
    }
    let _ = screen::add_contact(data, "192.0.2.1:5060".parse().expect("address"));
});
