//! France's territory, built into the binary: the 101 départements and ~35,000 communes with
//! their polygons, INSEE codes, postcodes and populations, and the adjacency of départements.
//!
//! `locate(lat, lon)` finds the commune and département of a point through an R-tree of polygon
//! bounding boxes and an exact point-in-polygon test. A point in a département but in no commune
//! (areas the source leaves to no commune) gets the nearest commune of that département; a point in
//! no polygon but within 500 m of one (slivers, simplified coasts) gets the nearest commune.

mod format;

use std::collections::HashMap;
use std::sync::OnceLock;

use geo::{Contains, Coord, LineString, MultiPolygon, Point, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// The compact territory produced by `build.rs` from `data/fr/`.
static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/territory.bin"));

/// Distance within which a point outside every polygon still gets the nearest commune.
pub const NEAR_LAND_M: f64 = 500.0;
const METRES_PER_DEGREE: f64 = 111_195.0;

/// Why the embedded territory could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("territory data is corrupt: {0}")]
pub struct TerritoryError(String);

/// A département.
#[derive(Debug, Clone)]
pub struct Departement {
    /// INSEE code (`01` … `95`, `2A`, `2B`, `971` … `976`).
    pub code: String,
    /// Name.
    pub name: String,
    /// Population (sum of its communes).
    pub population: u64,
    /// INSEE code of its chef-lieu.
    pub chef_lieu_insee: String,
    outline: MultiPolygon<f64>,
}

impl Departement {
    /// Its outline, WGS84 (x = longitude, y = latitude), for drawing maps.
    pub fn outline(&self) -> &MultiPolygon<f64> {
        &self.outline
    }
}

/// A commune or a municipal arrondissement of Paris, Lyon or Marseille.
#[derive(Debug, Clone, PartialEq)]
pub struct Commune {
    /// INSEE code.
    pub insee: String,
    /// Name.
    pub name: String,
    /// Code of its département.
    pub departement: String,
    /// Postcodes.
    pub postcodes: Vec<String>,
    /// Legal population.
    pub population: u64,
    /// Latitude of a point inside it.
    pub lat: Option<f64>,
    /// Longitude of a point inside it.
    pub lon: Option<f64>,
    /// For an arrondissement: the INSEE code of its commune (75056, 69123, 13055).
    pub parent_insee: Option<String>,
}

/// Where a point is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Place {
    /// Département code.
    pub departement: String,
    /// INSEE code of the commune (the parent commune for an arrondissement).
    pub insee: Option<String>,
    /// Name of the commune.
    pub commune: Option<String>,
    /// INSEE code of the arrondissement of Paris, Lyon or Marseille.
    pub arrondissement_insee: Option<String>,
    /// Metres from the commune's polygon; 0 inside it.
    pub distance_m: f64,
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// The départements and communes with their spatial indexes.
pub struct Territory {
    departements: Vec<Departement>,
    communes: Vec<Commune>,
    /// Commune polygons, and the commune each belongs to.
    polygons: Vec<(Polygon<f64>, u32)>,
    commune_tree: RTree<Entry>,
    /// Département polygons, and the département each belongs to.
    departement_polygons: Vec<(Polygon<f64>, u32)>,
    departement_tree: RTree<Entry>,
    by_insee: HashMap<String, u32>,
    by_postcode: HashMap<String, Vec<u32>>,
    by_name: HashMap<String, Vec<u32>>,
    by_code: HashMap<String, u32>,
    neighbours: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for Territory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Territory({} départements, {} communes)",
            self.departements.len(),
            self.communes.len()
        )
    }
}

fn decode_ring(deltas: &[i32]) -> LineString<f64> {
    let mut coords = Vec::with_capacity(deltas.len() / 2);
    let (mut x, mut y) = (0i64, 0i64);
    for pair in deltas.chunks_exact(2) {
        x += i64::from(pair[0]);
        y += i64::from(pair[1]);
        coords.push(Coord {
            x: x as f64 / 1e5,
            y: y as f64 / 1e5,
        });
    }
    LineString::new(coords)
}

fn decode_polygons(polygons: &format::Polygons) -> Vec<Polygon<f64>> {
    polygons
        .iter()
        .filter_map(|rings| {
            let mut rings = rings.iter().map(|r| decode_ring(r));
            let exterior = rings.next()?;
            Some(Polygon::new(exterior, rings.collect()))
        })
        .collect()
}

fn envelope(polygon: &Polygon<f64>) -> Rectangle<[f64; 2]> {
    let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
    for c in polygon.exterior().coords() {
        min = [min[0].min(c.x), min[1].min(c.y)];
        max = [max[0].max(c.x), max[1].max(c.y)];
    }
    Rectangle::from_corners(min, max)
}

/// Folds a name for civic-address matching: no accents, no case, "st" for "saint", spaces only.
pub fn fold_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c {
            'à' | 'â' | 'ä' | 'á' | 'À' | 'Â' | 'Ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'î' | 'ï' | 'Î' | 'Ï' | 'í' => 'i',
            'ô' | 'ö' | 'Ô' | 'Ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' | 'ú' => 'u',
            'ç' | 'Ç' => 'c',
            'ÿ' | 'Ÿ' => 'y',
            'œ' | 'Œ' => {
                out.push_str("oe");
                continue;
            }
            '-' | '\'' | '’' | '_' | ',' | '.' => ' ',
            c => c.to_ascii_lowercase(),
        };
        out.push(c);
    }
    let words: Vec<&str> = out
        .split_whitespace()
        .map(|w| match w {
            "saint" => "st",
            "sainte" => "ste",
            w => w,
        })
        .collect();
    words.join(" ")
}

impl Territory {
    /// The embedded territory of France, decoded once on first use.
    pub fn france() -> &'static Territory {
        static FRANCE: OnceLock<Territory> = OnceLock::new();
        FRANCE.get_or_init(|| match Territory::load_embedded() {
            Ok(t) => t,
            // The data is built into the binary by build.rs: it decodes, or the build is broken.
            Err(error) => panic!("{error}"),
        })
    }

    /// Decodes the embedded data and builds the indexes.
    pub fn load_embedded() -> Result<Territory, TerritoryError> {
        let data: format::Data =
            postcard::from_bytes(EMBEDDED).map_err(|e| TerritoryError(e.to_string()))?;
        let mut departements = Vec::with_capacity(data.departements.len());
        let mut departement_polygons = Vec::new();
        let mut by_code = HashMap::new();
        for (i, d) in data.departements.iter().enumerate() {
            let polygons = decode_polygons(&d.polygons);
            for p in &polygons {
                departement_polygons.push((p.clone(), i as u32));
            }
            by_code.insert(d.code.clone(), i as u32);
            departements.push(Departement {
                code: d.code.clone(),
                name: d.name.clone(),
                population: d.population,
                chef_lieu_insee: d.chef_lieu_insee.clone(),
                outline: MultiPolygon::new(polygons),
            });
        }
        let mut communes = Vec::with_capacity(data.communes.len());
        let mut polygons = Vec::new();
        let mut by_insee = HashMap::new();
        let mut by_postcode: HashMap<String, Vec<u32>> = HashMap::new();
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, c) in data.communes.into_iter().enumerate() {
            let i = i as u32;
            for p in decode_polygons(&c.polygons) {
                polygons.push((p, i));
            }
            by_insee.insert(c.insee.clone(), i);
            for pc in &c.postcodes {
                by_postcode.entry(pc.clone()).or_default().push(i);
            }
            by_name.entry(fold_name(&c.name)).or_default().push(i);
            let parent = match c.insee.as_str() {
                s if ("75101"..="75120").contains(&s) => Some("75056"),
                s if ("69381"..="69389").contains(&s) => Some("69123"),
                s if ("13201"..="13216").contains(&s) => Some("13055"),
                _ => None,
            };
            communes.push(Commune {
                insee: c.insee,
                name: c.name,
                departement: c.departement,
                postcodes: c.postcodes,
                population: c.population,
                lat: c.point.map(|p| f64::from(p.1) / 1e5),
                lon: c.point.map(|p| f64::from(p.0) / 1e5),
                parent_insee: parent.map(str::to_owned),
            });
        }
        let commune_tree = RTree::bulk_load(
            polygons
                .iter()
                .enumerate()
                .map(|(i, (p, _))| GeomWithData::new(envelope(p), i as u32))
                .collect(),
        );
        let departement_tree = RTree::bulk_load(
            departement_polygons
                .iter()
                .enumerate()
                .map(|(i, (p, _))| GeomWithData::new(envelope(p), i as u32))
                .collect(),
        );
        let mut neighbours: HashMap<String, Vec<String>> = HashMap::new();
        for (a, b) in data.adjacency {
            neighbours.entry(a.clone()).or_default().push(b.clone());
            neighbours.entry(b).or_default().push(a);
        }
        for list in neighbours.values_mut() {
            list.sort();
        }
        Ok(Territory {
            departements,
            communes,
            polygons,
            commune_tree,
            departement_polygons,
            departement_tree,
            by_insee,
            by_postcode,
            by_name,
            by_code,
            neighbours,
        })
    }

    /// The commune and département containing a WGS84 point, or `None` at sea or abroad.
    pub fn locate(&self, lat: f64, lon: f64) -> Option<Place> {
        if !lat.is_finite()
            || !lon.is_finite()
            || !(-90.0..=90.0).contains(&lat)
            || !(-180.0..=180.0).contains(&lon)
        {
            return None;
        }
        let point = Point::new(lon, lat);
        let here = [lon, lat];
        let inside = self
            .commune_tree
            .locate_all_at_point(here)
            .filter(|e| self.polygons[e.data as usize].0.contains(&point))
            .map(|e| self.polygons[e.data as usize].1)
            .min();
        if let Some(commune) = inside {
            return Some(self.place(commune, 0.0));
        }
        let departement = self
            .departement_tree
            .locate_all_at_point(here)
            .filter(|e| {
                self.departement_polygons[e.data as usize]
                    .0
                    .contains(&point)
            })
            .map(|e| self.departement_polygons[e.data as usize].1)
            .min();
        match departement {
            // Land of a département that belongs to no commune: the nearest commune of it.
            Some(d) => {
                let code = &self.departements[d as usize].code;
                let found = [2_000.0, 10_000.0, 50_000.0]
                    .into_iter()
                    .find_map(|radius| self.nearest(lat, lon, radius, Some(code)));
                Some(match found {
                    Some((commune, distance)) => self.place(commune, distance),
                    None => Place {
                        departement: code.clone(),
                        insee: None,
                        commune: None,
                        arrondissement_insee: None,
                        distance_m: 0.0,
                    },
                })
            }
            None => self
                .nearest(lat, lon, NEAR_LAND_M, None)
                .map(|(commune, distance)| self.place(commune, distance)),
        }
    }

    /// The nearest commune polygon within `radius_m`, optionally in one département.
    fn nearest(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        departement: Option<&str>,
    ) -> Option<(u32, f64)> {
        let scale = lat.to_radians().cos().max(0.01);
        let dlat = radius_m / METRES_PER_DEGREE;
        let dlon = dlat / scale;
        let search = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
        let mut best: Option<(u32, f64)> = None;
        for e in self.commune_tree.locate_in_envelope_intersecting(search) {
            let (polygon, commune) = &self.polygons[e.data as usize];
            if departement.is_some_and(|d| self.communes[*commune as usize].departement != d) {
                continue;
            }
            let d = distance_to_polygon_m(polygon, lat, lon, scale);
            if d <= radius_m && best.is_none_or(|(c, b)| d < b || (d == b && *commune < c)) {
                best = Some((*commune, d));
            }
        }
        best
    }

    fn place(&self, commune: u32, distance_m: f64) -> Place {
        let c = &self.communes[commune as usize];
        let (insee, name, arrondissement) = match &c.parent_insee {
            Some(parent) => {
                let name = self
                    .commune(parent)
                    .map_or(c.name.clone(), |p| p.name.clone());
                (parent.clone(), name, Some(c.insee.clone()))
            }
            None => (c.insee.clone(), c.name.clone(), None),
        };
        Place {
            departement: c.departement.clone(),
            insee: Some(insee),
            commune: Some(name),
            arrondissement_insee: arrondissement,
            distance_m: (distance_m * 10.0).round() / 10.0,
        }
    }

    /// The place of a commune as `locate` would give it (parent commune for an arrondissement).
    pub fn place_of_commune(&self, commune: &Commune) -> Place {
        match self.by_insee.get(&commune.insee) {
            Some(&i) => self.place(i, 0.0),
            None => Place {
                departement: commune.departement.clone(),
                insee: Some(commune.insee.clone()),
                commune: Some(commune.name.clone()),
                arrondissement_insee: None,
                distance_m: 0.0,
            },
        }
    }

    /// A département by code.
    pub fn departement(&self, code: &str) -> Option<&Departement> {
        self.by_code
            .get(code)
            .map(|&i| &self.departements[i as usize])
    }

    /// All départements, in the order of the source (by code).
    pub fn departements(&self) -> &[Departement] {
        &self.departements
    }

    /// Every commune and arrondissement, in the order of the source.
    pub fn communes(&self) -> &[Commune] {
        &self.communes
    }

    /// A commune or arrondissement by INSEE code.
    pub fn commune(&self, insee: &str) -> Option<&Commune> {
        self.by_insee
            .get(insee)
            .map(|&i| &self.communes[i as usize])
    }

    /// Communes with this postcode.
    pub fn communes_by_postcode(&self, postcode: &str) -> Vec<&Commune> {
        self.by_postcode
            .get(postcode.trim())
            .map(|list| list.iter().map(|&i| &self.communes[i as usize]).collect())
            .unwrap_or_default()
    }

    /// The commune named by a civic address (postcode and/or city), accent- and case-insensitive.
    pub fn find_commune(&self, postcode: Option<&str>, city: Option<&str>) -> Option<&Commune> {
        let postcode = postcode.map(str::trim).filter(|s| !s.is_empty());
        let city = city.map(fold_name).filter(|s| !s.is_empty());
        let by_pc = postcode.map(|pc| self.communes_by_postcode(pc));
        match (by_pc, city) {
            (Some(list), Some(city)) => {
                let matching = |c: &&Commune| {
                    let name = fold_name(&c.name);
                    name == city
                        || name.starts_with(&format!("{city} "))
                        || city.starts_with(&format!("{name} "))
                };
                let found = list.iter().find(|c| matching(c)).copied()?;
                // An arrondissement answers for its city: give the city itself.
                Some(
                    found
                        .parent_insee
                        .as_deref()
                        .and_then(|p| self.commune(p))
                        .unwrap_or(found),
                )
            }
            (Some(list), None) => {
                let first = *list.first()?;
                Some(
                    first
                        .parent_insee
                        .as_deref()
                        .and_then(|p| self.commune(p))
                        .unwrap_or(first),
                )
            }
            (None, Some(city)) => {
                let list = self.by_name.get(&city)?;
                // A name shared by several communes: the most populous one.
                list.iter()
                    .map(|&i| &self.communes[i as usize])
                    .filter(|c| c.parent_insee.is_none())
                    .max_by_key(|c| c.population)
            }
            (None, None) => None,
        }
    }

    /// Neighbouring départements, sorted.
    pub fn neighbours(&self, code: &str) -> &[String] {
        self.neighbours.get(code).map_or(&[], Vec::as_slice)
    }
}

/// Metres from a point to a polygon's rings, on a local equirectangular projection.
fn distance_to_polygon_m(polygon: &Polygon<f64>, lat: f64, lon: f64, scale: f64) -> f64 {
    let mut best = f64::MAX;
    for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
        for segment in ring.lines() {
            let ax = (segment.start.x - lon) * scale;
            let ay = segment.start.y - lat;
            let bx = (segment.end.x - lon) * scale;
            let by = segment.end.y - lat;
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 {
                (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (px, py) = (ax + t * dx, ay + t * dy);
            best = best.min((px * px + py * py).sqrt());
        }
    }
    best * METRES_PER_DEGREE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Option<(String, Option<String>)> {
        Territory::france()
            .locate(lat, lon)
            .map(|p| (p.departement, p.insee))
    }

    #[test]
    fn known_places() {
        let marseille = Territory::france()
            .locate(43.2965, 5.3698)
            .expect("Marseille");
        assert_eq!(marseille.departement, "13");
        assert_eq!(marseille.insee.as_deref(), Some("13055"));
        assert_eq!(marseille.commune.as_deref(), Some("Marseille"));
        assert!(marseille.arrondissement_insee.is_some());
        assert_eq!(
            at(48.8530, 2.3499),
            Some(("75".into(), Some("75056".into())))
        );
        assert_eq!(at(45.7640, 4.8357).map(|p| p.1), Some(Some("69123".into())));
        assert_eq!(at(41.9192, 8.7386).map(|p| p.0), Some("2A".into()));
        assert_eq!(at(42.6977, 9.4508).map(|p| p.0), Some("2B".into()));
        assert_eq!(at(14.6161, -61.0588).map(|p| p.0), Some("972".into()));
        assert_eq!(at(-20.8821, 55.4507).map(|p| p.0), Some("974".into()));
        assert_eq!(at(4.9224, -52.3135).map(|p| p.0), Some("973".into()));
        assert_eq!(at(-12.7806, 45.2279).map(|p| p.0), Some("976".into()));
    }

    #[test]
    fn sea_and_abroad_are_nowhere() {
        assert_eq!(at(42.5, 5.0), None, "Mediterranean");
        assert_eq!(at(40.4168, -3.7038), None, "Madrid");
        assert_eq!(at(46.2044, 6.1432), None, "Geneva");
        assert_eq!(at(42.4637, 1.9806), None, "Llívia");
        assert_eq!(at(f64::NAN, 2.0), None);
        assert_eq!(at(400.0, 2.0), None);
    }

    #[test]
    fn every_commune_point_is_in_its_commune() {
        let t = Territory::france();
        let mut checked = 0;
        for c in &t.communes {
            let (Some(lat), Some(lon)) = (c.lat, c.lon) else {
                continue;
            };
            let place = t
                .locate(lat, lon)
                .unwrap_or_else(|| panic!("{} {} not located", c.insee, c.name));
            assert_eq!(place.departement, c.departement, "{}", c.insee);
            let expected = c.parent_insee.clone().unwrap_or(c.insee.clone());
            if place.insee.as_deref() != Some(expected.as_str()) {
                // Only the 4 communes of Cantal with no polygon of their own may differ.
                assert!(place.distance_m == 0.0, "{} located at distance", c.insee);
                assert!(
                    ["15031", "15035", "15047", "15171"].contains(&c.insee.as_str()),
                    "{} → {:?}",
                    c.insee,
                    place.insee
                );
            }
            checked += 1;
        }
        assert!(checked > 34_000, "{checked}");
    }

    #[test]
    fn near_the_coast_gets_the_nearest_commune() {
        // 150 m off the Vieux-Port's coast line is still Marseille; 5 km out at sea is not.
        let t = Territory::france();
        let near = t.locate(43.2800, 5.3490);
        assert!(near.is_some_and(|p| p.departement == "13"));
        assert!(t.locate(43.20, 5.30).is_none());
    }

    #[test]
    fn look_ups() {
        let t = Territory::france();
        assert_eq!(
            t.departement("2A").map(|d| d.name.as_str()),
            Some("Corse-du-Sud")
        );
        assert_eq!(t.departements().len(), 101);
        assert_eq!(
            t.commune("13055").map(|c| c.name.as_str()),
            Some("Marseille")
        );
        assert!(
            t.communes_by_postcode("13001")
                .iter()
                .any(|c| c.insee == "13201")
        );
        assert_eq!(
            t.find_commune(Some("13008"), Some("Marseille"))
                .map(|c| c.insee.as_str()),
            Some("13055")
        );
        assert_eq!(
            t.find_commune(None, Some("saint etienne"))
                .map(|c| c.insee.as_str()),
            Some("42218")
        );
        assert_eq!(t.find_commune(Some("99999"), Some("Nulle-Part")), None);
        assert_eq!(t.find_commune(None, Some("Nulle-Part-sur-Mer")), None);
        assert!(t.neighbours("13").contains(&"84".to_owned()));
    }

    proptest::proptest! {
        #[test]
        fn locate_never_panics(lat in proptest::num::f64::ANY, lon in proptest::num::f64::ANY) {
            let _ = Territory::france().locate(lat, lon);
        }

        #[test]
        fn locate_never_panics_in_france(lat in 41.0f64..51.5, lon in -5.5f64..10.0) {
            let _ = Territory::france().locate(lat, lon);
        }
    }
}
