//! The four LoST requests (RFC 5222 sections 8 to 11) read from the element tree, with their
//! locations in the two baseline profiles of section 12: `geodetic-2d` and `civic`.

use crate::xml::{Element, Ns, Tree, XmlError, clip};

/// Locations one request may carry (RFC 5222 allows several, in order of preference).
const LOCATIONS_MAX: usize = 8;
/// `via` elements in a request's path: a real chain of forwarding servers is short.
const VIAS_MAX: usize = 16;
/// Length of a location id, which the answer echoes.
const ID_BYTES_MAX: usize = 256;

/// What a client asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `findService`: the mapping of a service at a location.
    FindService {
        /// The request's locations, in the client's order.
        locations: Vec<Location>,
        /// The service URN, as written.
        service: Option<String>,
        /// The servers the request went through.
        path: Vec<String>,
        /// `serviceBoundary="value"`: the boundary itself rather than a key to it.
        boundary_by_value: bool,
    },
    /// `listServices`: the services this server knows, under an optional parent.
    ListServices {
        /// The parent service URN, as written.
        service: Option<String>,
        /// The servers the request went through.
        path: Vec<String>,
    },
    /// `listServicesByLocation`: the services offered at a location.
    ListServicesByLocation {
        /// The request's locations, in the client's order.
        locations: Vec<Location>,
        /// The parent service URN, as written.
        service: Option<String>,
        /// The servers the request went through.
        path: Vec<String>,
    },
    /// `getServiceBoundary`: a boundary by the key a mapping handed out.
    GetServiceBoundary {
        /// The key.
        key: String,
    },
}

impl Request {
    /// The servers the request already went through.
    pub fn path(&self) -> &[String] {
        match self {
            Request::FindService { path, .. }
            | Request::ListServices { path, .. }
            | Request::ListServicesByLocation { path, .. } => path,
            Request::GetServiceBoundary { .. } => &[],
        }
    }
}

/// One `<location>` of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Its `id`, echoed in `locationUsed`.
    pub id: String,
    /// Its profile: the `profile` attribute, or guessed from the content when absent.
    pub profile: String,
    /// What it says, when the profile is one this server reads.
    pub value: LocationValue,
}

/// The content of a location.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationValue {
    /// A WGS84 point: a `gml:Point`, or the centre of a circle, ellipse or arc band, or the mean
    /// of a polygon's vertices.
    Point {
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
    },
    /// An RFC 5139 civic address, reduced to what finds a commune.
    Civic(Civic),
    /// A location in a profile this server reads whose content it cannot use (the reason).
    Invalid(String),
    /// A profile this server does not read.
    Unrecognized,
}

/// The parts of a civic address that name a commune.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Civic {
    /// `country` (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// `ADDCODE`: RFC 5139's national address code, here the commune's INSEE code.
    pub addcode: Option<String>,
    /// `PC`: the postcode.
    pub postcode: Option<String>,
    /// `A3`: the city (commune).
    pub city: Option<String>,
}

/// Reads a request from its tree; the error is the text of a `badRequest`.
pub fn read(tree: &Tree) -> Result<Request, XmlError> {
    let root = tree.root();
    if root.ns != Ns::Lost {
        return bad(format!(
            "the root element <{}> is not in the LoST namespace",
            clip(&root.name)
        ));
    }
    match root.name.as_str() {
        "findService" => {
            let parts = Parts::read(tree, root, true)?;
            if parts.locations.is_empty() {
                return bad("findService without a location");
            }
            let boundary_by_value = match root.attribute("serviceBoundary").map(str::trim) {
                None | Some("reference") => false,
                Some("value") => true,
                Some(other) => {
                    return bad(format!("serviceBoundary={:?}", clip(other)));
                }
            };
            for flag in ["recursive", "validateLocation"] {
                boolean(root, flag)?;
            }
            Ok(Request::FindService {
                locations: parts.locations,
                service: parts.service,
                path: parts.path,
                boundary_by_value,
            })
        }
        "listServices" => {
            let parts = Parts::read(tree, root, false)?;
            Ok(Request::ListServices {
                service: parts.service,
                path: parts.path,
            })
        }
        "listServicesByLocation" => {
            let parts = Parts::read(tree, root, true)?;
            if parts.locations.is_empty() {
                return bad("listServicesByLocation without a location");
            }
            boolean(root, "recursive")?;
            Ok(Request::ListServicesByLocation {
                locations: parts.locations,
                service: parts.service,
                path: parts.path,
            })
        }
        "getServiceBoundary" => {
            if let Some(child) = tree.children(root).find(|c| c.ns == Ns::Lost) {
                return bad(format!(
                    "unexpected <{}> in getServiceBoundary",
                    clip(&child.name)
                ));
            }
            let key = root
                .attribute("key")
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| XmlError("getServiceBoundary without a key".into()))?;
            Ok(Request::GetServiceBoundary {
                key: key.to_owned(),
            })
        }
        other => bad(format!("<{}> is not a LoST request", clip(other))),
    }
}

fn bad<T>(message: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(message.into()))
}

/// An `xs:boolean` attribute, which must be well-formed when present.
fn boolean(element: &Element, name: &str) -> Result<Option<bool>, XmlError> {
    match element.attribute(name).map(str::trim) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => bad(format!("{name}={:?} is not a boolean", clip(other))),
    }
}

/// The children a request may have: locations, one service, one path.
struct Parts {
    locations: Vec<Location>,
    service: Option<String>,
    path: Vec<String>,
}

impl Parts {
    fn read(tree: &Tree, root: &Element, with_location: bool) -> Result<Parts, XmlError> {
        let mut parts = Parts {
            locations: Vec::new(),
            service: None,
            path: Vec::new(),
        };
        let mut seen_path = false;
        for child in tree.children(root) {
            // Elements of other namespaces are extensions (RFC 5222 section 15): skipped.
            if child.ns != Ns::Lost {
                continue;
            }
            match child.name.as_str() {
                "location" if with_location => {
                    if parts.locations.len() >= LOCATIONS_MAX {
                        return bad("too many locations");
                    }
                    parts.locations.push(location(tree, child)?);
                }
                "service" if parts.service.is_none() => {
                    parts.service = Some(child.text.trim().to_owned());
                }
                "path" if !seen_path => {
                    seen_path = true;
                    parts.path = path(tree, child)?;
                }
                other => {
                    return bad(format!("unexpected <{}> in <{}>", clip(other), root.name));
                }
            }
        }
        Ok(parts)
    }
}

fn path(tree: &Tree, element: &Element) -> Result<Vec<String>, XmlError> {
    let mut vias = Vec::new();
    for via in tree.children(element).filter(|c| c.ns == Ns::Lost) {
        if via.name != "via" {
            return bad(format!("unexpected <{}> in <path>", clip(&via.name)));
        }
        if vias.len() >= VIAS_MAX {
            return bad("too many via elements in the path");
        }
        let source = via
            .attribute("source")
            .map(str::trim)
            .ok_or_else(|| XmlError("a via without a source".into()))?;
        if !crate::is_app_unique_string(source) {
            return bad(format!(
                "via source {:?} is not a domain name",
                clip(source)
            ));
        }
        vias.push(source.to_owned());
    }
    if vias.is_empty() {
        return bad("an empty path");
    }
    Ok(vias)
}

fn location(tree: &Tree, element: &Element) -> Result<Location, XmlError> {
    let id = element
        .attribute("id")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| XmlError("a location without an id".into()))?;
    // The id is echoed in locationUsed: it must be something that can be written back.
    if id.len() > ID_BYTES_MAX || id.chars().any(char::is_control) {
        return bad("a location id too long or with control characters");
    }
    let content: Vec<&Element> = tree.children(element).collect();
    if let Some(lost) = content.iter().find(|c| c.ns == Ns::Lost) {
        return bad(format!("unexpected <{}> in <location>", clip(&lost.name)));
    }
    let profile = match element.attribute("profile").map(str::trim) {
        Some(p) if !p.is_empty() => p.to_owned(),
        // RFC 5222 makes the attribute optional: the content tells.
        _ => match content.first() {
            Some(c) if matches!(c.ns, Ns::Gml | Ns::Shapes) => "geodetic-2d".to_owned(),
            Some(c) if c.ns == Ns::Civic => "civic".to_owned(),
            _ => "unknown".to_owned(),
        },
    };
    let value = match profile.as_str() {
        "geodetic-2d" => geodetic(tree, &content),
        "civic" => civic(tree, &content),
        _ => LocationValue::Unrecognized,
    };
    Ok(Location {
        id: id.to_owned(),
        profile,
        value,
    })
}

/// Coordinate reference systems of RFC 5491: 2D and 3D WGS84, latitude first.
const SRS_NAMES: [&str; 2] = ["urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG::4979"];

fn geodetic(tree: &Tree, content: &[&Element]) -> LocationValue {
    let [shape] = content else {
        return LocationValue::Invalid("a geodetic-2d location holds exactly one shape".into());
    };
    if let Some(srs) = shape.attribute("srsName")
        && !SRS_NAMES.contains(&srs.trim())
    {
        return LocationValue::Invalid("srsName is not WGS84 (EPSG 4326)".into());
    }
    let point = match (shape.ns, shape.name.as_str()) {
        (Ns::Gml, "Point") | (Ns::Shapes, "Circle" | "Ellipse" | "ArcBand") => {
            // The centre is the caller's most likely position; the uncertainty around it is
            // far smaller than a département in every case where routing could change.
            match tree
                .children(shape)
                .find(|c| c.ns == Ns::Gml && c.name == "pos")
            {
                Some(pos) => position(&pos.text),
                None => Err(format!("<{}> without gml:pos", clip(&shape.name))),
            }
        }
        (Ns::Gml, "Polygon") => polygon_centre(tree, shape),
        _ => Err(format!(
            "<{}> is not a geodetic-2d shape",
            clip(&shape.name)
        )),
    };
    match point {
        Ok((lat, lon)) => LocationValue::Point { lat, lon },
        Err(reason) => LocationValue::Invalid(reason),
    }
}

fn number(text: &str) -> Option<f64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A `gml:pos`: latitude then longitude (and an altitude, ignored).
fn position(text: &str) -> Result<(f64, f64), String> {
    let mut numbers = text.split_whitespace().map(number);
    match (
        numbers.next(),
        numbers.next(),
        numbers.next(),
        numbers.next(),
    ) {
        (Some(Some(lat)), Some(Some(lon)), None | Some(Some(_)), None) => checked(lat, lon),
        _ => Err("gml:pos is not two or three numbers".into()),
    }
}

fn checked(lat: f64, lon: f64) -> Result<(f64, f64), String> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok((lat, lon))
    } else {
        Err("coordinates out of range".into())
    }
}

/// The mean of a polygon's exterior vertices (the closing one counted once).
fn polygon_centre(tree: &Tree, polygon: &Element) -> Result<(f64, f64), String> {
    let ring = tree
        .children(polygon)
        .find(|c| c.ns == Ns::Gml && c.name == "exterior")
        .and_then(|e| {
            tree.children(e)
                .find(|c| c.ns == Ns::Gml && c.name == "LinearRing")
        })
        .ok_or("gml:Polygon without an exterior LinearRing")?;
    let mut points = Vec::new();
    for part in tree.children(ring).filter(|c| c.ns == Ns::Gml) {
        match part.name.as_str() {
            "pos" => points.push(position(&part.text)?),
            "posList" => {
                let numbers: Option<Vec<f64>> = part.text.split_whitespace().map(number).collect();
                let numbers = numbers.ok_or("gml:posList holds something else than numbers")?;
                if !numbers.len().is_multiple_of(2) {
                    return Err("gml:posList holds an odd count of numbers".into());
                }
                for pair in numbers.chunks_exact(2) {
                    points.push(checked(pair[0], pair[1])?);
                }
            }
            _ => {}
        }
    }
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    if points.len() < 3 {
        return Err("gml:Polygon with fewer than three vertices".into());
    }
    let count = points.len() as f64;
    let (lat, lon) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (lat, lon)| (a + lat, b + lon));
    Ok((lat / count, lon / count))
}

fn civic(tree: &Tree, content: &[&Element]) -> LocationValue {
    let [address] = content else {
        return LocationValue::Invalid("a civic location holds exactly one civicAddress".into());
    };
    if (address.ns, address.name.as_str()) != (Ns::Civic, "civicAddress") {
        return LocationValue::Invalid("a civic location holds a civicAddress".into());
    }
    let mut civic = Civic::default();
    for field in tree.children(address).filter(|c| c.ns == Ns::Civic) {
        let value = field.text.trim();
        if value.is_empty() {
            continue;
        }
        let slot = match field.name.as_str() {
            "country" => &mut civic.country,
            "ADDCODE" => &mut civic.addcode,
            "PC" => &mut civic.postcode,
            "A3" => &mut civic.city,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.to_owned());
    }
    LocationValue::Civic(civic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn request(xml: &str) -> Result<Request, XmlError> {
        read(&parse(xml.as_bytes())?)
    }

    fn locations(xml: &str) -> Vec<Location> {
        match request(xml).expect("a request") {
            Request::FindService { locations, .. } => locations,
            other => panic!("{other:?}"),
        }
    }

    const HEAD: &str = r#"<findService xmlns="urn:ietf:params:xml:ns:lost1" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0">"#;

    #[test]
    fn shapes_give_their_centre() {
        let xml = format!(
            "{HEAD}<location id=\"a\" profile=\"geodetic-2d\"><gs:Circle srsName=\"urn:ogc:def:crs:EPSG::4326\"><gml:pos>43.3 5.4</gml:pos><gs:radius uom=\"urn:ogc:def:uom:EPSG::9001\">850</gs:radius></gs:Circle></location>\
             <location id=\"b\"><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 0 2 2 2 2 0 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></location>\
             <service>urn:service:sos</service></findService>"
        );
        let found = locations(&xml);
        assert_eq!(
            found[0].value,
            LocationValue::Point {
                lat: 43.3,
                lon: 5.4
            }
        );
        assert_eq!(found[1].profile, "geodetic-2d");
        assert_eq!(found[1].value, LocationValue::Point { lat: 1.0, lon: 1.0 });
    }

    #[test]
    fn bad_shapes_are_invalid_not_bad_requests() {
        for content in [
            "<gml:Point><gml:pos>91 0</gml:pos></gml:Point>",
            "<gml:Point><gml:pos>north</gml:pos></gml:Point>",
            "<gml:Point srsName=\"urn:ogc:def:crs:EPSG::2154\"><gml:pos>1 1</gml:pos></gml:Point>",
            "<gml:Point/>",
            "<gml:LineString/>",
        ] {
            let xml = format!(
                "{HEAD}<location id=\"a\" profile=\"geodetic-2d\">{content}</location></findService>"
            );
            let found = locations(&xml);
            assert!(
                matches!(found[0].value, LocationValue::Invalid(_)),
                "{content}"
            );
        }
    }

    #[test]
    fn civic_fields() {
        let xml = format!(
            "{HEAD}<location id=\"c\" profile=\"civic\"><civicAddress xmlns=\"urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr\"><country>FR</country><A3>Marseille</A3><PC>13008</PC><ADDCODE>13055</ADDCODE></civicAddress></location></findService>"
        );
        let LocationValue::Civic(civic) = &locations(&xml)[0].value else {
            panic!("not civic");
        };
        assert_eq!(civic.addcode.as_deref(), Some("13055"));
        assert_eq!(civic.postcode.as_deref(), Some("13008"));
        assert_eq!(civic.city.as_deref(), Some("Marseille"));
    }

    #[test]
    fn bad_requests() {
        for xml in [
            "<findService/>",
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1"/>"#,
            r#"<findTheService xmlns="urn:ietf:params:xml:ns:lost1"/>"#,
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1"><location profile="civic"/></findService>"#,
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1" serviceBoundary="both"><location id="a"/></findService>"#,
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1" recursive="yes"><location id="a"/></findService>"#,
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1"><location id="a"/><colour/></findService>"#,
            r#"<findService xmlns="urn:ietf:params:xml:ns:lost1"><location id="a"/><path/></findService>"#,
            r#"<getServiceBoundary xmlns="urn:ietf:params:xml:ns:lost1"/>"#,
        ] {
            assert!(request(xml).is_err(), "{xml}");
        }
    }

    #[test]
    fn extensions_are_skipped() {
        let xml = r#"<listServices xmlns="urn:ietf:params:xml:ns:lost1"><x:y xmlns:x="urn:x"><z/></x:y><service>urn:service:sos</service><path><via source="a.example"/></path></listServices>"#;
        assert_eq!(
            request(xml),
            Ok(Request::ListServices {
                service: Some("urn:service:sos".into()),
                path: vec!["a.example".into()],
            })
        );
    }
}
