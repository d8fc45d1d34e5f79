//! PNG output: learning curves, grids of generated images, and per-structure model comparisons.
//!
//! - [`learning_curves`]: labelled line chart of one or more series against the iteration
//!   (e.g. the paper's Fig. 2b: F_k and L_k on the training and validation sets).
//! - [`image_grid`]: a grey-scale grid of `h × w` images with values in `[0, 1]` (1 = white),
//!   e.g. samples of a model trained on MNIST or OMNIGLOT.
//! - [`grouped_points`]: means with ± std error bars, one group per structure and one colour per
//!   model, for comparing models across structures; [`grouped_points_with_reference`] adds a
//!   reference value (e.g. the paper's number) per model as a cross.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (see `assets/README.md` for its
//! licence), so no system font library is needed. Each function writes its PNG atomically
//! (a temporary file in the same directory, then a rename), so a viewer never sees a partial
//! image, and reports an unwritable path as [`PlotError::Write`] naming that path.

use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Width of a chart in pixels.
pub const CHART_WIDTH: u32 = 960;
/// Height of a chart in pixels.
pub const CHART_HEIGHT: u32 = 600;

/// Largest image [`image_grid`] will allocate, in pixels (256 Mi), so that absurd arguments
/// are an error rather than an out-of-memory abort.
pub const MAX_GRID_PIXELS: u64 = 1 << 28;

/// Series drawn with point markers as well as lines when they have at most this many points.
const MARKER_MAX_POINTS: usize = 50;

/// The chart font, DejaVu Sans 2.37 (Bitstream Vera + Arev licence, `assets/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Font family name under which the embedded font is registered (plotters' default family).
const FONT: &str = "sans-serif";

/// Colours of successive series / models (the "tab10" palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// An error of the plotting functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The arguments cannot be plotted (wrong lengths, zero sizes, unrepresentable ranges).
    #[error("invalid plot input: {0}")]
    InvalidInput(String),
    /// The PNG file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file that was to be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The image could not be encoded as PNG.
    #[error("cannot encode {} as PNG: {message}", path.display())]
    Encode {
        /// The file that was to be written.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
    /// The chart could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Draw {
        /// The file that was to be written.
        path: PathBuf,
        /// The drawing library's message.
        message: String,
    },
    /// The embedded font could not be loaded (a build defect, not a user error).
    #[error("the embedded chart font could not be loaded")]
    Font,
}

/// One line of a [`learning_curves`] chart: `(iteration, value)` points, drawn in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// `(x, y)` points; points with a non-finite coordinate are skipped.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series with the given legend label and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// Draws `series` as a line chart against the iteration and writes it as a
/// [`CHART_WIDTH`] × [`CHART_HEIGHT`] PNG to `path`.
///
/// Values are plotted as given (e.g. pass `-F_k` to plot an NLL bound). Points with a NaN or
/// infinite coordinate are skipped and the remaining points of the series joined; a series with
/// at most 50 points also gets point markers, so a single point is visible. A series with no
/// finite point is listed in the legend as "(no data)"; with no data at all the chart shows
/// empty axes and "no data". Series are coloured in the order given (10 colours, then
/// repeating). The legend is placed in the corner of the plot that the curves cross least.
pub fn learning_curves(
    series: &[Series],
    title: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    learning_curves_with_marks(series, &[], title, y_label, path)
}

/// A vertical mark of a [`learning_curves_with_marks`] chart: an event of the training schedule
/// at iteration `x` (e.g. a learning-rate drop, the end of KL annealing), labelled at the top.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The iteration.
    pub x: f64,
    /// A short label drawn beside the top of the line.
    pub label: String,
}

/// [`learning_curves`] with dashed grey vertical lines at `marks` (those outside the series'
/// iteration range are left out), so that kinks caused by the schedule read as such (GB
/// Fig. 2b: "the abrupt changes are caused by stepwise annealing of the learning rate").
pub fn learning_curves_with_marks(
    series: &[Series],
    marks: &[Mark],
    title: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect()
        })
        .collect();
    let all = || clean.iter().flatten();
    let x_range = padded_range(all().map(|p| p.0), 0.0)?;
    let y_range = padded_range(all().map(|p| p.1), 0.05)?;
    let has_data = all().next().is_some();

    let labels: Vec<String> = series
        .iter()
        .zip(&clean)
        .map(|(s, pts)| match (s.label.is_empty(), pts.is_empty()) {
            (_, true) => format!("{} (no data)", s.label).trim().to_owned(),
            (true, false) => " ".to_owned(),
            (false, false) => s.label.clone(),
        })
        .collect();

    let x_fmt = tick_formatter(x_range.0, x_range.1, true);
    let y_fmt = tick_formatter(y_range.0, y_range.1, false);
    let rgb = render_chart(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(16)
            .margin_right(32)
            .x_label_area_size(52)
            .y_label_area_size(84)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc(y_label)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .max_light_lines(2)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;

        // Curves densified along their segments, for placing the legend where they are not.
        let mut occupied = Vec::new();
        for pts in &clean {
            occupied.extend(densify(pts, 8));
        }
        let position = legend_corner(
            root,
            &labels,
            chart.plotting_area().dim_in_pixel(),
            &occupied,
            x_range,
            y_range,
        );

        let grey = RGBColor(150, 150, 150);
        for m in marks
            .iter()
            .filter(|m| m.x.is_finite() && m.x >= x_range.0 && m.x <= x_range.1)
        {
            chart.draw_series(DashedLineSeries::new(
                [(m.x, y_range.0), (m.x, y_range.1)],
                6,
                4,
                grey.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (m.x, y_range.1),
                TextStyle::from((FONT, 13).into_font())
                    .color(&RGBColor(110, 110, 110))
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            )))?;
        }
        for (i, (pts, label)) in clean.iter().zip(&labels).enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let line = color.stroke_width(2);
            let markers = pts.len() <= MARKER_MAX_POINTS;
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), line))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (22, 0)], line)
                        + Circle::new((11, 0), if markers { 4 } else { 0 }, color.filled())
                });
            if markers {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(position)
                .margin(12)
                .label_font((FONT, 15))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }
        if !has_data {
            chart.draw_series(std::iter::once(no_data_note(x_range, y_range)))?;
        }
        Ok(())
    })?;
    write_png(
        path,
        &rgb,
        CHART_WIDTH,
        CHART_HEIGHT,
        ExtendedColorType::Rgb8,
    )
}

/// Writes a grey-scale PNG grid of images to `path`.
///
/// `images` holds `n` images of `h × w` values each, row-major, one after the other; values are
/// clamped to `[0, 1]` (0 = black, 1 = white, NaN drawn black) and rounded to 8 bits. Image `k`
/// is at grid row `k / cols`, column `k % cols`; each image pixel becomes a `scale × scale`
/// block, and images are separated by 1-pixel white lines (no outer border). The grid has
/// `min(cols, n)` columns, and empty cells of the last row are white. So the PNG is
/// `c·w·scale + c − 1` pixels wide and `r·h·scale + r − 1` high, with `c = min(cols, n)` and
/// `r = ⌈n / cols⌉`.
///
/// Errors: a zero `h`, `w`, `cols` or `scale`, an empty `images` or a length that is not a
/// multiple of `h·w` ([`PlotError::InvalidInput`]); a grid larger than [`MAX_GRID_PIXELS`] or
/// `u32::MAX` pixels on a side ([`PlotError::InvalidInput`]); an unwritable path
/// ([`PlotError::Write`]).
pub fn image_grid(
    images: &[f32],
    h: usize,
    w: usize,
    cols: usize,
    path: impl AsRef<Path>,
    scale: u32,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    let layout = GridLayout::new(images.len(), h, w, cols, scale)?;
    let (width, height) = (layout.width as usize, layout.height as usize);
    let s = scale as usize;
    let mut buf = vec![u8::MAX; width * height];
    for (k, img) in images.chunks_exact(h * w).enumerate() {
        let (x0, y0) = layout.origin(k);
        for (r, row) in img.chunks_exact(w).enumerate() {
            let y = y0 + r * s;
            for (c, &v) in row.iter().enumerate() {
                let g = grey(v);
                let x = x0 + c * s;
                for dy in 0..s {
                    let start = (y + dy) * width + x;
                    buf[start..start + s].fill(g);
                }
            }
        }
    }
    write_png(
        path,
        &buf,
        layout.width,
        layout.height,
        ExtendedColorType::L8,
    )
}

/// One model's result in a [`grouped_points`] group: `(model, mean, std)`.
pub type ModelPoint = (String, f64, f64);

/// Draws, for each group (e.g. a structure), each model's mean as a point with a ± std error
/// bar, and writes the chart as a [`CHART_WIDTH`] × [`CHART_HEIGHT`] PNG to `path`.
///
/// Groups are laid out left to right in the given order, labelled on the x axis. A model keeps
/// the same colour and horizontal offset within every group, in order of first appearance, and
/// is listed once in the legend. A non-finite mean is not drawn; a non-finite or non-positive
/// std draws the point without an error bar. With no finite mean at all the chart shows
/// "no data".
pub fn grouped_points(
    groups: &[(String, Vec<ModelPoint>)],
    y_label: &str,
    title: &str,
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let groups: Vec<(String, Vec<ModelPoint>, Vec<ReferencePoint>)> = groups
        .iter()
        .map(|(name, points)| (name.clone(), points.clone(), Vec::new()))
        .collect();
    grouped_points_impl(&groups, None, y_label, title, path.as_ref())
}

/// A reference value of a model in a [`grouped_points_with_reference`] group (e.g. a published
/// number): `(model, value)`.
pub type ReferencePoint = (String, f64);

/// [`grouped_points`] with a reference value per model and group (e.g. the published number
/// the means are compared with), drawn as a cross in the model's colour at the model's offset
/// and listed once in the legend as `reference_label`. A model that has only reference values
/// still gets its colour and legend entry; non-finite reference values are not drawn. The chart
/// shows "no data" only when there is neither a finite mean nor a finite reference value.
pub fn grouped_points_with_reference(
    groups: &[(String, Vec<ModelPoint>, Vec<ReferencePoint>)],
    reference_label: &str,
    y_label: &str,
    title: &str,
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    grouped_points_impl(groups, Some(reference_label), y_label, title, path.as_ref())
}

fn grouped_points_impl(
    groups: &[(String, Vec<ModelPoint>, Vec<ReferencePoint>)],
    reference_label: Option<&str>,
    y_label: &str,
    title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    let mut models: Vec<&str> = Vec::new();
    for (_, entries, refs) in groups {
        let names = entries
            .iter()
            .map(|(m, _, _)| m)
            .chain(refs.iter().map(|(m, _)| m));
        for model in names {
            if !models.contains(&model.as_str()) {
                models.push(model);
            }
        }
    }
    let n_models = models.len();
    // Horizontal offset of model j inside its group's unit-wide slot.
    let offset = |j: usize| {
        if n_models <= 1 {
            0.0
        } else {
            -0.3 + 0.6 * j as f64 / (n_models - 1) as f64
        }
    };
    // Per model: (x, mean, half-width of the error bar or 0).
    let mut per_model: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); n_models];
    // Reference values: (x, value, colour index).
    let mut references: Vec<(f64, f64, usize)> = Vec::new();
    for (g, (_, _, refs)) in groups.iter().enumerate() {
        for (model, value) in refs {
            let j = models.iter().position(|m| m == model).unwrap_or_default();
            if value.is_finite() {
                references.push((g as f64 + offset(j), *value, j));
            }
        }
    }
    for (g, (_, entries, _)) in groups.iter().enumerate() {
        for (model, mean, std) in entries {
            let j = models.iter().position(|m| m == model).unwrap_or_default();
            if mean.is_finite() {
                let std = if std.is_finite() && *std > 0.0 {
                    *std
                } else {
                    0.0
                };
                per_model[j].push((g as f64 + offset(j), *mean, std));
            }
        }
    }
    let extent = per_model
        .iter()
        .flatten()
        .flat_map(|&(_, m, s)| [m - s, m + s])
        .chain(references.iter().map(|r| r.1));
    let y_range = padded_range(extent, 0.08)?;
    let has_data = per_model.iter().any(|p| !p.is_empty()) || !references.is_empty();
    let x_range = GroupAxis(groups.len()).bounds();
    let names: Vec<&str> = groups.iter().map(|(name, _, _)| name.as_str()).collect();
    let mut labels: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let reference_label = reference_label.filter(|_| !references.is_empty());
    if let Some(l) = reference_label {
        labels.push(l.to_owned());
    }
    let y_fmt = tick_formatter(y_range.0, y_range.1, false);

    let rgb = render_chart(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(16)
            .x_label_area_size(52)
            .y_label_area_size(84)
            .build_cartesian_2d(GroupAxis(groups.len()), y_range.0..y_range.1)?;
        let group_name = |x: &f64| {
            let g = x.round();
            if (x - g).abs() < 1e-6 && g >= 0.0 {
                names
                    .get(g as usize)
                    .copied()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .x_label_formatter(&group_name)
            .x_label_style((FONT, 18))
            .y_label_formatter(&y_fmt)
            .max_light_lines(2)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        // Thin separators between groups.
        chart.draw_series((1..groups.len()).map(|g| {
            let x = g as f64 - 0.5;
            PathElement::new(
                vec![(x, y_range.0), (x, y_range.1)],
                RGBColor(200, 200, 200),
            )
        }))?;

        let occupied: Vec<(f64, f64)> = per_model
            .iter()
            .flatten()
            .flat_map(|&(x, m, s)| [(x, m - s), (x, m), (x, m + s)])
            .chain(references.iter().map(|&(x, v, _)| (x, v)))
            .collect();
        let position = legend_corner(
            root,
            &labels,
            chart.plotting_area().dim_in_pixel(),
            &occupied,
            x_range,
            y_range,
        );
        for (j, points) in per_model.iter().enumerate() {
            let color = PALETTE[j % PALETTE.len()];
            let bar = color.stroke_width(2);
            let with_bar = || points.iter().filter(|p| p.2 > 0.0);
            chart.draw_series(
                with_bar().map(|&(x, m, s)| PathElement::new(vec![(x, m - s), (x, m + s)], bar)),
            )?;
            chart.draw_series(with_bar().flat_map(|&(x, m, s)| {
                [m - s, m + s].map(|y| {
                    EmptyElement::at((x, y)) + PathElement::new(vec![(-6, 0), (6, 0)], bar)
                })
            }))?;
            chart
                .draw_series(points.iter().map(|&(x, m, _)| {
                    EmptyElement::at((x, m))
                        + Circle::new((0, 0), 5, color.filled())
                        + Circle::new((0, 0), 5, BLACK.mix(0.6))
                }))?
                .label(labels[j].as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        }
        if let Some(label) = reference_label {
            chart
                .draw_series(references.iter().map(|&(x, v, j)| {
                    let color = PALETTE[j % PALETTE.len()];
                    EmptyElement::at((x, v)) + Cross::new((0, 0), 6, color.stroke_width(3))
                }))?
                .label(label)
                .legend(|(x, y)| Cross::new((x + 8, y), 6, BLACK.stroke_width(3)));
        }
        if n_models > 0 {
            chart
                .configure_series_labels()
                .position(position)
                .margin(12)
                .label_font((FONT, 15))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }
        if !has_data {
            chart.draw_series(std::iter::once(no_data_note(x_range, y_range)))?;
        }
        Ok(())
    })?;
    write_png(
        path,
        &rgb,
        CHART_WIDTH,
        CHART_HEIGHT,
        ExtendedColorType::Rgb8,
    )
}

/// The x axis of [`grouped_points`]: group `g` is centred at `x = g`, the axis spans
/// `[-0.5, n - 0.5]` (at least one slot), and the ticks are at the group centres only.
struct GroupAxis(usize);

impl GroupAxis {
    fn bounds(&self) -> (f64, f64) {
        (-0.5, self.0.max(1) as f64 - 0.5)
    }
}

impl Ranged for GroupAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.bounds();
        let t = (value - lo) / (hi - lo);
        limit.0 + (f64::from(limit.1 - limit.0) * t + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.0).map(|g| g as f64).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        let (lo, hi) = self.bounds();
        lo..hi
    }
}

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|family| {
            plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS).is_ok()
        })
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Renders a [`CHART_WIDTH`] × [`CHART_HEIGHT`] chart on a white background into an RGB
/// buffer; drawing errors are reported against `path`.
fn render_chart(
    path: &Path,
    draw: impl FnOnce(&Root<'_>) -> DrawResult,
) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let mut rgb = vec![0u8; CHART_WIDTH as usize * CHART_HEIGHT as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut rgb, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        let result: DrawResult = (|| {
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })();
        result.map_err(|e| PlotError::Draw {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(rgb)
}

/// Writes `pixels` as a PNG to `path` via a temporary file in the same directory and a rename.
fn write_png(
    path: &Path,
    pixels: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
) -> Result<(), PlotError> {
    let write_err = |source| PlotError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        write_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    // Unique per process and call, so concurrent writers never share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}-{unique}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);

    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(write_err)?;
        let mut out = BufWriter::new(file);
        PngEncoder::new(&mut out)
            .write_image(pixels, width, height, color)
            .map_err(|e| match e {
                image::ImageError::IoError(io) => write_err(io),
                other => PlotError::Encode {
                    path: path.to_owned(),
                    message: other.to_string(),
                },
            })?;
        out.flush().map_err(write_err)?;
        drop(out);
        std::fs::rename(&tmp, path).map_err(write_err)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Pixel geometry of an [`image_grid`].
struct GridLayout {
    cols: usize,
    cell_w: usize,
    cell_h: usize,
    width: u32,
    height: u32,
}

impl GridLayout {
    fn new(len: usize, h: usize, w: usize, cols: usize, scale: u32) -> Result<Self, PlotError> {
        let invalid = |m: String| Err(PlotError::InvalidInput(m));
        if h == 0 || w == 0 || cols == 0 || scale == 0 {
            return invalid(format!(
                "image grid sizes must be positive, got h = {h}, w = {w}, cols = {cols}, \
                 scale = {scale}"
            ));
        }
        let per_image = h.checked_mul(w).filter(|&p| p <= len);
        let Some(per_image) = per_image.filter(|_| len > 0) else {
            return invalid(format!(
                "image grid needs at least one {h}×{w} image, got {len} values"
            ));
        };
        if !len.is_multiple_of(per_image) {
            return invalid(format!(
                "image grid: {len} values is not a whole number of {h}×{w} images"
            ));
        }
        let n = (len / per_image) as u64;
        let cols = cols.min(n as usize);
        let rows = n.div_ceil(cols as u64);
        let s = u64::from(scale);
        let side = |count: u64, size: usize| -> Option<u64> {
            let cell = (size as u64).checked_mul(s)?;
            cell.checked_mul(count)?.checked_add(count - 1)
        };
        let dims = side(cols as u64, w).zip(side(rows, h));
        let fits = dims.filter(|&(wd, ht)| {
            wd <= u64::from(u32::MAX)
                && ht <= u64::from(u32::MAX)
                && wd.checked_mul(ht).is_some_and(|p| p <= MAX_GRID_PIXELS)
        });
        let Some((width, height)) = fits else {
            return invalid(format!(
                "image grid of {n} {h}×{w} images, {cols} per row, at scale {scale} exceeds \
                 {MAX_GRID_PIXELS} pixels"
            ));
        };
        Ok(Self {
            cols,
            cell_w: w * scale as usize,
            cell_h: h * scale as usize,
            width: width as u32,
            height: height as u32,
        })
    }

    /// Top-left pixel of image `k`.
    fn origin(&self, k: usize) -> (usize, usize) {
        let (r, c) = (k / self.cols, k % self.cols);
        (c * (self.cell_w + 1), r * (self.cell_h + 1))
    }
}

/// `v` clamped to `[0, 1]` as an 8-bit grey level (NaN → 0).
fn grey(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// `[min, max]` of the finite `values`, widened by `frac` of its width on each side; a
/// (numerically) single value `v` gives `v ± max(1, |v|/10)`, no values give `[0, 1]`. Errors if
/// the range is not representable.
fn padded_range(values: impl Iterator<Item = f64>, frac: f64) -> Result<(f64, f64), PlotError> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) || hi == lo {
        let half = (lo.abs() * 0.1).max(1.0);
        (lo - half, hi + half)
    } else {
        let pad = (hi - lo) * frac;
        (lo - pad, hi + pad)
    };
    if lo.is_finite() && hi.is_finite() && (hi - lo).is_finite() {
        Ok((lo, hi))
    } else {
        Err(PlotError::InvalidInput(
            "values span a range too large to plot".to_owned(),
        ))
    }
}

/// `pts` with `k − 1` extra points interpolated along each segment.
fn densify(pts: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * k);
    out.extend(pts.first());
    for pair in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        for i in 1..=k {
            let t = i as f64 / k as f64;
            out.push((x0 + t * (x1 - x0), y0 + t * (y1 - y0)));
        }
    }
    out
}

/// The corner of the plotting area (of `plot_px` pixels) whose legend-sized box holds the
/// fewest `occupied` points; ties go to upper right, lower right, upper left, lower left.
fn legend_corner(
    root: &Root<'_>,
    labels: &[String],
    plot_px: (u32, u32),
    occupied: &[(f64, f64)],
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> SeriesLabelPosition {
    let font: TextStyle = (FONT, 15).into();
    let text_w = labels
        .iter()
        .filter_map(|l| root.estimate_text_size(l, &font).ok())
        .map(|(w, _)| w)
        .max()
        .unwrap_or(0);
    // Legend box: margin 12, marker ~30 px, text, padding; ~22 px per row.
    let box_w = f64::from(text_w + 12 + 30 + 20) / f64::from(plot_px.0.max(1));
    let box_h = f64::from(22 * labels.len() as u32 + 24) / f64::from(plot_px.1.max(1));
    let norm = |(x, y): (f64, f64)| {
        (
            (x - x_range.0) / (x_range.1 - x_range.0),
            (y - y_range.0) / (y_range.1 - y_range.0),
        )
    };
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let count = |right: bool, upper: bool| {
        occupied
            .iter()
            .map(|&p| norm(p))
            .filter(|&(x, y)| {
                let in_x = if right { x >= 1.0 - box_w } else { x <= box_w };
                let in_y = if upper { y >= 1.0 - box_h } else { y <= box_h };
                in_x && in_y
            })
            .count()
    };
    let mut best = (SeriesLabelPosition::UpperRight, usize::MAX);
    for (pos, right, upper) in corners {
        let n = count(right, upper);
        if n < best.1 {
            best = (pos, n);
        }
    }
    best.0
}

/// "no data" in the middle of the plotting area.
fn no_data_note(
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> Text<'static, (f64, f64), &'static str> {
    let style = TextStyle::from((FONT, 22))
        .color(&RGBColor(120, 120, 120))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let centre = ((x_range.0 + x_range.1) / 2.0, (y_range.0 + y_range.1) / 2.0);
    Text::new("no data", centre, style)
}

/// Tick labels for an axis spanning `[lo, hi]`: enough decimals for ticks a hundredth of the
/// span apart (trailing zeros trimmed); with `abbreviate`, values of 10⁴ and more are shown in
/// thousands (`k`) or millions (`M`).
fn tick_formatter(lo: f64, hi: f64, abbreviate: bool) -> impl Fn(&f64) -> String {
    let big = lo.abs().max(hi.abs());
    let (scale, suffix) = match (abbreviate, big) {
        (true, b) if b >= 1e6 => (1e6, "M"),
        (true, b) if b >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let width = (hi - lo) / scale / 100.0;
    let decimals = if width > 0.0 {
        (-width.log10()).ceil().clamp(0.0, 12.0) as usize
    } else {
        3
    };
    move |v: &f64| {
        let mut s = format!("{:.decimals$}", v / scale);
        if s.contains('.') {
            s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
        }
        if s == "0" || s == "-0" {
            return "0".to_owned();
        }
        s + suffix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        let nats = tick_formatter(-210.0, -80.0, false);
        assert_eq!(nats(&-200.0), "-200");
        assert_eq!(nats(&-0.0001), "0");
        let narrow = tick_formatter(-88.3, -88.1, false);
        assert_eq!(narrow(&-88.25), "-88.25");
        assert_eq!(narrow(&-88.2), "-88.2");
        let iters = tick_formatter(0.0, 400_000.0, true);
        assert_eq!(iters(&0.0), "0");
        assert_eq!(iters(&-0.0), "0");
        assert_eq!(iters(&250.0), "0");
        assert_eq!(iters(&50_000.0), "50k");
        let long = tick_formatter(0.0, 3e6, true);
        assert_eq!(long(&1_500_000.0), "1.5M");
        let small = tick_formatter(0.0, 5000.0, true);
        assert_eq!(small(&2500.0), "2500");
        assert_eq!(tick_formatter(1.0, 1.0, false)(&1.0), "1");
    }

    #[test]
    fn ranges_are_padded_and_never_degenerate() {
        let r = padded_range([1.0, 3.0].into_iter(), 0.5).unwrap();
        assert_eq!(r, (0.0, 4.0));
        let r = padded_range([f64::NAN, -100.0].into_iter(), 0.05).unwrap();
        assert_eq!(r, (-110.0, -90.0));
        assert_eq!(padded_range(std::iter::empty(), 0.05).unwrap(), (0.0, 1.0));
        assert!(padded_range([-1e308, 1e308].into_iter(), 0.05).is_err());
    }

    #[test]
    fn grey_levels_clamp_and_round() {
        assert_eq!(grey(-0.5), 0);
        assert_eq!(grey(0.0), 0);
        assert_eq!(grey(0.5), 128);
        assert_eq!(grey(1.0), 255);
        assert_eq!(grey(7.0), 255);
        assert_eq!(grey(f32::NAN), 0);
        assert_eq!(grey(f32::INFINITY), 255);
    }
}
