//! `--svg PATH`: speedup per column per row (grouped bars, log scale, from 1 = serial)
//! above predicted vs measured speedup (scatter, log-log, with the ±20 % band).

use std::error::Error;

use plotters::prelude::*;

use crate::report::Ratios;
use crate::results::RowResult;

const COLUMNS: [(&str, RGBColor); 6] = [
    ("rayon", RGBColor(230, 159, 0)),
    ("orx-parallel", RGBColor(86, 180, 233)),
    ("best pinned", RGBColor(0, 158, 115)),
    ("par_auto cold", RGBColor(204, 121, 167)),
    ("par_auto cold+disk", RGBColor(213, 94, 0)),
    ("par_auto warm", RGBColor(0, 114, 178)),
];

/// The warm column's colour, which the scatter of predicted vs measured (warm) uses.
const WARM: RGBColor = COLUMNS[5].1;

/// Writes the chart to `path`.
pub fn write_svg(path: &str, rows: &[RowResult], title: &str) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 1100)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(600);
    bars(&top, rows, title)?;
    scatter(&bottom, rows)?;
    root.present()?;
    Ok(())
}

fn finite(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v)
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[RowResult],
    title: &str,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let ratios: Vec<[f64; COLUMNS.len()]> = rows
        .iter()
        .map(|r| {
            let q = Ratios::of(r);
            [q.rayon, q.orx, q.pinned, q.cold, q.cold_disk, q.warm]
        })
        .collect();
    let all = ratios.iter().flatten().copied().filter_map(finite);
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let n = rows.len().max(1);
    let names: Vec<String> = rows.iter().map(|r| r.row.name().to_string()).collect();

    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Speedup over serial (log scale) — {title}"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc("serial time / column time")
        .y_label_formatter(&|v: &f64| format!("{v:.2}"))
        .draw()?;

    let group = 0.84;
    let bw = group / COLUMNS.len() as f64;
    for (k, (name, color)) in COLUMNS.iter().enumerate() {
        let color = *color;
        let bars = ratios.iter().enumerate().filter_map(move |(i, q)| {
            let v = finite(q[k])?;
            let x0 = i as f64 - group / 2.0 + k as f64 * bw;
            Some(Rectangle::new(
                [(x0, 1.0), (x0 + bw * 0.9, v)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
        BLACK.stroke_width(1),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[RowResult],
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let points: Vec<(String, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let q = Ratios::of(r);
            Some((
                r.row.name().to_string(),
                finite(q.predicted)?,
                finite(q.measured)?,
            ))
        })
        .collect();
    let (lo, hi) = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo / 1.6, hi * 1.6);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "par_auto: predicted vs measured speedup (warm; dashed: ±20 %)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("predicted (plan.estimated_speedup)")
        .y_desc("measured (serial / par_auto warm)")
        .x_label_formatter(&|v: &f64| format!("{v:.2}"))
        .y_label_formatter(&|v: &f64| format!("{v:.2}"))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(lo, lo), (hi, hi)],
        BLACK.stroke_width(1),
    )))?;
    for f in [0.8, 1.2] {
        let dashes = (0..40).map(|i| {
            let a = lo * (hi / lo).powf(i as f64 / 40.0);
            let b = lo * (hi / lo).powf((i as f64 + 0.5) / 40.0);
            PathElement::new(vec![(a, a * f), (b, b * f)], BLACK.mix(0.5).stroke_width(1))
        });
        chart.draw_series(dashes)?;
    }
    chart.draw_series(
        points
            .iter()
            .map(|(_, p, m)| Circle::new((*p, *m), 5, WARM.filled())),
    )?;
    chart.draw_series(points.iter().map(|(name, p, m)| {
        Text::new(
            name.clone(),
            (*p * 1.04, *m),
            ("sans-serif", 14).into_font(),
        )
    }))?;
    Ok(())
}
