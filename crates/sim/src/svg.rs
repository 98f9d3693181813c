//! Charts of answer time and queue length over time, as SVG.

use std::path::Path;

use plotters::prelude::*;
use secourir_config::Plan;

use crate::engine::{Run, SERIES_POINTS};
use crate::scenario::Scenario;

const PALETTE: [RGBColor; 8] = [
    RGBColor(200, 30, 30),
    RGBColor(230, 120, 0),
    RGBColor(150, 60, 170),
    RGBColor(20, 90, 200),
    RGBColor(0, 140, 110),
    RGBColor(90, 90, 90),
    RGBColor(160, 120, 40),
    RGBColor(0, 170, 220),
];

/// Draws, for the surging zones and a few unaffected ones, the mean answer time and the longest
/// queue per interval over the run, and for the whole country the work-conservation figure:
/// call-takers that could have lent while a call waited past its threshold.
pub fn write_svg(path: &Path, run: &Run, plan: &Plan, scenario: &Scenario) -> Result<(), String> {
    let zones = chosen_zones(run, plan, scenario);
    let hours = |bucket: usize| (bucket as u64 * run.bucket_ms) as f64 / 3_600_000.0;
    let span_h = hours(SERIES_POINTS);
    let answer: Vec<Vec<(f64, f64)>> = zones
        .iter()
        .map(|&z| {
            run.series[z]
                .iter()
                .enumerate()
                .filter(|(_, p)| p.answered > 0)
                .map(|(b, p)| {
                    (
                        hours(b),
                        p.answer_sum_ms as f64 / f64::from(p.answered) / 1000.0,
                    )
                })
                .collect()
        })
        .collect();
    let queue: Vec<Vec<(f64, f64)>> = zones
        .iter()
        .map(|&z| {
            run.series[z]
                .iter()
                .enumerate()
                .map(|(b, p)| (hours(b), f64::from(p.queue_max)))
                .collect()
        })
        .collect();
    let max_answer = answer.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let max_queue = queue.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    // Mean lendable call-takers left idle during each interval, over the whole country.
    let idle: Vec<(f64, f64)> = (0..SERIES_POINTS)
        .map(|b| {
            let ms: u64 = run.series.iter().map(|zone| zone[b].lendable_idle_ms).sum();
            (hours(b), ms as f64 / run.bucket_ms as f64)
        })
        .collect();
    let total_idle_s = run.national.lendable_idle_ms as f64 / 1000.0;
    let max_idle = idle.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;

    let root = SVGBackend::new(path, (1100, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, rest) = root.split_vertically(380);
    let (bottom, conservation) = rest.split_vertically(380);
    draw_conservation(&conservation, &idle, span_h, max_idle, total_idle_s)?;
    let panels = [
        (top, "Temps moyen de décroché (s)", &answer, max_answer),
        (
            bottom,
            "File d'attente la plus longue (appels)",
            &queue,
            max_queue,
        ),
    ];
    for (area, title, series, y_max) in panels {
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..span_h, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("heures depuis le début")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (&z, points)) in zones.iter().zip(series.iter()).enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let surging = scenario
                .surges
                .iter()
                .any(|s| s.zones.contains(&plan.zones[z].code));
            let label = format!(
                "{}{}",
                plan.zones[z].code,
                if surging { " (pic)" } else { "" }
            );
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_conservation(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    idle: &[(f64, f64)],
    span_h: f64,
    y_max: f64,
    total_s: f64,
) -> Result<(), String> {
    let title = format!(
        "Opérateurs prêtables restés libres pendant qu'un appel attendait (total : {total_s:.0} opérateur-secondes)"
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span_h, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("heures depuis le début")
        .y_desc("opérateurs (moyenne)")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(idle.iter().copied(), BLACK.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The surging zones (at most five), then the busiest zones without surge, eight lines in all.
fn chosen_zones(run: &Run, plan: &Plan, scenario: &Scenario) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    for surge in &scenario.surges {
        for code in &surge.zones {
            if let Some(z) = plan.zone_id(code) {
                let z = usize::from(z.0);
                if !chosen.contains(&z) && chosen.len() < 5 {
                    chosen.push(z);
                }
            }
        }
    }
    let mut others: Vec<usize> = (0..plan.zones.len())
        .filter(|z| !chosen.contains(z))
        .collect();
    others.sort_by(|a, b| {
        run.zones[*b]
            .offered
            .cmp(&run.zones[*a].offered)
            .then(a.cmp(b))
    });
    let room = 8usize.saturating_sub(chosen.len()).max(3);
    chosen.extend(others.into_iter().take(room));
    chosen
}
