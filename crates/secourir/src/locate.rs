//! `secourir locate`: position, PIDF-LO or AML to commune and département.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use secourir_territory::{Place, Territory};
use serde::Serialize;

/// Where to locate.
#[derive(clap::Args)]
pub struct Args {
    /// Latitude, WGS84 decimal degrees.
    #[arg(long, allow_negative_numbers = true, requires = "lon")]
    lat: Option<f64>,
    /// Longitude, WGS84 decimal degrees.
    #[arg(long, allow_negative_numbers = true, requires = "lat")]
    lon: Option<f64>,
    /// A PIDF-LO document (RFC 4119), or a SIP multipart/mixed body holding one.
    #[arg(long, conflicts_with_all = ["lat", "lon", "aml", "csv"])]
    pidf: Option<PathBuf>,
    /// An Advanced Mobile Location report: the SMS text (`A"ML=1;lt=…;lg=…;…`) or the HTTPS
    /// form (`location_latitude=…&location_longitude=…&…`).
    #[arg(long, conflicts_with_all = ["lat", "lon", "csv"])]
    aml: Option<String>,
    /// Read `lat,lon` lines on standard input, write `lat,lon,departement,insee` lines.
    #[arg(long, conflicts_with_all = ["lat", "lon"])]
    csv: bool,
}

/// The one JSON object `locate` prints.
#[derive(Debug, Serialize, PartialEq)]
struct Answer<'a> {
    departement: Option<&'a str>,
    insee: Option<&'a str>,
    commune: Option<&'a str>,
}

impl<'a> Answer<'a> {
    fn of(place: Option<&'a Place>) -> Answer<'a> {
        Answer {
            departement: place.map(|p| p.departement.as_str()),
            insee: place.and_then(|p| p.insee.as_deref()),
            commune: place.and_then(|p| p.commune.as_deref()),
        }
    }
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let territory = Territory::france();
    if args.csv {
        return match csv(territory, std::io::stdin().lock(), std::io::stdout().lock()) {
            Ok(stats) => {
                if stats.malformed > 0 {
                    eprintln!(
                        "secourir locate: {} line(s) were not `lat,lon` and got empty fields",
                        stats.malformed
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("secourir locate: {error}");
                ExitCode::from(2)
            }
        };
    }
    let place = if let (Some(lat), Some(lon)) = (args.lat, args.lon) {
        // A point off the Earth is a mistake to report, not a place outside France.
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            eprintln!(
                "secourir locate: --lat {lat} --lon {lon} is not a point on Earth (latitude -90 to 90, longitude -180 to 180)"
            );
            return ExitCode::from(2);
        }
        territory.locate(lat, lon)
    } else if let Some(path) = &args.pidf {
        match from_pidf(territory, path) {
            Ok(place) => place,
            Err(message) => {
                eprintln!("secourir locate: {}: {message}", path.display());
                return ExitCode::from(1);
            }
        }
    } else if let Some(text) = &args.aml {
        match from_aml(territory, text) {
            Ok(place) => place,
            Err(message) => {
                eprintln!("secourir locate: AML: {message}");
                return ExitCode::from(1);
            }
        }
    } else {
        eprintln!("secourir locate: give --lat and --lon, --pidf FILE, --aml TEXT or --csv");
        return ExitCode::from(2);
    };
    match serde_json::to_string(&Answer::of(place.as_ref())) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("secourir locate: {error}");
            ExitCode::from(2)
        }
    }
}

fn from_pidf(territory: &Territory, path: &std::path::Path) -> Result<Option<Place>, String> {
    // Read at most one byte past the parser's limit: a huge file is refused without loading it.
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, secourir_location::MAX_SIP_BODY_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(|e| format!("cannot read: {e}"))?;
    let content_type = sniff_content_type(&bytes);
    let locations =
        secourir_location::parse_sip_body(&content_type, &bytes).map_err(|e| e.to_string())?;
    let first = locations.first().ok_or("the document holds no location")?;
    crate::locate::place_of(territory, &first.value).map_err(|e| e.to_string())
}

/// A file given on the command line has no Content-Type: a MIME boundary line says multipart.
fn sniff_content_type(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    match first.trim().strip_prefix("--") {
        Some(boundary) if !boundary.is_empty() => {
            format!("multipart/mixed; boundary=\"{}\"", boundary.trim())
        }
        _ => "application/pidf+xml".to_owned(),
    }
}

fn from_aml(territory: &Territory, text: &str) -> Result<Option<Place>, String> {
    let text = text.trim();
    let report = if text.starts_with("A\"ML=") {
        secourir_location::parse_aml_sms(text)
    } else {
        secourir_location::parse_aml_https(text.as_bytes(), None)
    }
    .map_err(|e| e.to_string())?;
    let position = report
        .position
        .ok_or("the AML message carries no position")?;
    Ok(territory.locate(position.lat, position.lon))
}

pub use secourir_server::place_of;

/// Counts of a CSV run.
#[derive(Debug, Default, PartialEq)]
struct CsvStats {
    lines: u64,
    malformed: u64,
}

/// Streams `lat,lon` lines to `lat,lon,departement,insee` lines; the first line may be a header.
fn csv(
    territory: &Territory,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<CsvStats> {
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut stats = CsvStats::default();
    let mut reader = input;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        stats.lines += 1;
        let parsed = text.split_once(',').and_then(|(lat, lon)| {
            Some((
                lat.trim().parse::<f64>().ok()?,
                lon.trim().parse::<f64>().ok()?,
            ))
        });
        match parsed {
            Some((lat, lon)) => match territory.locate(lat, lon) {
                Some(place) => writeln!(
                    out,
                    "{text},{},{}",
                    place.departement,
                    place.insee.as_deref().unwrap_or("")
                )?,
                None => writeln!(out, "{text},,")?,
            },
            None if stats.lines == 1 => writeln!(out, "{text},departement,insee")?,
            None => {
                stats.malformed += 1;
                writeln!(out, "{text},,")?;
            }
        }
    }
    out.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marseille_prints_the_documented_json() {
        let place = Territory::france().locate(43.2965, 5.3698);
        let json = serde_json::to_string(&Answer::of(place.as_ref())).expect("json");
        assert_eq!(
            json,
            r#"{"departement":"13","insee":"13055","commune":"Marseille"}"#
        );
    }

    #[test]
    fn aml_comes_as_the_sms_text_or_the_https_form() {
        let territory = Territory::france();
        for text in [
            "A\"ML=1;lt=+43.29650;lg=+5.36980;rd=12;top=20261122143000;lc=68;pm=G;si=208150000000001;ei=356708041746734;mcc=208;mnc=15;ml=124",
            "location_latitude=43.2965&location_longitude=5.3698&location_accuracy=12&location_time=1764000000000",
        ] {
            let place = from_aml(territory, text)
                .expect("parsed")
                .expect("in France");
            assert_eq!(place.departement, "13", "{text}");
        }
        assert!(from_aml(territory, "location_latitude=400&location_longitude=5").is_err());
    }

    #[test]
    fn the_sea_prints_nulls() {
        let place = Territory::france().locate(42.5, 5.0);
        let json = serde_json::to_string(&Answer::of(place.as_ref())).expect("json");
        assert_eq!(json, r#"{"departement":null,"insee":null,"commune":null}"#);
    }

    #[test]
    fn csv_keeps_lines_and_fills_fields() {
        let input = "lat,lon\n43.2965,5.3698\n42.5,5.0\nnot,a point\n\n48.8530,2.3499\n";
        let mut out = Vec::new();
        let stats = csv(Territory::france(), input.as_bytes(), &mut out).expect("csv");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "lat,lon,departement,insee\n43.2965,5.3698,13,13055\n42.5,5.0,,\nnot,a point,,\n48.8530,2.3499,75,75056\n"
        );
        assert_eq!(
            stats,
            CsvStats {
                lines: 5,
                malformed: 1
            }
        );
    }

    #[test]
    fn multipart_files_are_recognised() {
        assert_eq!(
            sniff_content_type(b"\r\n--boundary1\r\nContent-Type: application/sdp\r\n"),
            "multipart/mixed; boundary=\"boundary1\""
        );
        assert_eq!(
            sniff_content_type(b"<?xml version=\"1.0\"?>"),
            "application/pidf+xml"
        );
    }
}
