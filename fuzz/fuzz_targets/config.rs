//! A national configuration file: refused with its line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secourir_config::{Departement, Plan};

const TERRITORY: &[Departement<'static>] = &[
    Departement {
        code: "13",
        population: 2_000_000,
    },
    Departement {
        code: "83",
        population: 1_000_000,
    },
    Departement {
        code: "84",
        population: 500_000,
    },
];

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Plan::from_toml(text, TERRITORY);
    }
});
