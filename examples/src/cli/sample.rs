//! `gumbolt sample`: binary samples of a trained prior (block Gibbs), decoded to pixel
//! probabilities σ(o) (GB §3.1) and written as a PNG grid.

use super::int_at_least;
use super::registry::{self, CliPrior, ModelTypes, ModelVisitor};
use super::rundir::RunDir;
use anyhow::{Context, Result};
use clap::Args;
use gumbolt_examples::plot;
use gumbolt_models::eval::{GenerateConfig, generate};
use gumbolt_models::train::{CheckpointPartition, load_model};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Side of an MNIST image.
const SIDE: usize = 28;
/// The most samples one grid may hold.
const MAX_SAMPLES: usize = 10_000;

fn parse_n(s: &str) -> Result<usize, String> {
    let n = int_at_least::<1>(s)?;
    if n > MAX_SAMPLES {
        return Err(format!("expected at most {MAX_SAMPLES} samples, got {n}"));
    }
    Ok(n)
}

fn parse_scale(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(v) if (1..=16).contains(&v) => Ok(v),
        _ => Err("expected an integer from 1 to 16".into()),
    }
}

fn parse_npy(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.extension().is_some_and(|e| e == "npy") {
        Ok(p)
    } else {
        Err(format!("expected a file name ending in .npy, got {s:?}"))
    }
}

/// Draw samples from a trained run as a PNG grid.
///
/// Binary latent configurations are drawn from the prior by block Gibbs at β = 1 (started
/// from the run's PCD chains, or from Bernoulli(0.5) with --fresh) and fed to the decoder;
/// the grid shows the pixel probabilities σ(o) (white = 1), --cols images per row.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct SampleArgs {
    /// The run directory written by `gumbolt train`.
    #[arg(long, value_name = "DIR")]
    pub(crate) run: PathBuf,

    /// Number of samples.
    #[arg(long, value_name = "N", value_parser = parse_n, default_value_t = 64)]
    pub(crate) n: usize,

    /// The PNG file [default: RUN/samples.png].
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Seed of the Gibbs chains.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Block-Gibbs sweeps before the samples are taken.
    #[arg(long, value_name = "N", value_parser = int_at_least::<0>, default_value_t = 1000)]
    pub(crate) sweeps: usize,

    /// Start the chains from Bernoulli(0.5) instead of the run's PCD chains.
    #[arg(long)]
    pub(crate) fresh: bool,

    /// Images per row of the grid.
    #[arg(long, value_name = "N", value_parser = int_at_least::<1>, default_value_t = 8)]
    pub(crate) cols: usize,

    /// Pixels per image pixel.
    #[arg(long, value_name = "N", value_parser = parse_scale, default_value_t = 2)]
    pub(crate) scale: u32,

    /// Also write the pixel probabilities σ(o) of the samples as a NumPy file: an [n, 784]
    /// float32 array, one row-major 28×28 image per row (the PNG is written too).
    #[arg(long, value_name = "FILE.npy", value_parser = parse_npy)]
    pub(crate) npy: Option<PathBuf>,

    /// Print one JSON object on stdout instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    out: String,
    npy: Option<String>,
    n: usize,
    sweeps: usize,
    from_chains: bool,
    seed: u64,
    /// Mean pixel probability of the samples.
    mean_pixel: f64,
    seconds: f64,
    run: String,
}

/// Samples of the checkpoint's model: row-major images, one after the other.
struct Draw<'a> {
    ckpt: &'a Path,
    cfg: &'a GenerateConfig,
}

impl ModelVisitor for Draw<'_> {
    type Output = Result<Vec<f32>>;

    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, _: ModelTypes<P, G>) -> Self::Output {
        let mut model = load_model::<P, G>(self.ckpt)?;
        let g = generate(&mut model, self.cfg).context("sampling failed")?;
        Ok(g.images().concat())
    }
}

/// Runs `gumbolt sample`.
pub(crate) fn run(args: SampleArgs) -> Result<()> {
    let t0 = Instant::now();
    let dir = RunDir::existing(&args.run, "--run")?;
    let (kind, _meta) = dir.checkpoint_meta()?;
    if let Some(p) = &args.npy {
        super::eval::check_output_path("--npy", p)?;
    }
    let ckpt = dir.checkpoint();
    let cfg = GenerateConfig {
        n: args.n,
        sweeps: args.sweeps,
        from_chains: !args.fresh,
        seed: args.seed,
    };
    let pixels = registry::with_model(
        kind,
        Draw {
            ckpt: &ckpt,
            cfg: &cfg,
        },
    )?;
    anyhow::ensure!(
        pixels.len() == args.n * SIDE * SIDE,
        "the model does not generate {SIDE}×{SIDE} images"
    );
    let out = args.out.clone().unwrap_or_else(|| dir.file("samples.png"));
    plot::image_grid(&pixels, SIDE, SIDE, args.cols, &out, args.scale)
        .with_context(|| format!("--out {}", out.display()))?;
    if let Some(p) = &args.npy {
        let bytes = gumbolt_examples::npy::to_bytes(&pixels, &[args.n, SIDE * SIDE]);
        super::rundir::write_atomic(p, &bytes).with_context(|| format!("--npy {}", p.display()))?;
    }
    let report = Report {
        out: out.display().to_string(),
        npy: args.npy.as_ref().map(|p| p.display().to_string()),
        n: args.n,
        sweeps: args.sweeps,
        from_chains: !args.fresh,
        seed: args.seed,
        mean_pixel: pixels.iter().map(|&p| p as f64).sum::<f64>() / pixels.len() as f64,
        seconds: t0.elapsed().as_secs_f64(),
        run: dir.root().display().to_string(),
    };
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        format!(
            "wrote {} ({} samples after {} Gibbs sweeps, {:.1} s)\n",
            report.out, report.n, report.sweeps, report.seconds
        )
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(())
}
