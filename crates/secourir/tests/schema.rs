//! Schemathesis against the platform's OpenAPI document: every operation is called with
//! generated inputs, valid and not, as the API token and as a room supervisor's session, and
//! every answer is checked against what the document says (status codes, content types,
//! bodies, refusals of what it forbids, acceptance of what it allows, authentication).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const SCHEMATHESIS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/tools/schemathesis-4.32.5/bin/st"
);
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    assert!(
        Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run scripts/setup (it installs schemathesis 4.32.5)"
    );
    let platform = Platform::start();
    let cookie = session(&platform, "chef-13");
    // A fixed seed: the same cases every run, so that a failure is the code's, not the draw's.
    // SCHEMATHESIS_EXAMPLES raises the count for a longer run.
    let examples = env_number("SCHEMATHESIS_EXAMPLES", 50u32).to_string();
    let seed = env_number("SCHEMATHESIS_SEED", 1u64).to_string();
    let output = Command::new(SCHEMATHESIS)
        .current_dir(platform.dir.path())
        .args(["--config-file", CONFIG, "--no-color", "run"])
        .arg(platform.url("/api/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["-H", &format!("Cookie: {cookie}")])
        .args(["--max-examples", &examples, "--seed", &seed])
        // One worker: Hypothesis parses Python source with `ast` while it describes a case, and
        // CPython 3.11's parser fails now and then when two threads do that at once ("AST
        // constructor recursion depth mismatch"), which is the tool's error, not the API's.
        .args(["--workers", "1"])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = report
        .lines()
        .rev()
        .find(|l| l.contains(" in ") && l.starts_with('='))
        .unwrap_or("");
    let cases = report
        .lines()
        .find(|l| {
            l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated")
        })
        .unwrap_or("")
        .trim();
    println!("schemathesis: {cases}; {summary}");
    assert!(output.status.success(), "{report}");
    let health = platform.get("/api/health");
    assert!(health.is_object(), "the platform did not survive: {health}");
    let log = platform.full_log();
    assert!(!log.contains("panicked"), "{log}");
}
