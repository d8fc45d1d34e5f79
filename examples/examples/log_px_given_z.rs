//! `log p(x|z)` and `log q(z|x)` of a trained run for given images and latent configurations,
//! computed by gumbolt itself: the reference for a model rebuilt outside Rust from
//! `gumbolt export` (README "Weights from Python").
//!
//! ```text
//! cargo run --release -p gumbolt-examples --example log_px_given_z -- RUN x.npy z.npy
//! ```
//!
//! `x.npy`: float32 or float64 `[B, 784]` binary images; `z.npy`: `[B, L·latent_units]` binary
//! latent configurations (layer 1's units first). Prints one JSON line per row:
//! `{"row": r, "log_px_given_z": …, "log_q_z_given_x": …}`, with batch norm in inference mode
//! (GB Eq. 5 for `log p(x|z)`; the factorial posterior of each layer for `log q`).

use anyhow::{Context, Result, bail};
use gumbolt_core::Mat;
use gumbolt_core::numerics::softplus;
use gumbolt_examples::npy;
use gumbolt_models::checkpoint;
use gumbolt_models::gumbolt::{ExactPartitionGradient, GumBolt, SampledPartition};
use gumbolt_models::nn::Mode;
use gumbolt_models::train::{CheckpointPartition, GumBoltPrior, load_model};
use gumbolt_priors::{FactorialBernoulli, Rbm};
use gumbolt_samplers::Pcd;
use std::path::Path;

/// A `[rows, cols]` matrix from a 2-D `.npy` file of f32 or f64 values.
fn read_matrix(path: &Path) -> Result<Mat> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (shape, values) = match npy::from_bytes::<f32>(&bytes) {
        Ok(v) => v,
        Err(_) => {
            let (s, v) = npy::from_bytes::<f64>(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            (s, v.into_iter().map(|x| x as f32).collect())
        }
    };
    if shape.len() != 2 {
        bail!(
            "{}: expected a 2-D array, got shape {shape:?}",
            path.display()
        );
    }
    Ok(Mat::from_row_slice(shape[0], shape[1], &values))
}

fn report<P: GumBoltPrior, G: CheckpointPartition<P>>(
    mut model: GumBolt<P, G>,
    x: &Mat,
    z: &Mat,
) -> Result<()> {
    let log_px = model.log_px_given_z(x, z)?;
    // log q(z|x) = Σ_layers Σ_i [z l − softplus(l)], layer 2's logits from [x − x̄, z₁].
    let (b, d) = x.shape();
    let u = model.config().latent_units;
    let mut xc = x.clone();
    for (j, &m) in model.pixel_means().to_vec().iter().enumerate() {
        for v in xc.column_mut(j).iter_mut() {
            *v -= m;
        }
    }
    let mut log_q = vec![0.0f64; b];
    let layers = model.encoders().len();
    for layer in 0..layers {
        let input = if layer == 0 {
            xc.clone()
        } else {
            let mut inp = Mat::zeros(b, d + u);
            inp.columns_mut(0, d).copy_from(&xc);
            inp.columns_mut(d, u).copy_from(&z.columns(0, u));
            inp
        };
        let logits = model.encoders_mut()[layer]
            .forward(&input, Mode::Inference)
            .clone();
        for r in 0..b {
            for i in 0..u {
                let l = logits[(r, i)] as f64;
                log_q[r] += z[(r, layer * u + i)] as f64 * l - softplus(l);
            }
        }
    }
    for r in 0..b {
        println!(
            "{{\"row\": {r}, \"log_px_given_z\": {}, \"log_q_z_given_x\": {}}}",
            log_px[r], log_q[r]
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, x, z] = args.as_slice() else {
        bail!("usage: log_px_given_z RUN x.npy z.npy");
    };
    let ckpt = Path::new(run).join("checkpoint.ckpt");
    let kind = checkpoint::read(&ckpt)?.meta["model_kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (x, z) = (read_matrix(Path::new(x))?, read_matrix(Path::new(z))?);
    if kind.contains("rbm") {
        report(load_model::<Rbm, SampledPartition<Pcd>>(&ckpt)?, &x, &z)
    } else {
        report(
            load_model::<FactorialBernoulli, ExactPartitionGradient>(&ckpt)?,
            &x,
            &z,
        )
    }
}
