//! Audio files: the shipped announcements are telephone audio; a crash's recording is mended.

use super::*;

#[test]
fn the_shipped_announcements_are_telephone_audio() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../announcements");
    for name in ["attente", "crise", "occupe"] {
        let audio = Audio::from_wav(&dir.join(format!("{name}.wav"))).unwrap();
        let ms = audio.duration_ms();
        assert!((2_000..=15_000).contains(&ms), "{name}: {ms} ms");
        let rms = (audio
            .samples()
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / audio.samples().len() as f64)
            .sqrt();
        assert!(rms > 500.0, "{name} is nearly silent");
        assert!(
            std::fs::read_to_string(dir.join(format!("{name}.txt")))
                .unwrap()
                .starts_with("Sapeurs-pompiers.")
        );
    }
}

#[test]
fn a_recording_cut_by_a_crash_is_mended_to_play_what_was_written() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("call-1.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).expect("create");
    for i in 0..16_000i32 {
        writer.write_sample((i % 100) as i16).expect("sample");
    }
    writer.flush().expect("flush");
    // A crash: the writer never finishes, and leaves sizes that say nothing was written.
    std::mem::forget(writer);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk");
    bytes[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
    bytes.push(7); // half a frame written at the moment of the crash
    std::fs::write(&path, &bytes).expect("write");
    assert!(hound::WavReader::open(&path).map_or(true, |r| r.len() == 0));

    let (recording, repaired) = crate::repair_recording(&path).expect("a WAV");
    assert!(repaired);
    assert_eq!(recording.duration_ms, 1000);
    let reader = hound::WavReader::open(&path).expect("playable");
    assert_eq!(reader.len(), 16_000);
    // A whole file is left alone.
    let (again, repaired) = crate::repair_recording(&path).expect("a WAV");
    assert!(!repaired);
    assert_eq!(again.sha256, recording.sha256);
    std::fs::write(&path, b"").expect("empty");
    assert!(crate::repair_recording(&path).is_none());
}
