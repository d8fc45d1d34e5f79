//! Writes one PNG of each kind drawn by `gumbolt_examples::plot` into a directory, from
//! synthetic data shaped like the paper's results:
//!
//! ```text
//! cargo run -p gumbolt-examples --example plot_demo -- /tmp/gumbolt-plots
//! ```
//!
//! - `curves.png`: F_k and L_k (k = 20) on train and valid vs iteration (Fig. 2b style);
//! - `samples.png`: a 10 × 10 grid of 28 × 28 images at scale 2;
//! - `structures.png`: test NLL of three models on four structures, mean ± std.

use gumbolt_examples::plot::{self, Series};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "plots".to_owned()),
    );
    std::fs::create_dir_all(&dir)?;

    // Learning curves: bounds rising from about -200 towards -85 nats, the valid ones
    // evaluated every 10k iterations and flattening (over-fitting) at the end.
    let curve = |offset: f64, rate: f64, iters: std::ops::Range<u32>, step: usize| {
        iters
            .step_by(step)
            .map(|i| {
                let t = f64::from(i);
                let wiggle = 0.8 * (t / 3_000.0).sin();
                (t, -85.0 - offset - 115.0 * (-t / rate).exp() + wiggle)
            })
            .collect::<Vec<_>>()
    };
    let mut valid_f = curve(6.0, 60_000.0, 0..400_001, 10_000);
    valid_f[7].1 = f64::NAN; // a failed evaluation: skipped
    let series = [
        Series::new("F_k train", curve(2.0, 50_000.0, 0..400_001, 1_000)),
        Series::new("L_k train", curve(0.0, 50_000.0, 0..400_001, 1_000)),
        Series::new("F_k valid", valid_f),
        Series::new("L_k valid", curve(4.0, 60_000.0, 0..400_001, 10_000)),
    ];
    let path = dir.join("curves.png");
    plot::learning_curves(&series, "GumBolt, MNIST, k = 20", "bound (nats)", &path)?;
    println!("{}", path.display());

    // Samples: synthetic 28 x 28 "strokes" (rings and bars of varying position and thickness).
    let (h, w, n) = (28, 28, 100);
    let mut images = Vec::with_capacity(n * h * w);
    for k in 0..n {
        let (cx, cy) = (14.0 + (k % 7) as f32 - 3.0, 14.0 + (k % 5) as f32 - 2.0);
        let radius = 5.0 + (k % 4) as f32;
        for r in 0..h {
            for c in 0..w {
                let (dx, dy) = (c as f32 - cx, r as f32 - cy);
                let ring = 1.0 - ((dx * dx + dy * dy).sqrt() - radius).abs() / 1.5;
                let bar = if k % 3 == 0 {
                    1.0 - (dx - dy * 0.3).abs() / 1.2
                } else {
                    0.0
                };
                images.push(ring.max(bar));
            }
        }
    }
    let path = dir.join("samples.png");
    plot::image_grid(&images, h, w, 10, &path, 2)?;
    println!("{}", path.display());

    // Model comparison per structure (numbers shaped like the paper's Table 1, made up).
    let row = |v: [(f64, f64); 3]| {
        ["DVAE++", "DVAE#", "GumBolt"]
            .iter()
            .zip(v)
            .map(|(m, (mean, std))| (m.to_string(), mean, std))
            .collect::<Vec<_>>()
    };
    let groups = vec![
        ("—".to_owned(), row([(90.1, 0.2), (89.5, 0.3), (88.9, 0.1)])),
        (
            "——".to_owned(),
            row([(85.4, 0.3), (84.9, 0.2), (84.5, 0.3)]),
        ),
        (
            "~—".to_owned(),
            row([(85.9, 0.1), (85.2, 0.3), (83.2, 0.2)]),
        ),
        (
            "~——".to_owned(),
            row([(84.5, 0.2), (f64::NAN, 0.0), (82.8, 0.4)]),
        ),
    ];
    let path = dir.join("structures.png");
    plot::grouped_points(&groups, "test NLL (nats)", "MNIST, k = 20", &path)?;
    println!("{}", path.display());
    Ok(())
}
