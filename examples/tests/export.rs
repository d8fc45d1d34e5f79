//! `gumbolt export` (issue 16): the safetensors file holds exactly the documented tensors, with
//! their shapes and the model's values in row-major order, the configuration in
//! `__metadata__`, and a forward pass written from the file alone (the README's recipe)
//! reproduces the model's `log p(x|z)`.

mod common;

use common::{gumbolt, stderr};
use gumbolt_core::Mat;
use gumbolt_datasets::load_bundled_mnist;
use gumbolt_models::gumbolt::{ExactPartitionGradient, GumBolt, SampledPartition};
use gumbolt_models::nn::Mlp;
use gumbolt_models::train::{CheckpointPartition, GumBoltPrior, load_model};
use gumbolt_priors::{FactorialBernoulli, Rbm, SparseBm};
use gumbolt_samplers::{ColourPcd, Pcd};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Trains a tiny run into `dir` and exports it; returns the file's bytes.
fn train_and_export(dir: &Path, extra: &[&str]) -> Vec<u8> {
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "train",
        "--out",
        d,
        "--quiet",
        "--iters",
        "3",
        "--monitor-every",
        "3",
        "--pcd-steps",
        "2",
        "--pcd-chains",
        "10",
        "--monitor-images",
        "20",
        "--monitor-k",
        "1",
    ];
    args.extend_from_slice(extra);
    let out = gumbolt(&args);
    assert!(out.status.success(), "train: {}", stderr(&out));
    let file = dir.join("model.safetensors");
    let out = gumbolt(&["export", "--run", d, "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    std::fs::read(file).unwrap()
}

/// name → (shape, f32 values) of every tensor, checking each is float32 — but for a graph
/// prior's integer `prior.edges` (checked by [`graph_edges`]).
fn tensors(st: &SafeTensors<'_>) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    st.tensors()
        .into_iter()
        .filter(|(name, _)| name != "prior.edges")
        .map(|(name, v)| {
            assert_eq!(v.dtype(), Dtype::F32, "{name} is not float32");
            let values = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name, (v.shape().to_vec(), values))
        })
        .collect()
}

fn config(bytes: &[u8]) -> Value {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let text = &meta.metadata().as_ref().expect("__metadata__")["gumbolt"];
    serde_json::from_str(text).unwrap()
}

/// Row-major values of a column-major matrix.
fn row_major(rows: usize, cols: usize, at: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| at(i, j))
        .collect()
}

/// The expected tensors of one network.
fn expect_network(prefix: &str, net: &Mlp, out: &mut BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    for j in 0..=net.n_hidden() {
        let d = net.dense(j);
        let w = d.weights();
        out.insert(
            format!("{prefix}.dense{j}.kernel"),
            (
                vec![d.n_in(), d.n_out()],
                row_major(d.n_in(), d.n_out(), |r, c| w[(r, c)]),
            ),
        );
        out.insert(
            format!("{prefix}.dense{j}.bias"),
            (vec![d.n_out()], d.bias().to_vec()),
        );
        if j < net.n_hidden() {
            let bn = net.batch_norm(j);
            for (name, v) in [
                ("gamma", bn.gamma()),
                ("beta", bn.beta()),
                ("moving_mean", bn.moving_mean()),
                ("moving_var", bn.moving_var()),
            ] {
                out.insert(
                    format!("{prefix}.bn{j}.{name}"),
                    (vec![bn.dim()], v.to_vec()),
                );
            }
        }
    }
}

fn expect_model<P: GumBoltPrior, G: CheckpointPartition<P>>(
    m: &GumBolt<P, G>,
) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut out = BTreeMap::new();
    out.insert(
        "x_mean".to_string(),
        (vec![m.config().pixels], m.pixel_means().to_vec()),
    );
    for (i, e) in m.encoders().iter().enumerate() {
        expect_network(&format!("encoder{i}"), e, &mut out);
    }
    expect_network("decoder", m.decoder(), &mut out);
    out
}

/// The README's forward pass from the exported tensors alone: `log p(x|z)` per row.
fn log_px_from_file(
    t: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    cfg: &Value,
    x: &[Vec<f32>],
    z: &[Vec<f32>],
) -> Vec<f64> {
    let get = |n: &str| &t[n].1;
    let dense = |j: usize, h: &[f64]| -> Vec<f64> {
        let (shape, w) = &t[&format!("decoder.dense{j}.kernel")];
        let b = get(&format!("decoder.dense{j}.bias"));
        (0..shape[1])
            .map(|c| {
                b[c] as f64
                    + (0..shape[0])
                        .map(|r| h[r] * w[r * shape[1] + c] as f64)
                        .sum::<f64>()
            })
            .collect()
    };
    let hidden = cfg["hidden_layers"].as_u64().unwrap() as usize;
    let eps = cfg["batch_norm_eps"].as_f64().unwrap();
    x.iter()
        .zip(z)
        .map(|(x, z)| {
            let mut h: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            for j in 0..hidden {
                h = dense(j, &h);
                let p = |n: &str, i: usize| get(&format!("decoder.bn{j}.{n}"))[i] as f64;
                for (i, v) in h.iter_mut().enumerate() {
                    let n = (*v - p("moving_mean", i)) / (p("moving_var", i) + eps).sqrt();
                    *v = (p("gamma", i) * n + p("beta", i)).tanh();
                }
            }
            let o = dense(hidden, &h);
            o.iter()
                .zip(get("x_mean"))
                .zip(x)
                .map(|((&o, &m), &xv)| {
                    let m = (m as f64).clamp(1e-3, 0.999);
                    let o = o + (m / (1.0 - m)).ln();
                    xv as f64 * o - (o.max(0.0) + (-o.abs()).exp().ln_1p())
                })
                .sum()
        })
        .collect()
}

/// The file against the model: names, shapes, values; metadata; the forward pass.
fn check<P: GumBoltPrior, G: CheckpointPartition<P>>(
    model: GumBolt<P, G>,
    bytes: &[u8],
    prior: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let got = tensors(&st);
    let mut want = expect_model(&model);
    want.extend(prior);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "tensor names"
    );
    for (name, (shape, values)) in &want {
        assert_eq!(&got[name].0, shape, "shape of {name}");
        assert!(
            got[name]
                .1
                .iter()
                .zip(values)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "values of {name}"
        );
    }
    let cfg = config(bytes);
    let c = model.config();
    assert_eq!(cfg["structure"], c.structure.name());
    assert_eq!(cfg["latent_units"], c.latent_units);
    assert_eq!(cfg["latent_layers"], c.layers());
    assert_eq!(cfg["hidden_layers"], c.hidden_layers);
    assert_eq!(
        cfg["batch_norm_eps"].as_f64().unwrap() as f32,
        c.batch_norm.eps
    );
    assert_eq!(cfg["tau"].as_f64().unwrap(), c.tau);

    // log p(x|z) of three test images at fixed binary z, from the file and from the model.
    let test = load_bundled_mnist().unwrap().test;
    let n = c.latent_dim();
    let x: Vec<Vec<f32>> = (0..3).map(|i| test.row(i).to_vec()).collect();
    let z: Vec<Vec<f32>> = (0..3)
        .map(|r| {
            (0..n)
                .map(|i| ((i * 7 + r * 3) % 5 < 2) as u8 as f32)
                .collect()
        })
        .collect();
    let from_file = log_px_from_file(&got, &cfg, &x, &z);
    let xm = Mat::from_row_slice(3, c.pixels, &x.concat());
    let zm = Mat::from_row_slice(3, n, &z.concat());
    let from_model = model.log_px_given_z(&xm, &zm).unwrap();
    for (a, b) in from_file.iter().zip(&from_model) {
        assert!(
            (a - b).abs() < 1e-3 * b.abs().max(1.0),
            "log p(x|z): from the file {a}, the model {b}"
        );
    }
}

#[test]
fn rbm_run_exports_the_documented_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // ~~: two latent layers (two encoders), two hidden blocks per network.
    let bytes = train_and_export(&dir, &["--structure", "~~"]);
    let model = load_model::<Rbm, SampledPartition<Pcd>>(dir.join("checkpoint.ckpt")).unwrap();
    let r = model.prior();
    let w = r.w();
    let prior = BTreeMap::from([
        ("prior.a".to_string(), (vec![r.n1()], r.a().to_vec())),
        ("prior.b".to_string(), (vec![r.n2()], r.b().to_vec())),
        (
            "prior.W".to_string(),
            (
                vec![r.n1(), r.n2()],
                row_major(r.n1(), r.n2(), |i, j| w[(i, j)]),
            ),
        ),
    ]);
    // The couplings are not all zero after training (else a transposition would go unseen).
    assert!(r.w().iter().any(|&v| v != 0.0));
    assert_eq!(config(&bytes)["prior"], "rbm");
    check(model, &bytes, prior);
}

/// The `[m, 2]` int64 `prior.edges` of an export.
fn graph_edges(bytes: &[u8]) -> (Vec<usize>, Vec<i64>) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let v = st.tensor("prior.edges").unwrap();
    assert_eq!(v.dtype(), Dtype::I64, "prior.edges is not int64");
    let values = v
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (v.shape().to_vec(), values)
}

#[test]
fn graph_run_exports_the_documented_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let bytes = train_and_export(&dir, &["--structure", "~", "--prior", "chimera:2,2,4"]);
    let model =
        load_model::<SparseBm, SampledPartition<ColourPcd>>(dir.join("checkpoint.ckpt")).unwrap();
    let g = model.prior();
    let (shape, edges) = graph_edges(&bytes);
    assert_eq!(shape, vec![g.num_edges(), 2]);
    let want: Vec<i64> = g
        .edges()
        .iter()
        .flat_map(|&(i, j)| [i as i64, j as i64])
        .collect();
    assert_eq!(edges, want);
    let prior = BTreeMap::from([
        ("prior.h".to_string(), (vec![g.num_units()], g.h().to_vec())),
        ("prior.w".to_string(), (vec![g.num_edges()], g.w().to_vec())),
    ]);
    assert!(g.w().iter().any(|&v| v != 0.0));
    assert_eq!(config(&bytes)["prior"], "graph");
    check(model, &bytes, prior);
}

#[test]
fn factorial_run_exports_the_documented_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let bytes = train_and_export(&dir, &["--model", "gumbolt-nw", "--structure", "~"]);
    let model =
        load_model::<FactorialBernoulli, ExactPartitionGradient>(dir.join("checkpoint.ckpt"))
            .unwrap();
    let h = model.prior().h().to_vec();
    let prior = BTreeMap::from([("prior.h".to_string(), (vec![h.len()], h))]);
    assert_eq!(config(&bytes)["prior"], "factorial");
    check(model, &bytes, prior);
}
