//! The compact form of the territory built by `build.rs` and decoded at start-up.
//!
//! Coordinates are integers in 1e-5 degree (the precision of the source), each ring stored as
//! interleaved longitude/latitude deltas so that postcard's varints keep the file small.

use serde::{Deserialize, Serialize};

/// Polygons, each a list of rings (exterior first), each ring delta-encoded `[lon, lat, dlon, dlat, …]`.
pub type Polygons = Vec<Vec<Vec<i32>>>;

/// Everything the territory holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Data {
    /// The 101 départements.
    pub departements: Vec<DepartementData>,
    /// Communes and municipal arrondissements.
    pub communes: Vec<CommuneData>,
    /// Pairs of neighbouring départements.
    pub adjacency: Vec<(String, String)>,
}

/// One département.
#[derive(Debug, Serialize, Deserialize)]
pub struct DepartementData {
    pub code: String,
    pub name: String,
    pub population: u64,
    pub chef_lieu_insee: String,
    pub polygons: Polygons,
}

/// One commune.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommuneData {
    pub insee: String,
    pub name: String,
    pub departement: String,
    pub postcodes: Vec<String>,
    pub population: u64,
    /// A point inside the commune, 1e-5 degree.
    pub point: Option<(i32, i32)>,
    pub polygons: Polygons,
}
