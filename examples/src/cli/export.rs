//! `gumbolt export`: a trained model's weights as a safetensors file that PyTorch, numpy or JAX
//! read without gumbolt (README "Weights from Python").
//!
//! Every tensor is float32 (integers: int64) in row-major (C) order, with the names
//!
//! | name | shape | what |
//! |---|---|---|
//! | `x_mean` | `[D]` | x̄, the training images' pixel means (the encoder input is x − x̄) |
//! | `encoder{i}.dense{j}.kernel` | `[in, out]` | dense layer j of the encoder of latent layer i (`y = x W + b`) |
//! | `encoder{i}.dense{j}.bias` | `[out]` | its bias |
//! | `encoder{i}.bn{j}.gamma`, `.beta`, `.moving_mean`, `.moving_var` | `[width]` | the batch norm after `dense{j}` |
//! | `decoder.dense{j}.*`, `decoder.bn{j}.*` | | the same for the decoder |
//! | `prior.a` `[n1]`, `prior.b` `[n2]`, `prior.W` `[n1, n2]` | | RBM prior, E(z) = −a·z₁ − b·z₂ − z₁ᵀ W z₂ |
//! | `prior.h` `[n]` | | factorial prior, E(z) = −h·z |
//!
//! and the model configuration as JSON in the `__metadata__` entry `gumbolt`. A prior kind adds
//! its tensors in one place: its [`ExportPrior`] implementation.

use super::registry::{self, CliPrior, ModelTypes, ModelVisitor, PriorKind};
use super::rundir::RunDir;
use anyhow::{Context, Result, bail};
use clap::Args;
use gumbolt_models::gumbolt::GumBolt;
use gumbolt_models::nn::Mlp;
use gumbolt_models::train::{CheckpointMeta, CheckpointPartition, GumBoltPrior, load_model};
use gumbolt_priors::{FactorialBernoulli, Rbm, SparseBm};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The `__metadata__` key holding the configuration.
pub(crate) const METADATA_KEY: &str = "gumbolt";
/// Version of the layout described in the module documentation.
const FORMAT_VERSION: u32 = 1;

fn parse_out(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.extension().is_some_and(|e| e == "safetensors") {
        Ok(p)
    } else {
        Err(format!(
            "expected a file name ending in .safetensors, got {s:?}"
        ))
    }
}

/// Write a trained run's weights as a safetensors file readable from Python (numpy,
/// PyTorch) without gumbolt.
///
/// float32 tensors in row-major order: `x_mean` `[784]`; `encoder{i}.dense{j}.kernel`
/// `[in, out]` and `.bias` `[out]`; `encoder{i}.bn{j}.gamma`, `.beta`, `.moving_mean`,
/// `.moving_var` (the batch norm after `dense{j}`); the same under `decoder.`; the prior as
/// `prior.a` `[n1]`, `prior.b` `[n2]`, `prior.W` `[n1, n2]` (RBM) or `prior.h` `[n]` (factorial).
/// `__metadata__` holds the model configuration as JSON under the key `gumbolt`. The
/// README's "Weights from Python" section shows the forward pass in numpy.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExportArgs {
    /// The run directory written by `gumbolt train` (its `checkpoint.ckpt` is exported).
    #[arg(long, value_name = "DIR")]
    pub(crate) run: PathBuf,

    /// The safetensors file to write (replaced atomically if it exists).
    #[arg(long, value_name = "FILE.safetensors", value_parser = parse_out)]
    pub(crate) out: PathBuf,

    /// Print one JSON object on stdout instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Tensors to be written: name, dtype, shape, little-endian bytes.
#[derive(Debug, Default)]
pub(crate) struct Tensors {
    items: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl Tensors {
    /// A float32 tensor of `shape` from row-major `values`.
    pub(crate) fn f32(&mut self, name: impl Into<String>, shape: &[usize], values: &[f32]) {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "export: shape"
        );
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.items
            .push((name.into(), Dtype::F32, shape.to_vec(), bytes));
    }

    /// An int64 tensor of `shape` from row-major `values` (e.g. a graph prior's edge list).
    #[allow(dead_code)] // for priors with integer tensors (graph priors)
    pub(crate) fn i64(&mut self, name: impl Into<String>, shape: &[usize], values: &[i64]) {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "export: shape"
        );
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.items
            .push((name.into(), Dtype::I64, shape.to_vec(), bytes));
    }

    /// A float32 matrix `[rows, cols]` in row-major order, from element `(i, j)`.
    pub(crate) fn matrix(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        at: impl Fn(usize, usize) -> f32,
    ) {
        let values: Vec<f32> = (0..rows)
            .flat_map(|i| (0..cols).map(move |j| (i, j)))
            .map(|(i, j)| at(i, j))
            .collect();
        self.f32(name, &[rows, cols], &values);
    }

    /// The dense layers and batch norms of `net` under `prefix` (`encoder0`, `decoder`).
    fn network(&mut self, prefix: &str, net: &Mlp) {
        for j in 0..=net.n_hidden() {
            let d = net.dense(j);
            let w = d.weights();
            self.matrix(
                format!("{prefix}.dense{j}.kernel"),
                d.n_in(),
                d.n_out(),
                |r, c| w[(r, c)],
            );
            self.f32(format!("{prefix}.dense{j}.bias"), &[d.n_out()], d.bias());
            if j < net.n_hidden() {
                let bn = net.batch_norm(j);
                let n = bn.dim();
                self.f32(format!("{prefix}.bn{j}.gamma"), &[n], bn.gamma());
                self.f32(format!("{prefix}.bn{j}.beta"), &[n], bn.beta());
                self.f32(
                    format!("{prefix}.bn{j}.moving_mean"),
                    &[n],
                    bn.moving_mean(),
                );
                self.f32(format!("{prefix}.bn{j}.moving_var"), &[n], bn.moving_var());
            }
        }
    }

    /// The safetensors bytes, with `metadata` as `__metadata__`.
    fn serialize(&self, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
        let views = self
            .items
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.as_str(), v))
                    .with_context(|| format!("tensor {name}"))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(metadata)).context("cannot serialise the tensors")
    }
}

/// A prior that can be exported: its tensors (named `prior.*`) and its kind's name in the
/// metadata. A new prior kind implements this, and nothing else in the export changes.
pub(crate) trait ExportPrior {
    /// The prior's kind in the metadata (`rbm`, `factorial`).
    fn kind_name(&self) -> &'static str;
    /// Adds the prior's tensors.
    fn export_tensors(&self, t: &mut Tensors);
}

impl ExportPrior for Rbm {
    fn kind_name(&self) -> &'static str {
        "rbm"
    }
    fn export_tensors(&self, t: &mut Tensors) {
        t.f32("prior.a", &[self.n1()], self.a());
        t.f32("prior.b", &[self.n2()], self.b());
        let w = self.w();
        t.matrix("prior.W", self.n1(), self.n2(), |i, j| w[(i, j)]);
    }
}

impl ExportPrior for FactorialBernoulli {
    fn kind_name(&self) -> &'static str {
        "factorial"
    }
    fn export_tensors(&self, t: &mut Tensors) {
        t.f32("prior.h", &[self.h().len()], self.h());
    }
}

impl ExportPrior for SparseBm {
    fn kind_name(&self) -> &'static str {
        "graph"
    }
    /// `prior.h` `[n]`, `prior.edges` `[m, 2]` (0-based unit indices, i < j) and `prior.w` `[m]`:
    /// `−E(z) = Σ_i h_i z_i + Σ_e w_e z_i z_j`.
    fn export_tensors(&self, t: &mut Tensors) {
        t.f32("prior.h", &[self.num_units()], self.h());
        let edges: Vec<i64> = self
            .edges()
            .iter()
            .flat_map(|&(i, j)| [i as i64, j as i64])
            .collect();
        t.i64("prior.edges", &[self.num_edges(), 2], &edges);
        t.f32("prior.w", &[self.num_edges()], self.w());
    }
}

/// The model configuration stored in `__metadata__["gumbolt"]`.
#[derive(Debug, Serialize)]
struct ExportMeta {
    format_version: u32,
    /// `gumbolt <version>` and the commit it was built from.
    writer: String,
    git_commit: &'static str,
    model_kind: String,
    /// `gumbolt`, `dvae`, `dvaepp` or `reinforce` (the training objective).
    objective: &'static str,
    /// `linear`, `nonlinear`, `linear2`, `nonlinear2` (GB Table 1).
    structure: &'static str,
    /// Latent layers L (encoders `encoder0` … `encoder{L−1}`).
    latent_layers: usize,
    /// Units per latent layer; the decoder's input is the L layers concatenated.
    latent_units: usize,
    /// Pixels D.
    pixels: usize,
    /// Hidden Dense → BN → tanh blocks per network, and their width.
    hidden_layers: usize,
    hidden_units: usize,
    /// The hidden blocks' activation.
    activation: &'static str,
    /// ε of the batch norms: `γ (x − moving_mean)/√(moving_var + ε) + β` in inference.
    batch_norm_eps: f32,
    /// `rbm` or `factorial`.
    prior: &'static str,
    /// The RBM's sides (n1, n2): z₁ = z[:, :n1], z₂ = z[:, n1:].
    rbm_sides: Option<(usize, usize)>,
    /// The relaxation's temperature τ (training only).
    tau: f64,
    /// The clip of x̄ in the decoder's fixed offset `logit(clip(x̄, lo, hi))`.
    x_bias_clip: (f64, f64),
    /// Training iterations of the checkpoint, and of the run.
    iteration: u64,
    total_iterations: u64,
}

/// The tensors and metadata of `model`.
fn export_model<P, G>(
    model: &GumBolt<P, G>,
    meta: &CheckpointMeta,
    kind: PriorKind,
) -> Result<(Tensors, HashMap<String, String>)>
where
    P: GumBoltPrior + ExportPrior,
    G: CheckpointPartition<P>,
{
    let c = model.config();
    let mut t = Tensors::default();
    t.f32("x_mean", &[c.pixels], model.pixel_means());
    for (i, e) in model.encoders().iter().enumerate() {
        t.network(&format!("encoder{i}"), e);
    }
    t.network("decoder", model.decoder());
    model.prior().export_tensors(&mut t);
    let m = ExportMeta {
        format_version: FORMAT_VERSION,
        writer: format!("gumbolt {}", env!("CARGO_PKG_VERSION")),
        git_commit: env!("GUMBOLT_GIT_COMMIT"),
        model_kind: meta.model_kind.clone(),
        objective: c.objective.name(),
        structure: c.structure.name(),
        latent_layers: c.layers(),
        latent_units: c.latent_units,
        pixels: c.pixels,
        hidden_layers: c.hidden_layers,
        hidden_units: c.hidden_units,
        activation: "tanh",
        batch_norm_eps: c.batch_norm.eps,
        prior: model.prior().kind_name(),
        rbm_sides: (kind == PriorKind::Rbm).then(|| c.rbm_sides()),
        tau: c.tau,
        x_bias_clip: (1e-3, 0.999),
        iteration: meta.iteration,
        total_iterations: c.train.total_iterations,
    };
    let json = serde_json::to_string(&m)?;
    Ok((t, HashMap::from([(METADATA_KEY.to_string(), json)])))
}

/// The tensors and metadata of a checkpoint's model.
struct Export<'a> {
    ckpt: &'a Path,
    meta: &'a CheckpointMeta,
    kind: PriorKind,
}

impl ModelVisitor for Export<'_> {
    type Output = Result<(Tensors, HashMap<String, String>)>;

    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, _: ModelTypes<P, G>) -> Self::Output {
        export_model(&load_model::<P, G>(self.ckpt)?, self.meta, self.kind)
    }
}

#[derive(Debug, Serialize)]
struct Report {
    out: String,
    run: String,
    tensors: usize,
    bytes: usize,
    iteration: u64,
}

/// Runs `gumbolt export`.
pub(crate) fn run(args: ExportArgs) -> Result<()> {
    let dir = RunDir::existing(&args.run, "--run")?;
    super::eval::check_output_path("--out", &args.out)?;
    let (kind, meta) = dir.checkpoint_meta()?;
    let ckpt = dir.checkpoint();
    let (tensors, metadata) = registry::with_model(
        kind,
        Export {
            ckpt: &ckpt,
            meta: &meta,
            kind,
        },
    )?;
    let n = tensors.items.len();
    let bytes = tensors.serialize(metadata)?;
    write_out(&args.out, &bytes)?;
    let report = Report {
        out: args.out.display().to_string(),
        run: dir.root().display().to_string(),
        tensors: n,
        bytes: bytes.len(),
        iteration: meta.iteration,
    };
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        format!(
            "wrote {} ({n} tensors, {} bytes, iteration {})\n",
            report.out, report.bytes, report.iteration
        )
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(())
}

fn write_out(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        bail!("--out {}: not a file path", path.display());
    }
    super::rundir::write_atomic(path, bytes).with_context(|| format!("--out {}", path.display()))
}
