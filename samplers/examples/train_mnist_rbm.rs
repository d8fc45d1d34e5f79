//! Trains a small RBM on 10×10-pooled binarized MNIST with PCD, as a realistic (multimodal)
//! test prior for the `log Z` estimators, and writes it as JSON.
//!
//! ```text
//! cargo run --release -p gumbolt-samplers --example train_mnist_rbm -- \
//!     [mnist.amat.gz] [out.json] [epochs=10] [hidden=100] [lr=0.05]
//! ```
//!
//! Without a file, the training split of the bundled binarised MNIST, found at run time
//! (`gumbolt_datasets::find_data_dir`: `$GUMBOLT_DATA_DIR`, beside the executable, the working
//! directory).
//!
//! Visible units (`z1`, 100) are the central 20×20 pixels of each image pooled 2×2 and
//! thresholded at 1/4; hidden units are `z2`. Gradient ascent on the log-likelihood with the
//! positive phase Rao-Blackwellised and the negative phase from [`Pcd`] (100 chains, 1 sweep).

use gumbolt_core::linalg::gemm_tn;
use gumbolt_core::prior::{Block, BlockConditionals};
use gumbolt_core::{Mat, Sampler};
use gumbolt_datasets::{AmatSpec, find_data_dir, find_split, load_amat};
use gumbolt_priors::Rbm;
use gumbolt_samplers::{NegativePhase, Pcd, PcdConfig};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.get(1) {
        Some(p) => PathBuf::from(p),
        None => find_split(
            &find_data_dir()?.join("binarized_mnist"),
            "binarized_mnist_train",
        )?,
    };
    let out = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "mnist_rbm.json".into());
    let epochs: usize = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let hidden: usize = args.get(4).map_or(Ok(100), |s| s.parse())?;
    let lr: f32 = args.get(5).map_or(Ok(0.05), |s| s.parse())?;

    let images = load_amat(&path, &AmatSpec::binary_mnist())?;
    let mut data: Vec<[f32; 100]> = Vec::new();
    for i in 0..images.n() {
        let px = images.row(i);
        let mut v = [0.0f32; 100];
        for (k, o) in v.iter_mut().enumerate() {
            let (r, c) = (4 + 2 * (k / 10), 4 + 2 * (k % 10));
            let s = px[r * 28 + c]
                + px[r * 28 + c + 1]
                + px[(r + 1) * 28 + c]
                + px[(r + 1) * 28 + c + 1];
            *o = if s >= 1.0 { 1.0 } else { 0.0 };
        }
        data.push(v);
    }
    let n1 = 100;
    let n2 = hidden;
    eprintln!(
        "{} images, mean pixel {:.3}",
        data.len(),
        data.iter().flatten().sum::<f32>() / (data.len() * 100) as f32
    );

    let mut rng = gumbolt_core::rng::root_rng(7);
    let mut rbm = Rbm::random(n1, n2, 0.01, &mut rng);
    // visible biases at the data base rates
    let mut mean = [0.0f32; 100];
    for v in &data {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x / data.len() as f32;
        }
    }
    for (a, m) in rbm.a_mut().iter_mut().zip(mean) {
        let m = m.clamp(1e-3, 1.0 - 1e-3);
        *a = (m / (1.0 - m)).ln();
    }
    rbm.b_mut().fill(0.0);
    let mut pcd = Pcd::new(PcdConfig::default().chains(100).sweeps(1).seed(3))?;
    let batch = 100;
    let mut v = Mat::zeros(batch, n1);
    let mut c = Mat::zeros(batch, n2);
    let mut pos = Mat::zeros(n1, n2);
    for epoch in 0..epochs {
        for start in (0..data.len() - batch + 1).step_by(batch) {
            for r in 0..batch {
                for j in 0..n1 {
                    v[(r, j)] = data[start + r][j];
                }
            }
            rbm.block_logits(Block::Two, v.as_view(), &mut c);
            c.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp()));
            gemm_tn(1.0 / batch as f32, &v, &c, 0.0, &mut pos);
            let neg = NegativePhase::from_samples(pcd.sample(&rbm), n1);
            let mv: Vec<f32> = (0..n1).map(|j| v.column(j).mean()).collect();
            let mc: Vec<f32> = (0..n2).map(|j| c.column(j).mean()).collect();
            for (i, a) in rbm.a_mut().iter_mut().enumerate() {
                *a += lr * (mv[i] - neg.mean_z1[i] as f32);
            }
            for (j, b) in rbm.b_mut().iter_mut().enumerate() {
                *b += lr * (mc[j] - neg.mean_z2[j] as f32);
            }
            let mut w = rbm.w_mut();
            for j in 0..n2 {
                for i in 0..n1 {
                    w[(i, j)] += lr * (pos[(i, j)] - neg.mean_z1z2[(i, j)] - 1e-4 * w[(i, j)]);
                }
            }
        }
        let wn = rbm.w().iter().map(|x| x * x).sum::<f32>().sqrt();
        eprintln!(
            "epoch {epoch}: |W|_F = {wn:.2}, max |W| = {:.2}",
            rbm.w().amax()
        );
    }
    rbm.save_json(&out)?;
    eprintln!("wrote {out}");
    Ok(())
}
