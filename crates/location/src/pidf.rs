//! PIDF-LO (RFC 4119, 5491, 5139) and the SIP bodies that carry it.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::{
    CivicAddress, LocationError, LocationValue, MAX_SIP_BODY_BYTES, PidfLocation, Shape, checked,
    number,
};

const DEPTH_MAX: usize = 32;
const LOCATIONS_MAX: usize = 16;
const VERTICES_MAX: usize = 1024;
const PARTS_MAX: usize = 16;

/// Parses the location(s) of a SIP body: `application/pidf+xml`, or the PIDF part of a
/// `multipart/mixed` body.
pub fn parse_sip_body(content_type: &str, body: &[u8]) -> Result<Vec<PidfLocation>, LocationError> {
    if body.len() > MAX_SIP_BODY_BYTES {
        return Err(LocationError::TooLarge {
            size: body.len(),
            limit: MAX_SIP_BODY_BYTES,
        });
    }
    let (media, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    match media.trim().to_ascii_lowercase().as_str() {
        "application/pidf+xml" => parse_pidf(body),
        "multipart/mixed" | "multipart/related" => {
            let boundary = params
                .split(';')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or_else(|| LocationError::Malformed("multipart without a boundary".into()))?;
            let part = find_part(body, &boundary, "application/pidf+xml")?
                .ok_or(LocationError::NoLocation)?;
            parse_pidf(part)
        }
        other => Err(LocationError::UnsupportedContentType(other.to_owned())),
    }
}

/// The part of a SIP body whose media type is `wanted` (`application/sdp`, say): the body itself
/// when it is of that type, the first such part of a `multipart/*` body, or None.
pub fn sip_body_part<'a>(
    content_type: &str,
    body: &'a [u8],
    wanted: &str,
) -> Result<Option<&'a [u8]>, LocationError> {
    let (media, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let media = media.trim().to_ascii_lowercase();
    if media.eq_ignore_ascii_case(wanted) {
        return Ok(Some(body));
    }
    if !media.starts_with("multipart/") {
        return Ok(None);
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| LocationError::Malformed("multipart without a boundary".into()))?;
    find_part(body, &boundary, wanted)
}

/// The body of the first part of type `wanted` in a multipart body.
fn find_part<'a>(
    body: &'a [u8],
    boundary: &str,
    wanted: &str,
) -> Result<Option<&'a [u8]>, LocationError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        if &body[i..i + delimiter.len()] == delimiter && (i == 0 || body[i - 1] == b'\n') {
            starts.push(i);
            if starts.len() > PARTS_MAX + 1 {
                return Err(LocationError::Malformed("too many MIME parts".into()));
            }
            i += delimiter.len();
        } else {
            i += 1;
        }
    }
    for pair in starts.windows(2) {
        let part = &body[pair[0] + delimiter.len()..pair[1]];
        let Some((headers, content)) = split_headers(part) else {
            continue;
        };
        let headers = String::from_utf8_lossy(headers).to_ascii_lowercase();
        let matches = headers
            .lines()
            .any(|l| l.starts_with("content-type") && l.contains(wanted));
        if matches {
            return Ok(Some(trim_crlf(content)));
        }
    }
    Ok(None)
}

fn split_headers(part: &[u8]) -> Option<(&[u8], &[u8])> {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(pos) = part.windows(len).position(|w| w == sep) {
            return Some((&part[..pos], &part[pos + len..]));
        }
    }
    None
}

fn trim_crlf(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    bytes
}

/// What is being read inside a `location-info`.
enum Building {
    Nothing,
    Shape {
        kind: String,
        depth: usize,
        fields: Vec<(String, String)>,
    },
    Civic {
        depth: usize,
        fields: Vec<(String, String)>,
    },
}

/// Parses a PIDF-LO document and returns its locations in document order.
pub fn parse_pidf(xml: &[u8]) -> Result<Vec<PidfLocation>, LocationError> {
    if xml.len() > MAX_SIP_BODY_BYTES {
        return Err(LocationError::TooLarge {
            size: xml.len(),
            limit: MAX_SIP_BODY_BYTES,
        });
    }
    let upper = xml.to_ascii_uppercase();
    if upper.windows(9).any(|w| w == b"<!DOCTYPE") || upper.windows(8).any(|w| w == b"<!ENTITY") {
        return Err(LocationError::Forbidden);
    }
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut building = Building::Nothing;
    let mut found: Vec<(LocationValue, usize)> = Vec::new();
    let mut methods: Vec<(usize, String)> = Vec::new();
    let mut timestamps: Vec<(usize, String)> = Vec::new();
    let mut seen_presence = false;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            LocationError::Malformed(format!("XML at byte {}: {e}", reader.buffer_position()))
        })?;
        match event {
            Event::DocType(_) => return Err(LocationError::Forbidden),
            Event::Start(e) => {
                let name: String = AsRef::<str>::as_ref(&e.local_name()).to_owned();
                if stack.len() >= DEPTH_MAX {
                    return Err(LocationError::Malformed("XML nested too deep".into()));
                }
                if stack.is_empty() {
                    if name != "presence" {
                        return Err(LocationError::Malformed(format!(
                            "root element is {name:?}, not presence"
                        )));
                    }
                    seen_presence = true;
                }
                stack.push(name.clone());
                text.clear();
                if matches!(building, Building::Nothing) {
                    building = match name.as_str() {
                        "Point" | "Circle" | "Ellipse" | "Polygon" | "Sphere" | "Ellipsoid"
                        | "ArcBand" => Building::Shape {
                            kind: name,
                            depth: stack.len(),
                            fields: Vec::new(),
                        },
                        "civicAddress" => Building::Civic {
                            depth: stack.len(),
                            fields: Vec::new(),
                        },
                        _ => Building::Nothing,
                    };
                }
            }
            Event::Text(t) => {
                let piece = t.xml10_content();
                if text.len() + piece.len() > MAX_SIP_BODY_BYTES {
                    return Err(LocationError::Malformed("text too long".into()));
                }
                text.push_str(&piece);
            }
            Event::GeneralRef(_) => {
                // Predefined entities (&amp; …) in text: not needed in coordinates; keep going.
            }
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    return Err(LocationError::Malformed("unbalanced end tag".into()));
                };
                let depth = stack.len();
                match name.as_str() {
                    "method" => methods.push((found.len(), text.trim().to_owned())),
                    "timestamp" => timestamps.push((found.len(), text.trim().to_owned())),
                    _ => {}
                }
                match &mut building {
                    Building::Shape {
                        kind,
                        depth: d,
                        fields,
                    } => {
                        if depth < *d {
                            let shape = shape(kind, fields)?;
                            push(&mut found, LocationValue::Geodetic(shape), depth)?;
                            building = Building::Nothing;
                        } else {
                            if fields.len() >= VERTICES_MAX + 8 {
                                return Err(LocationError::Malformed(
                                    "too many values in a shape".into(),
                                ));
                            }
                            fields.push((name, text.trim().to_owned()));
                        }
                    }
                    Building::Civic { depth: d, fields } => {
                        if depth < *d {
                            let civic = civic(fields);
                            push(&mut found, LocationValue::Civic(Box::new(civic)), depth)?;
                            building = Building::Nothing;
                        } else if fields.len() < 64 {
                            fields.push((name, text.trim().to_owned()));
                        }
                    }
                    Building::Nothing => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(LocationError::Malformed(format!(
            "document ends inside <{}>",
            stack.join("><")
        )));
    }
    if !seen_presence {
        return Err(LocationError::Malformed("no presence element".into()));
    }
    if found.is_empty() {
        return Err(LocationError::NoLocation);
    }
    // A tuple's method and timestamp follow its location-info: attach each to the location before it.
    let attach = |list: &[(usize, String)], index: usize| {
        list.iter()
            .find(|(after, _)| *after > index)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(i, (value, _))| PidfLocation {
            value,
            method: attach(&methods, i),
            timestamp: attach(&timestamps, i),
        })
        .collect())
}

fn push(
    found: &mut Vec<(LocationValue, usize)>,
    value: LocationValue,
    depth: usize,
) -> Result<(), LocationError> {
    if found.len() >= LOCATIONS_MAX {
        return Err(LocationError::Malformed("too many locations".into()));
    }
    found.push((value, depth));
    Ok(())
}

fn position(text: &str) -> Result<(f64, f64), LocationError> {
    let mut parts = text.split_whitespace();
    let lat = parts.next().and_then(number);
    let lon = parts.next().and_then(number);
    match (lat, lon) {
        (Some(lat), Some(lon)) => checked(lat, lon),
        _ => Err(LocationError::Malformed(format!("bad gml:pos {text:?}"))),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn length(fields: &[(String, String)], name: &str) -> Result<f64, LocationError> {
    let value = field(fields, name)
        .and_then(number)
        .ok_or_else(|| LocationError::Malformed(format!("missing {name}")))?;
    if value < 0.0 {
        return Err(LocationError::Malformed(format!("negative {name}")));
    }
    Ok(value)
}

fn shape(kind: &str, fields: &[(String, String)]) -> Result<Shape, LocationError> {
    let centre = || {
        field(fields, "pos")
            .ok_or_else(|| LocationError::Malformed(format!("{kind} without gml:pos")))
            .and_then(position)
    };
    match kind {
        "Point" => {
            let (lat, lon) = centre()?;
            Ok(Shape::Point { lat, lon })
        }
        "Circle" | "Sphere" => {
            let (lat, lon) = centre()?;
            Ok(Shape::Circle {
                lat,
                lon,
                radius_m: length(fields, "radius")?,
            })
        }
        "Ellipse" | "Ellipsoid" => {
            let (lat, lon) = centre()?;
            Ok(Shape::Ellipse {
                lat,
                lon,
                semi_major_m: length(fields, "semiMajorAxis")?,
                semi_minor_m: length(fields, "semiMinorAxis")?,
                orientation_deg: field(fields, "orientation").and_then(number).unwrap_or(0.0),
            })
        }
        "ArcBand" => {
            let (lat, lon) = centre()?;
            Ok(Shape::Circle {
                lat,
                lon,
                radius_m: length(fields, "outerRadius")?,
            })
        }
        _ => {
            let mut points = Vec::new();
            for (name, value) in fields {
                match name.as_str() {
                    "pos" => points.push(position(value)?),
                    "posList" => {
                        let numbers: Vec<f64> = value
                            .split_whitespace()
                            .map(|n| {
                                number(n).ok_or_else(|| {
                                    LocationError::Malformed("bad gml:posList".into())
                                })
                            })
                            .collect::<Result<_, _>>()?;
                        if !numbers.len().is_multiple_of(2) {
                            return Err(LocationError::Malformed("odd gml:posList".into()));
                        }
                        for pair in numbers.chunks_exact(2) {
                            points.push(checked(pair[0], pair[1])?);
                        }
                    }
                    _ => {}
                }
                if points.len() > VERTICES_MAX {
                    return Err(LocationError::Malformed(
                        "polygon with too many vertices".into(),
                    ));
                }
            }
            if points.len() < 3 {
                return Err(LocationError::Malformed(
                    "polygon with fewer than 3 vertices".into(),
                ));
            }
            Ok(Shape::Polygon { points })
        }
    }
}

fn civic(fields: &[(String, String)]) -> CivicAddress {
    let get = |name: &str| {
        field(fields, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let divisions = ["A1", "A2", "A3", "A4", "A5", "A6"].map(get);
    let number = match (get("HNO"), get("HNS")) {
        (Some(n), Some(s)) => Some(format!("{n} {s}")),
        (n, _) => n,
    };
    let details = ["LMK", "LOC", "NAM"]
        .iter()
        .filter_map(|k| get(k))
        .collect::<Vec<_>>();
    CivicAddress {
        country: get("country"),
        city: divisions[2].clone(),
        road: get("RD").or_else(|| divisions[5].clone()),
        divisions,
        house_number: number,
        postcode: get("PC"),
        details: (!details.is_empty()).then(|| details.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const POINT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
  xmlns:gml="http://www.opengis.net/gml" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  entity="pres:caller@example.fr">
  <dm:device id="phone">
    <gp:geopriv>
      <gp:location-info>
        <gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>43.2965 5.3698</gml:pos></gml:Point>
      </gp:location-info>
      <gp:usage-rules/>
      <gp:method>GPS</gp:method>
    </gp:geopriv>
    <dm:timestamp>2026-11-22T14:30:00Z</dm:timestamp>
  </dm:device>
</presence>"#;

    const CIRCLE: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0" entity="pres:a@b">
<tuple id="t"><status><gp:geopriv><gp:location-info>
<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>48.8530 2.3499</gml:pos>
<gs:radius uom="urn:ogc:def:uom:EPSG::9001">850</gs:radius></gs:Circle>
</gp:location-info></gp:geopriv></status></tuple></presence>"#;

    const ELLIPSE: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0" entity="pres:a@b">
<tuple id="t"><status><gp:geopriv><gp:location-info>
<gs:Ellipse srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>45.7640 4.8357</gml:pos>
<gs:semiMajorAxis uom="urn:ogc:def:uom:EPSG::9001">1275</gs:semiMajorAxis>
<gs:semiMinorAxis uom="urn:ogc:def:uom:EPSG::9001">670</gs:semiMinorAxis>
<gs:orientation uom="urn:ogc:def:uom:EPSG::9102">43.2</gs:orientation></gs:Ellipse>
</gp:location-info></gp:geopriv></status></tuple></presence>"#;

    const POLYGON: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" entity="pres:a@b">
<tuple id="t"><status><gp:geopriv><gp:location-info>
<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing>
<gml:posList>43.30 5.36 43.30 5.38 43.29 5.38 43.29 5.36 43.30 5.36</gml:posList>
</gml:LinearRing></gml:exterior></gml:Polygon>
</gp:location-info></gp:geopriv></status></tuple></presence>"#;

    const CIVIC: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="pres:a@b">
<tuple id="t"><status><gp:geopriv><gp:location-info>
<ca:civicAddress xml:lang="fr"><ca:country>FR</ca:country><ca:A1>Provence-Alpes-Côte d'Azur</ca:A1>
<ca:A2>13</ca:A2><ca:A3>Marseille</ca:A3><ca:RD>Avenue du Prado</ca:RD><ca:HNO>120</ca:HNO><ca:PC>13008</ca:PC></ca:civicAddress>
</gp:location-info></gp:geopriv></status></tuple></presence>"#;

    #[test]
    fn every_shape() {
        let p = parse_pidf(POINT.as_bytes()).expect("point");
        assert_eq!(
            p[0].value,
            LocationValue::Geodetic(Shape::Point {
                lat: 43.2965,
                lon: 5.3698
            })
        );
        assert_eq!(p[0].method.as_deref(), Some("GPS"));
        assert_eq!(p[0].timestamp.as_deref(), Some("2026-11-22T14:30:00Z"));
        let c = parse_pidf(CIRCLE.as_bytes()).expect("circle");
        assert_eq!(
            c[0].value,
            LocationValue::Geodetic(Shape::Circle {
                lat: 48.853,
                lon: 2.3499,
                radius_m: 850.0
            })
        );
        let e = parse_pidf(ELLIPSE.as_bytes()).expect("ellipse");
        assert!(
            matches!(e[0].value, LocationValue::Geodetic(Shape::Ellipse { semi_major_m, .. }) if semi_major_m == 1275.0)
        );
        let poly = parse_pidf(POLYGON.as_bytes()).expect("polygon");
        let LocationValue::Geodetic(shape) = &poly[0].value else {
            panic!("geodetic")
        };
        let centre = shape.centre();
        assert!(
            (centre.lat - 43.295).abs() < 1e-9 && (centre.lon - 5.37).abs() < 1e-9,
            "{centre:?}"
        );
    }

    #[test]
    fn civic_address() {
        let c = parse_pidf(CIVIC.as_bytes()).expect("civic");
        let LocationValue::Civic(address) = &c[0].value else {
            panic!("civic")
        };
        assert_eq!(address.postcode.as_deref(), Some("13008"));
        assert_eq!(address.city.as_deref(), Some("Marseille"));
        assert_eq!(address.road.as_deref(), Some("Avenue du Prado"));
        assert_eq!(address.country.as_deref(), Some("FR"));
    }

    #[test]
    fn inside_multipart() {
        for boundary_param in [
            "boundary=unique-boundary-1",
            "boundary=\"unique-boundary-1\"",
        ] {
            let body = format!(
                "--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n\r\n--unique-boundary-1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc@example.fr>\r\n\r\n{POINT}\r\n--unique-boundary-1--\r\n"
            );
            let found = parse_sip_body(
                &format!("multipart/mixed; {boundary_param}"),
                body.as_bytes(),
            )
            .expect("multipart");
            assert_eq!(found.len(), 1);
        }
        let sdp_only = "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n";
        assert_eq!(
            parse_sip_body("multipart/mixed;boundary=b", sdp_only.as_bytes()),
            Err(LocationError::NoLocation)
        );
        assert!(matches!(
            parse_sip_body("application/sdp", b"v=0"),
            Err(LocationError::UnsupportedContentType(_))
        ));
    }

    #[test]
    fn failures_are_typed() {
        let truncated = &POINT.as_bytes()[..POINT.len() / 2];
        assert!(matches!(
            parse_pidf(truncated),
            Err(LocationError::Malformed(_))
        ));
        let dtd = format!("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]>{POINT}");
        assert_eq!(parse_pidf(dtd.as_bytes()), Err(LocationError::Forbidden));
        let huge = vec![b' '; 10 * 1024 * 1024];
        assert!(matches!(
            parse_sip_body("application/pidf+xml", &huge),
            Err(LocationError::TooLarge { .. })
        ));
        let lat400 = POINT.replace("43.2965 5.3698", "400 5.3698");
        assert!(
            matches!(parse_pidf(lat400.as_bytes()), Err(LocationError::BadCoordinates { lat, .. }) if lat == 400.0)
        );
        let none = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"><tuple id="t"/></presence>"#;
        assert_eq!(parse_pidf(none.as_bytes()), Err(LocationError::NoLocation));
        let negative = CIRCLE.replace(">850<", ">-5<");
        assert!(matches!(
            parse_pidf(negative.as_bytes()),
            Err(LocationError::Malformed(_))
        ));
        let deep = format!(
            "<presence>{}{}</presence>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert!(matches!(
            parse_pidf(deep.as_bytes()),
            Err(LocationError::Malformed(_))
        ));
        assert!(parse_pidf(b"garbage").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse_pidf(&bytes);
            let _ = parse_sip_body("multipart/mixed; boundary=b", &bytes);
        }

        #[test]
        fn never_panics_on_mutations(cut in 0usize..2000, at in 0usize..2000, byte in proptest::num::u8::ANY) {
            for doc in [POINT, CIRCLE, ELLIPSE, POLYGON, CIVIC] {
                let mut bytes = doc.as_bytes().to_vec();
                let at = at % bytes.len();
                bytes[at] = byte;
                bytes.truncate(cut % (bytes.len() + 1));
                let _ = parse_pidf(&bytes);
            }
        }
    }
}
