//! Service boundaries: the outline of the département a mapping holds for, as RFC 5491 GML
//! polygons, computed once when the server is built.
//!
//! A mapping is the same for every point of a département (the platform routes by département),
//! so its boundary is the département's outline. Outlines with more than [`VERTICES_MAX`]
//! vertices are simplified (Ramer–Douglas–Peucker, the tolerance doubled from 10 m until they
//! fit); a ring that simplification would collapse is kept whole, so no island disappears.

use std::collections::HashMap;

use geo::{Coord, LineString, MultiPolygon, Orient, Polygon, Simplify, orient::Direction};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use secourir_territory::Territory;

use crate::xml::GML_NS;

/// Vertices one boundary may have once simplified: about 40 kB of GML.
pub const VERTICES_MAX: usize = 2_000;
/// First tolerance tried, degrees (about 10 m).
const TOLERANCE_START_DEG: f64 = 0.000_1;
/// Largest tolerance tried, degrees (about 5 km); past it the outline is sent as it is.
const TOLERANCE_MAX_DEG: f64 = 0.05;

/// The boundaries of every département, by key.
#[derive(Debug)]
pub struct Boundaries {
    /// Département code to its key and GML.
    by_departement: HashMap<String, Boundary>,
    /// Key to département code.
    by_key: HashMap<String, String>,
}

/// One département's boundary.
#[derive(Debug)]
pub struct Boundary {
    /// The key handed out in `serviceBoundaryReference`.
    pub key: String,
    /// The `gml:Polygon` elements, ready to be written inside a `serviceBoundary`.
    pub gml: Vec<u8>,
}

impl Boundaries {
    /// Computes the boundary of every département of the territory.
    pub fn new(territory: &Territory) -> Boundaries {
        let mut by_departement = HashMap::new();
        let mut by_key = HashMap::new();
        for departement in territory.departements() {
            let key = format!("departement-{}", departement.code);
            let gml = gml(&fit(departement.outline()));
            by_key.insert(key.clone(), departement.code.clone());
            by_departement.insert(departement.code.clone(), Boundary { key, gml });
        }
        Boundaries {
            by_departement,
            by_key,
        }
    }

    /// The boundary of a département.
    pub fn of_departement(&self, code: &str) -> Option<&Boundary> {
        self.by_departement.get(code)
    }

    /// The boundary handed out under a key.
    pub fn by_key(&self, key: &str) -> Option<&Boundary> {
        self.by_key
            .get(key)
            .and_then(|code| self.by_departement.get(code))
    }
}

fn count(outline: &MultiPolygon<f64>) -> usize {
    outline
        .iter()
        .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
        .sum()
}

/// The outline, simplified until it has at most [`VERTICES_MAX`] vertices, exterior rings
/// counter-clockwise as RFC 5491 asks.
fn fit(outline: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    let mut fitted = outline.clone();
    let mut tolerance = TOLERANCE_START_DEG;
    while count(&fitted) > VERTICES_MAX && tolerance <= TOLERANCE_MAX_DEG {
        fitted = MultiPolygon::new(
            outline
                .iter()
                .map(|polygon| simplify(polygon, tolerance))
                .collect(),
        );
        tolerance *= 2.0;
    }
    fitted.orient(Direction::Default)
}

fn simplify(polygon: &Polygon<f64>, tolerance: f64) -> Polygon<f64> {
    // A ring needs 4 positions (the first repeated last); one simplified below that stays whole.
    let ring = |original: &LineString<f64>| {
        let simpler = original.simplify(tolerance);
        if simpler.0.len() >= 4 {
            simpler
        } else {
            original.clone()
        }
    };
    Polygon::new(
        ring(polygon.exterior()),
        polygon.interiors().iter().map(ring).collect(),
    )
}

/// The outline as `gml:Polygon` elements, positions latitude first (EPSG 4326).
fn gml(outline: &MultiPolygon<f64>) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    for polygon in outline {
        write_polygon(&mut writer, polygon);
    }
    writer.into_inner()
}

fn write_polygon(writer: &mut Writer<Vec<u8>>, polygon: &Polygon<f64>) {
    let start = BytesStart::new("gml:Polygon").with_attributes([
        ("xmlns:gml", GML_NS),
        ("srsName", "urn:ogc:def:crs:EPSG::4326"),
    ]);
    write(writer, Event::Start(start));
    write_ring(writer, "gml:exterior", polygon.exterior());
    for interior in polygon.interiors() {
        write_ring(writer, "gml:interior", interior);
    }
    write(writer, Event::End(BytesEnd::new("gml:Polygon")));
}

fn write_ring(writer: &mut Writer<Vec<u8>>, name: &str, ring: &LineString<f64>) {
    write(writer, Event::Start(BytesStart::new(name)));
    write(writer, Event::Start(BytesStart::new("gml:LinearRing")));
    write(writer, Event::Start(BytesStart::new("gml:posList")));
    let mut positions = String::with_capacity(ring.0.len() * 20);
    for (i, Coord { x, y }) in ring.0.iter().enumerate() {
        if i > 0 {
            positions.push(' ');
        }
        // The territory's coordinates are stored to 1e-5 degree: five decimals lose nothing.
        positions.push_str(&format!("{y:.5} {x:.5}"));
    }
    write(writer, Event::Text(BytesText::new(&positions)));
    write(writer, Event::End(BytesEnd::new("gml:posList")));
    write(writer, Event::End(BytesEnd::new("gml:LinearRing")));
    write(writer, Event::End(BytesEnd::new(name)));
}

/// Writes an event into memory.
pub(crate) fn write(writer: &mut Writer<Vec<u8>>, event: Event<'_>) {
    // Writing into a Vec<u8> cannot fail: its io::Write never returns an error.
    writer
        .write_event(event)
        .expect("writing into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_departement_has_a_bounded_boundary() {
        let territory = Territory::france();
        let boundaries = Boundaries::new(territory);
        for departement in territory.departements() {
            let boundary = boundaries
                .of_departement(&departement.code)
                .expect("a boundary");
            let vertices = count(&fit(departement.outline()));
            assert!(
                vertices <= VERTICES_MAX,
                "{}: {vertices} vertices",
                departement.code
            );
            assert_eq!(
                boundaries.by_key(&boundary.key).map(|b| &b.key),
                Some(&boundary.key)
            );
        }
        assert!(boundaries.by_key("departement-00").is_none());
    }

    #[test]
    fn exterior_rings_turn_counter_clockwise() {
        use geo::Area;
        let territory = Territory::france();
        let outline = fit(territory
            .departement("13")
            .expect("Bouches-du-Rhône")
            .outline());
        assert!(
            outline
                .iter()
                .all(|p| Polygon::new(p.exterior().clone(), vec![]).signed_area() > 0.0)
        );
    }
}
