//! The log on disk: appended, reopened, repaired after a crash, refused when broken; the key file.

// The other tests use the rest of the helpers.
#[allow(dead_code)]
mod support;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;

use secourir_audit::*;
use support::{events, key, other_key};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_log_reopened_goes_on_with_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let events = events();
    {
        let mut writer = Writer::open(&path, key()).unwrap();
        assert_eq!(writer.head(), None);
        assert_eq!(writer.repair(), None);
        writer.append(&events[0]).unwrap();
        writer.append_batch(&events[1..4]).unwrap();
        assert_eq!(writer.head().unwrap().seq, 4);
    }
    assert_eq!(mode(&path), 0o600, "the log holds callers' numbers");
    let mut writer = Writer::open(&path, key()).unwrap();
    assert_eq!(writer.head().unwrap().seq, 4);
    assert_eq!(writer.repair(), None);
    let line = writer.append(&events[4]).unwrap();
    assert_eq!(read_line(line.as_bytes(), &key().public()).unwrap().seq, 5);
    assert_eq!(writer.len_bytes(), fs::metadata(&path).unwrap().len());
    let report = verify_file(&path, &writer.public_key()).unwrap();
    assert_eq!(report.events, 5);
    assert_eq!(report.head.as_ref(), writer.head());
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let _first = Writer::open(&path, key()).unwrap();
    assert!(matches!(
        Writer::open(&path, key()),
        Err(OpenError::Locked(_))
    ));
}

fn log_of(count: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut writer = Writer::open(&path, key()).unwrap();
    writer.append_batch(&events()[..count]).unwrap();
    (dir, path)
}

fn cut_to(path: &std::path::Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
    let (_dir, path) = log_of(3);
    let whole = fs::read(&path).unwrap();
    let torn_at = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap() as u64
        + 1;
    cut_to(&path, torn_at + 40);
    match verify_file(&path, &key().public()) {
        Err(VerifyFileError::Broken(b)) => {
            assert_eq!((b.line, b.kind), (3, BrokenKind::Truncated));
        }
        other => panic!("{other:?}"),
    }
    let mut writer = Writer::open(&path, key()).unwrap();
    assert_eq!(
        writer.repair(),
        Some(&Repair::Cut {
            offset: torn_at,
            bytes: 40
        })
    );
    assert_eq!(writer.head().unwrap().seq, 2);
    writer.append(&events()[5]).unwrap();
    let report = verify_file(&path, &key().public()).unwrap();
    assert_eq!(report.events, 3);
    assert_eq!(report.by_type["RecCallEndLogEvent"], 1);
}

#[test]
fn garbage_after_a_crash_is_cut_too() {
    let (_dir, path) = log_of(2);
    let len = fs::metadata(&path).unwrap().len();
    // A file system that extended the file but never wrote the data shows zeros.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 300]))
        .unwrap();
    let writer = Writer::open(&path, key()).unwrap();
    assert_eq!(
        writer.repair(),
        Some(&Repair::Cut {
            offset: len,
            bytes: 300
        })
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
}

#[test]
fn a_whole_last_line_short_of_its_newline_is_completed() {
    let (_dir, path) = log_of(3);
    let len = fs::metadata(&path).unwrap().len();
    cut_to(&path, len - 1);
    let mut writer = Writer::open(&path, key()).unwrap();
    assert_eq!(writer.repair(), Some(&Repair::Completed { seq: 3 }));
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    writer.append(&events()[3]).unwrap();
    assert_eq!(verify_file(&path, &key().public()).unwrap().events, 4);
}

#[test]
fn a_broken_last_line_is_refused() {
    let (_dir, path) = log_of(3);
    let mut text = fs::read(&path).unwrap();
    let position = text.len() - 20;
    text[position] ^= 0x01;
    fs::write(&path, &text).unwrap();
    match Writer::open(&path, key()) {
        Err(OpenError::BrokenLastLine { error, .. }) => {
            assert!(matches!(
                error,
                LineError::NotJws(_) | LineError::BadSignature
            ));
        }
        other => panic!("{other:?}"),
    }
    // An empty line after the last event is no crash's doing either.
    text[position] ^= 0x01;
    text.push(b'\n');
    fs::write(&path, &text).unwrap();
    assert!(matches!(
        Writer::open(&path, key()),
        Err(OpenError::BrokenLastLine { .. })
    ));
}

#[test]
fn a_log_of_another_key_is_refused() {
    let (_dir, path) = log_of(2);
    match Writer::open(&path, other_key()) {
        Err(OpenError::BrokenLastLine {
            error: LineError::OtherKey { kid },
            ..
        }) => assert_eq!(kid, key().public().thumbprint()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_too_large_is_refused_and_the_chain_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut writer = Writer::open(&path, key()).unwrap();
    writer.append(&events()[0]).unwrap();
    let mut huge = events()[0].clone();
    huge.body = Body::Message(Message {
        direction: Direction::Incoming,
        text: "x".repeat(MAX_LINE_BYTES),
    });
    assert!(matches!(
        writer.append_batch(&[events()[1].clone(), huge]),
        Err(WriteError::TooLarge { .. })
    ));
    assert_eq!(writer.head().unwrap().seq, 1, "all or none");
    writer.append(&events()[1]).unwrap();
    assert_eq!(verify_file(&path, &key().public()).unwrap().events, 2);
}

#[test]
fn the_key_file_is_made_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let made = load_or_create_key_file(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::metadata(&path).unwrap().len(), 32);
    let again = load_or_create_key_file(&path).unwrap();
    assert_eq!(again.public(), made.public());
    assert_eq!(read_key_file(&path).unwrap().public(), made.public());
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        load_or_create_key_file(&path),
        Err(KeyError::Exposed { mode: 0o640, .. })
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
    assert!(matches!(
        read_key_file(&path),
        Err(KeyError::Exposed { .. })
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&path, [1u8; 31]).unwrap();
    assert!(matches!(
        read_key_file(&path),
        Err(KeyError::WrongLength { bytes: 31, .. })
    ));
    // Debug never shows the secret.
    assert!(format!("{made:?}").starts_with("SecretKey(kid "));
}
