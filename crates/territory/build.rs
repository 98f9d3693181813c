//! Turns the territory data of `data/fr/` into the compact file the library embeds.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

#[path = "src/format.rs"]
#[allow(dead_code)]
mod format;

use format::*;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../../data/fr");
    for file in [
        "departements.geojson",
        "communes.geojson.gz",
        "communes.csv",
        "adjacency.csv",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let deps: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("departements.geojson")).expect("departements.geojson"),
    )
    .expect("departements.geojson is JSON");
    let mut gz = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root.join("communes.geojson.gz")).expect("communes.geojson.gz"),
    )
    .read_to_end(&mut gz)
    .expect("communes.geojson.gz is gzip");
    let communes: serde_json::Value =
        serde_json::from_slice(&gz).expect("communes.geojson is JSON");

    let departements = deps["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let p = &f["properties"];
            DepartementData {
                code: p["code"].as_str().expect("code").to_owned(),
                name: p["name"].as_str().expect("name").to_owned(),
                population: p["population"].as_u64().unwrap_or(0),
                chef_lieu_insee: p["chef_lieu_insee"].as_str().unwrap_or("").to_owned(),
                polygons: polygons(&f["geometry"]),
            }
        })
        .collect();

    let mut shapes: HashMap<String, Polygons> = HashMap::new();
    for f in communes["features"].as_array().expect("features") {
        let insee = f["properties"]["insee"].as_str().expect("insee").to_owned();
        shapes.insert(insee, polygons(&f["geometry"]));
    }

    let csv = std::fs::read_to_string(root.join("communes.csv")).expect("communes.csv");
    let mut communes = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "communes.csv: {line}");
        let fixed = |s: &str| s.parse::<f64>().ok().map(|v| (v * 1e5).round() as i32);
        let point = match (fixed(f[6]), fixed(f[5])) {
            (Some(lon), Some(lat)) => Some((lon, lat)),
            _ => None,
        };
        communes.push(CommuneData {
            insee: f[0].to_owned(),
            name: f[1].to_owned(),
            departement: f[2].to_owned(),
            postcodes: f[3]
                .split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            population: f[4].parse().unwrap_or(0),
            point,
            polygons: shapes.remove(f[0]).unwrap_or_default(),
        });
    }
    let adjacency = std::fs::read_to_string(root.join("adjacency.csv"))
        .expect("adjacency.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let data = Data {
        departements,
        communes,
        adjacency,
    };
    let bytes = postcard::to_stdvec(&data).expect("serializable");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("territory.bin");
    std::fs::write(out, bytes).expect("write territory.bin");
}

fn polygons(geometry: &serde_json::Value) -> Polygons {
    let coords = &geometry["coordinates"];
    let list: Vec<&serde_json::Value> = match geometry["type"].as_str() {
        Some("Polygon") => vec![coords],
        Some("MultiPolygon") => coords.as_array().expect("multipolygon").iter().collect(),
        other => panic!("unexpected geometry {other:?}"),
    };
    list.into_iter()
        .map(|polygon| {
            polygon
                .as_array()
                .expect("rings")
                .iter()
                .map(|ring| {
                    let mut out = Vec::new();
                    let (mut px, mut py) = (0i32, 0i32);
                    for point in ring.as_array().expect("ring") {
                        let x = (point[0].as_f64().expect("lon") * 1e5).round() as i32;
                        let y = (point[1].as_f64().expect("lat") * 1e5).round() as i32;
                        out.push(x - px);
                        out.push(y - py);
                        (px, py) = (x, y);
                    }
                    out
                })
                .collect()
        })
        .collect()
}
