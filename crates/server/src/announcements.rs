//! The announcements the platform plays, read at start: the shipped ones, or a directory's
//! files in their place.

use crate::*;

pub(crate) fn wav_samples(name: &str, bytes: &[u8]) -> Result<Audio, ServeError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| {
        ServeError::Announcement {
            name: name.into(),
            reason: e.to_string(),
        }
    })?;
    let spec = reader.spec();
    if spec.sample_rate != 8000 || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(ServeError::Announcement {
            name: name.into(),
            reason: "must be 8 kHz mono 16-bit PCM".into(),
        });
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(|e| ServeError::Announcement {
            name: name.into(),
            reason: e.to_string(),
        })?;
    Ok(Audio::from_samples(samples))
}

pub(crate) fn load_announcements(
    plan: &Plan,
    dir: Option<&PathBuf>,
) -> Result<Vec<Option<Arc<Audio>>>, ServeError> {
    plan.announcements
        .iter()
        .map(|a| {
            let Some(file) = &a.file else {
                return Ok(None);
            };
            if let Some(dir) = dir {
                let path = dir.join(file);
                let bytes = std::fs::read(&path).map_err(|e| ServeError::Announcement {
                    name: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                return wav_samples(file, &bytes).map(|a| Some(Arc::new(a)));
            }
            match SHIPPED_ANNOUNCEMENTS.iter().find(|(name, _)| name == file) {
                Some((name, bytes)) => wav_samples(name, bytes).map(|a| Some(Arc::new(a))),
                None => Err(ServeError::Announcement {
                    name: file.clone(),
                    reason: "not shipped with the platform; pass --announcements DIR".into(),
                }),
            }
        })
        .collect()
}
