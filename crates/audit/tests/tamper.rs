//! A log changed by hand: one byte anywhere, a line removed, two swapped, a line moved or
//! repeated, a line from another chain or key, its end cut. `verify` names the first line
//! touched and what was done to it.

mod support;

use proptest::prelude::*;
use secourir_audit::*;
use support::{key, log, other_key};

fn public() -> PublicKey {
    key().public()
}

fn as_text(lines: &[String]) -> Vec<u8> {
    let mut text = Vec::new();
    for line in lines {
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    text
}

/// The lines of a log file's bytes as a reader of lines sees them.
fn lines_of(text: &[u8]) -> Vec<&[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    body.split(|&b| b == b'\n').collect()
}

/// The line (from 1) that holds byte `position`, its newline included.
fn line_at(text: &[u8], position: usize) -> u64 {
    text[..position].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

fn broken(lines: &[impl AsRef<[u8]>]) -> Broken {
    verify(lines, &public()).expect_err("the log was touched")
}

/// Replaces byte `position` of a small log by `byte` and checks that `verify` names its line.
fn check_one_byte(text: &[u8], position: usize, byte: u8) -> Result<(), TestCaseError> {
    let mut changed = text.to_vec();
    changed[position] = byte;
    let found = broken(&lines_of(&changed));
    prop_assert_eq!(
        (found.line, found.kind),
        (line_at(text, position), BrokenKind::Changed),
        "byte {} ({:?}) set to {:?}: {}",
        position,
        text[position] as char,
        byte as char,
        found
    );
    Ok(())
}

#[test]
fn one_byte_changed_anywhere_names_its_line() {
    let text = as_text(&log(4));
    for position in 0..text.len() {
        let original = text[position];
        let mut bytes = vec![original ^ 0x01, original ^ 0x80, b'.'];
        if original != b'\n' {
            bytes.push(b'\n');
        }
        for byte in bytes.into_iter().filter(|&b| b != original) {
            check_one_byte(&text, position, byte).unwrap();
        }
    }
}

proptest! {
    #[test]
    fn any_byte_set_to_any_value_names_its_line(position in 0usize..10_000, byte in any::<u8>()) {
        let text = as_text(&log(5));
        let position = position % text.len();
        prop_assume!(text[position] != byte);
        check_one_byte(&text, position, byte)?;
    }
}

#[test]
fn one_event_removed_is_named_where_it_is_missing() {
    let lines = log(9);
    // The last line has no successor to show its absence: see the head test below.
    for removed in 0..lines.len() - 1 {
        let mut touched = lines.clone();
        touched.remove(removed);
        let found = broken(&touched);
        assert_eq!(
            (found.line, found.kind),
            (removed as u64 + 1, BrokenKind::Removed),
            "line {} removed: {found}",
            removed + 1
        );
        assert_eq!(found.seq, Some(removed as u64 + 2));
    }
}

#[test]
fn several_events_removed_are_named_together() {
    let mut lines = log(9);
    lines.drain(3..6);
    let found = broken(&lines);
    assert_eq!((found.line, found.kind), (4, BrokenKind::Removed));
    assert!(found.reason.contains("4..=6"), "{}", found.reason);
}

#[test]
fn events_cut_off_the_end_show_against_a_head_kept_elsewhere() {
    let lines = log(9);
    let head = verify(&lines, &public()).unwrap().head.unwrap();
    let cut = &lines[..7];
    assert!(
        verify(cut, &public()).is_ok(),
        "the chain alone cannot tell"
    );
    let mut verifier = Verifier::new(&public()).expect_head(head.clone());
    for line in cut {
        verifier.push(line.as_bytes()).unwrap();
    }
    let found = verifier.finish().unwrap_err();
    assert_eq!((found.line, found.kind), (8, BrokenKind::Removed));
    let mut whole = Verifier::new(&public()).expect_head(head);
    for line in &lines {
        whole.push(line.as_bytes()).unwrap();
    }
    assert!(whole.finish().is_ok());
}

#[test]
fn two_events_swapped_are_named_at_the_first() {
    let lines = log(8);
    for first in 0..lines.len() {
        for second in first + 1..lines.len() {
            let mut touched = lines.clone();
            touched.swap(first, second);
            let found = broken(&touched);
            assert_eq!(
                (found.line, found.kind),
                (first as u64 + 1, BrokenKind::Reordered),
                "lines {} and {} swapped: {found}",
                first + 1,
                second + 1
            );
        }
    }
}

#[test]
fn an_event_moved_or_repeated_is_reordered() {
    let lines = log(8);
    let mut later = lines.clone();
    let moved = later.remove(2);
    later.push(moved);
    let found = broken(&later);
    assert_eq!(
        (found.line, found.kind),
        (3, BrokenKind::Reordered),
        "{found}"
    );

    let mut earlier = lines.clone();
    let moved = earlier.remove(6);
    earlier.insert(1, moved);
    let found = broken(&earlier);
    assert_eq!(
        (found.line, found.kind),
        (2, BrokenKind::Reordered),
        "{found}"
    );

    let mut repeated = lines.clone();
    repeated.insert(5, lines[4].clone());
    let found = broken(&repeated);
    assert_eq!(
        (found.line, found.kind),
        (6, BrokenKind::Reordered),
        "{found}"
    );
}

#[test]
fn a_line_from_another_chain_of_the_same_key_is_changed() {
    let lines = log(8);
    // Another chain (another node sharing the key): same seq, valid signature, other history.
    let mut other = Chain::new(key());
    let foreign: Vec<String> = support::events()
        .iter()
        .rev()
        .take(8)
        .map(|e| other.sign(e))
        .collect();
    let mut touched = lines.clone();
    touched[4] = foreign[4].clone();
    let found = broken(&touched);
    assert_eq!(
        (found.line, found.kind),
        (5, BrokenKind::Changed),
        "{found}"
    );
}

#[test]
fn a_log_checked_with_another_key_is_the_wrong_key() {
    let lines = log(5);
    let found = verify(&lines, &other_key().public()).unwrap_err();
    assert_eq!(
        (found.line, found.kind),
        (1, BrokenKind::WrongKey),
        "{found}"
    );
    assert!(
        found.reason.contains(&public().thumbprint()),
        "{}",
        found.reason
    );
}

#[test]
fn a_line_signed_by_another_key_is_named() {
    let lines = log(5);
    let mut other = Chain::resume(other_key(), lines[1].as_bytes())
        .expect_err("another key's chain cannot resume ours");
    assert!(matches!(other, LineError::OtherKey { .. }));
    // Forged: another key signs what would be event 3.
    let mut forger = Chain::new(other_key());
    let forged: Vec<String> = support::events()
        .iter()
        .take(3)
        .map(|e| forger.sign(e))
        .collect();
    let mut touched = lines.clone();
    touched[2] = forged[2].clone();
    let found = broken(&touched);
    assert_eq!(
        (found.line, found.kind),
        (3, BrokenKind::WrongKey),
        "{found}"
    );
    other = LineError::BadSignature;
    assert_eq!(other.to_string(), "the signature does not match the line");
}

#[test]
fn a_truncated_last_line_is_named_by_a_reader_of_the_file() {
    let lines = log(4);
    let text = as_text(&lines);
    let last_start = text.len() - lines[3].len() - 1;
    // Cut after the last line's first byte, its middle, its last byte but one.
    for keep in [1, lines[3].len() / 2, lines[3].len() - 1] {
        let cut = &text[..last_start + keep];
        let found = match verify_reader(cut, Verifier::new(&public())) {
            Err(VerifyFileError::Broken(b)) => b,
            other => panic!("kept {keep} bytes: {other:?}"),
        };
        assert_eq!(
            (found.line, found.kind),
            (4, BrokenKind::Truncated),
            "{found}"
        );
        // Given as lines, the cut line is merely changed: nothing tells it is the last.
        let found = broken(&lines_of(cut));
        assert_eq!((found.line, found.kind), (4, BrokenKind::Changed));
    }
    // A whole last line short of its newline is a whole event.
    let report = verify_reader(&text[..text.len() - 1], Verifier::new(&public())).unwrap();
    assert_eq!(report.events, 4);
}

#[test]
fn an_empty_log_verifies_and_an_empty_line_does_not() {
    let report = verify(Vec::<String>::new(), &public()).unwrap();
    assert_eq!((report.events, report.head), (0, None));
    let mut lines = log(3);
    lines.insert(1, String::new());
    let found = broken(&lines);
    assert_eq!((found.line, found.kind), (2, BrokenKind::Changed));
}

#[test]
fn a_verifier_repeats_the_first_break() {
    let mut lines = log(5);
    lines.remove(1);
    let mut verifier = Verifier::new(&public());
    verifier.push(lines[0].as_bytes()).unwrap();
    verifier.push(lines[1].as_bytes()).unwrap();
    // Garbage after a gap: the gap, earlier, is the first break.
    let first = verifier.push(b"garbage").unwrap_err();
    assert_eq!((first.line, first.kind), (2, BrokenKind::Removed));
    assert_eq!(verifier.push(lines[2].as_bytes()).unwrap_err(), first);
    assert_eq!(verifier.finish().unwrap_err(), first);
}
