//! PNG output of `gumbolt_examples::plot`: files are written, decoded back with `image`, and
//! checked for size, content (the grid pixel for pixel, charts for drawn curves and text), and
//! clean errors.

use gumbolt_examples::plot::{self, CHART_HEIGHT, CHART_WIDTH, Mark, PlotError, Series};
use image::{Rgb, RgbImage};
use std::path::Path;

/// The first two series colours (tab10 blue and orange).
const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
const GREEN: Rgb<u8> = Rgb([44, 160, 44]);

fn open_rgb(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Pixels of exactly `color`.
fn count(img: &RgbImage, color: Rgb<u8>) -> usize {
    img.pixels().filter(|&&p| p == color).count()
}

/// Dark (text or axis) pixels in the rows `y0..y1`.
fn dark_in_rows(img: &RgbImage, y0: u32, y1: u32) -> usize {
    (y0..y1)
        .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
        .count()
}

/// Pixels of the grey "no data" note (and its antialiasing) within 120 x 40 px of the centre.
fn grey_text_near_centre(img: &RgbImage) -> usize {
    let (cx, cy) = (CHART_WIDTH / 2, CHART_HEIGHT / 2);
    (cy - 40..cy + 40)
        .flat_map(|y| (cx - 120..cx + 120).map(move |x| (x, y)))
        .map(|(x, y)| img.get_pixel(x, y).0)
        .filter(|&[r, g, b]| r == g && g == b && (100..=200).contains(&r))
        .count()
}

fn assert_chart(path: &Path) -> RgbImage {
    let img = open_rgb(path);
    assert_eq!(img.dimensions(), (CHART_WIDTH, CHART_HEIGHT));
    // The background is white, and the title (top 45 rows) was rendered with the font.
    assert_eq!(*img.get_pixel(2, 2), Rgb([255, 255, 255]));
    assert!(dark_in_rows(&img, 0, 45) > 100, "no title text");
    img
}

fn nll_curve(n: usize, offset: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let t = i as f64 * 1000.0;
            (t, -90.0 - offset - 100.0 * (-t / 20_000.0).exp())
        })
        .collect()
}

#[test]
fn learning_curves_draw_each_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.png");
    let series = [
        Series::new("F_k train", nll_curve(200, 0.0)),
        Series::new("L_k train", nll_curve(200, 5.0)),
    ];
    plot::learning_curves(&series, "GumBolt, MNIST", "bound (nats)", &path).unwrap();
    let img = assert_chart(&path);
    assert_eq!(
        grey_text_near_centre(&img),
        0,
        "a chart with data has no \"no data\" note"
    );
    // Long lines of both colours (plus their legend entries).
    assert!(count(&img, BLUE) > 1000, "blue: {}", count(&img, BLUE));
    assert!(
        count(&img, ORANGE) > 1000,
        "orange: {}",
        count(&img, ORANGE)
    );
    // No temporary file is left next to the output.
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn schedule_marks_are_dashed_vertical_lines_inside_the_range() {
    const MARK_GREY: Rgb<u8> = Rgb([150, 150, 150]);
    let dir = tempfile::tempdir().unwrap();
    let series = [Series::new("F_tr", nll_curve(200, 0.0))];
    let plain = dir.path().join("plain.png");
    plot::learning_curves(&series, "no marks", "nats", &plain).unwrap();
    // Text antialiasing may hit the marks' grey in a few pixels.
    let n0 = count(&assert_chart(&plain), MARK_GREY);
    assert!(n0 < 20, "{n0} grey pixels without marks");

    // The curve spans iterations 0..199 000: two marks inside, one outside (left out).
    let marks = |xs: &[f64]| -> Vec<Mark> {
        xs.iter()
            .map(|&x| Mark {
                x,
                label: "lr".into(),
            })
            .collect()
    };
    let one = dir.path().join("one.png");
    let two = dir.path().join("two.png");
    plot::learning_curves_with_marks(&series, &marks(&[60_000.0]), "one mark", "nats", &one)
        .unwrap();
    plot::learning_curves_with_marks(
        &series,
        &marks(&[60_000.0, 150_000.0, 5e6]),
        "two marks in range",
        "nats",
        &two,
    )
    .unwrap();
    // Dashed vertical lines: columns holding many pixels of the marks' grey.
    let line_columns = |path: &Path| -> Vec<u32> {
        let img = assert_chart(path);
        (0..img.width())
            .filter(|&x| {
                (0..img.height())
                    .filter(|&y| *img.get_pixel(x, y) == MARK_GREY)
                    .count()
                    > 100
            })
            .collect()
    };
    let (c1, c2) = (line_columns(&one), line_columns(&two));
    assert!(!c1.is_empty() && c1.len() <= 2, "one mark: columns {c1:?}");
    // The second in-range mark adds its own column(s); the out-of-range one adds none.
    assert!(
        c2.len() > c1.len() && c2.len() <= 4,
        "two marks: columns {c2:?}"
    );
    assert!(c1.iter().all(|x| c2.contains(x)));
    assert!(line_columns(&plain).is_empty());
}

#[test]
fn learning_curves_skip_nan_and_show_single_points() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_nan = nll_curve(60, 0.0);
    with_nan[10].1 = f64::NAN;
    with_nan[20].0 = f64::NAN;
    with_nan[30].1 = f64::NEG_INFINITY;
    let series = [
        Series::new("with NaN", with_nan),
        Series::new("one point", vec![(30_000.0, -120.0)]),
        Series::new("all NaN", vec![(f64::NAN, 1.0), (2.0, f64::NAN)]),
        Series::new("", vec![]),
    ];
    let path = dir.path().join("robust.png");
    plot::learning_curves(&series, "robust", "nats", &path).unwrap();
    let img = assert_chart(&path);
    assert!(count(&img, BLUE) > 500);
    // The single point is drawn as a marker (plus the legend's marker).
    assert!(count(&img, ORANGE) > 30, "orange: {}", count(&img, ORANGE));
}

#[test]
fn learning_curves_without_data() {
    let dir = tempfile::tempdir().unwrap();
    for (i, series) in [
        vec![],
        vec![Series::new("empty", vec![])],
        vec![Series::new("nan", vec![(f64::NAN, f64::NAN)])],
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("empty{i}.png"));
        plot::learning_curves(series, "nothing yet", "nats", &path).unwrap();
        let img = assert_chart(&path);
        // "no data" (grey text) in the middle of the plot.
        assert!(
            grey_text_near_centre(&img) > 50,
            "{}",
            grey_text_near_centre(&img)
        );
    }
    // A single point, and all points on one value or one iteration: ranges are widened.
    let path = dir.path().join("flat.png");
    let series = [
        Series::new("flat", vec![(0.0, -100.0), (10.0, -100.0)]),
        Series::new("vertical", vec![(5.0, -100.0), (5.0, -100.0)]),
    ];
    plot::learning_curves(&series, "flat", "nats", &path).unwrap();
    let img = assert_chart(&path);
    assert!(count(&img, BLUE) > 200);
}

#[test]
fn learning_curves_reject_unplottable_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.png");
    let series = [Series::new("huge", vec![(0.0, -1e308), (1.0, 1e308)])];
    let err = plot::learning_curves(&series, "t", "y", &path).unwrap_err();
    assert!(matches!(err, PlotError::InvalidInput(_)), "{err}");
    assert!(!path.exists());
}

#[test]
fn charts_report_unwritable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let series = [Series::new("a", nll_curve(5, 0.0))];
    let groups = vec![("g".to_owned(), vec![("m".to_owned(), 1.0, 0.1)])];
    let missing_dir = dir.path().join("no/such/dir/curves.png");
    let a_directory = dir.path().to_path_buf();
    for path in [&missing_dir, &a_directory] {
        let errors = [
            plot::learning_curves(&series, "t", "y", path).unwrap_err(),
            plot::grouped_points(&groups, "y", "t", path).unwrap_err(),
            plot::image_grid(&[0.5; 4], 2, 2, 1, path, 1).unwrap_err(),
        ];
        for err in errors {
            match &err {
                PlotError::Write { path: p, .. } => assert_eq!(p, path),
                other => panic!("expected a write error, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }
    // Nothing was left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn existing_files_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    std::fs::write(&path, b"not a png").unwrap();
    plot::image_grid(&[0.0, 1.0], 1, 2, 1, &path, 1).unwrap();
    let img = image::open(&path).unwrap().to_luma8();
    assert_eq!(img.as_raw(), &[0, 255]);
}

#[test]
fn image_grid_places_every_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let (h, w, n, cols, scale) = (3usize, 4usize, 5usize, 2usize, 3u32);
    // Distinct values per pixel, including out-of-range ones (clamped) and a NaN (black).
    let mut images: Vec<f32> = (0..n * h * w).map(|i| (i % 29) as f32 / 28.0).collect();
    images[0] = -0.7;
    images[1] = 3.0;
    images[2] = f32::NAN;
    plot::image_grid(&images, h, w, cols, &path, scale).unwrap();

    let img = image::open(&path).unwrap();
    assert_eq!(img.color(), image::ColorType::L8);
    let img = img.to_luma8();
    let s = scale as usize;
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * w * s + cols - 1, rows * h * s + rows - 1);
    assert_eq!(img.dimensions(), (width as u32, height as u32));

    let expect = |v: f32| -> u8 {
        if v.is_nan() {
            0
        } else {
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    };
    let mut covered = vec![false; width * height];
    for k in 0..n {
        let (x0, y0) = ((k % cols) * (w * s + 1), (k / cols) * (h * s + 1));
        for r in 0..h {
            for c in 0..w {
                let want = expect(images[k * h * w + r * w + c]);
                for dy in 0..s {
                    for dx in 0..s {
                        let (x, y) = (x0 + c * s + dx, y0 + r * s + dy);
                        assert_eq!(img.get_pixel(x as u32, y as u32).0[0], want, "image {k}");
                        covered[y * width + x] = true;
                    }
                }
            }
        }
    }
    assert_eq!(img.get_pixel(0, 0).0[0], 0); // clamped -0.7
    assert_eq!(img.get_pixel(s as u32, 0).0[0], 255); // clamped 3.0
    // Everything else (separators, the empty last cell) is white.
    for (i, p) in img.pixels().enumerate() {
        if !covered[i] {
            assert_eq!(p.0[0], 255, "pixel {i} should be background");
        }
    }
}

#[test]
fn image_grid_fewer_images_than_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("row.png");
    plot::image_grid(&[1.0; 2 * 28 * 28], 28, 28, 10, &path, 1).unwrap();
    let img = image::open(&path).unwrap().to_luma8();
    assert_eq!(img.dimensions(), (28 * 2 + 1, 28));
}

#[test]
fn image_grid_rejects_bad_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let data = [0.5f32; 12];
    let cases: [(&[f32], usize, usize, usize, u32); 8] = [
        (&data, 0, 4, 1, 1),
        (&data, 3, 0, 1, 1),
        (&data, 3, 4, 0, 1),
        (&data, 3, 4, 1, 0),
        (&data, 5, 5, 1, 1), // fewer values than one image
        (&data, 5, 2, 1, 1), // not a whole number of images
        (&[], 3, 4, 1, 1),
        (&data, 3, 4, 1, 100_000), // too large
    ];
    for (images, h, w, cols, scale) in cases {
        let err = plot::image_grid(images, h, w, cols, &path, scale).unwrap_err();
        assert!(
            matches!(err, PlotError::InvalidInput(_)),
            "{h}x{w} cols {cols} scale {scale}: {err:?}"
        );
    }
    let err = plot::image_grid(&data, usize::MAX, 2, 1, &path, 1).unwrap_err();
    assert!(matches!(err, PlotError::InvalidInput(_)), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn grouped_points_draw_means_and_error_bars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.png");
    let row = |v: &[(&str, f64, f64)]| {
        v.iter()
            .map(|&(m, mean, std)| (m.to_owned(), mean, std))
            .collect::<Vec<_>>()
    };
    let groups = vec![
        (
            "—".to_owned(),
            row(&[
                ("DVAE++", 90.1, 0.2),
                ("DVAE#", 89.5, 0.3),
                ("GumBolt", 88.9, 0.1),
            ]),
        ),
        (
            "~——".to_owned(),
            row(&[("GumBolt", 82.8, f64::NAN), ("DVAE++", 84.5, 0.0)]),
        ),
        ("empty".to_owned(), vec![]),
        ("nan".to_owned(), row(&[("DVAE#", f64::NAN, 1.0)])),
    ];
    plot::grouped_points(&groups, "test NLL (nats)", "MNIST", &path).unwrap();
    let img = assert_chart(&path);
    for color in [BLUE, ORANGE, GREEN] {
        assert!(count(&img, color) > 50, "{color:?}: {}", count(&img, color));
    }
}

#[test]
fn grouped_points_without_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.png");
    plot::grouped_points(&[], "y", "nothing", &path).unwrap();
    assert!(grey_text_near_centre(&assert_chart(&path)) > 50);
    let groups = vec![("g".to_owned(), vec![("m".to_owned(), f64::NAN, 0.1)])];
    plot::grouped_points(&groups, "y", "nothing", &path).unwrap();
    assert!(grey_text_near_centre(&assert_chart(&path)) > 50);
}
