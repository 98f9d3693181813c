//! What the HTTP API reads from a query string besides JSON (which serde reads): the `since`
//! span of the call list.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = secourir_store::parse_since(text);
    }
});
