//! An Advanced Mobile Location report: the SMS text and the HTTPS form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = secourir_location::parse_aml_sms(text);
    }
    let _ = secourir_location::parse_aml_https(data, None);
});
