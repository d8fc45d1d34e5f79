//! The one registry of the command line's model kinds, and the one place where a prior kind
//! becomes concrete types.
//!
//! A model kind is a row of [`MODELS`]: its `--model` name (also the `model` of a run
//! directory's `config.json`, of `eval.json`, and the model part of `gumbolt reproduce`'s cell
//! ids), its title in tables and plots, its training objective (whose name, paper τ and
//! checkpointed form live in `gumbolt_models::gumbolt::Objective`) and its default prior kind.
//! The prior kind ([`PriorKind`]) decides the prior and negative-phase types, hence the
//! checkpoint's `model_kind` string (`gumbolt/rbm/pcd`, …); [`with_model`] is the only `match`
//! from a prior kind to those types: every subcommand hands it a [`ModelVisitor`].
//!
//! Adding a model kind with an existing prior is one row of [`MODELS`]; a new prior kind is a
//! variant of [`PriorKind`] with its entries in this file (`PRIOR_KINDS`, `with_model`,
//! `prior_with`, `uses_pcd`, a `MODELS` row) plus its label in `prior_arg.rs` and its
//! `ExportPrior` impl in `export.rs` (docs/architecture.md, "Adding a prior", step 5).

use clap::ValueEnum;
use clap::builder::PossibleValue;
use gumbolt_models::gumbolt::{
    ExactPartitionGradient, GumBolt, GumBoltConfig, ModelError, Objective, SampledPartition,
};
use gumbolt_models::train::{CheckpointPartition, GumBoltPrior, model_kind};
use gumbolt_priors::{FactorialBernoulli, Rbm, SparseBm};
use gumbolt_samplers::{ColourPcd, Pcd, PcdConfig};

use super::export::ExportPrior;

/// A prior kind with its negative phase (the checkpoint's `model_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PriorKind {
    /// The RBM (GB Eq. 4) trained by PCD: `gumbolt/rbm/pcd`.
    Rbm,
    /// A factorial Bernoulli prior with the exact log Z (GumBolt-nW): `gumbolt/bernoulli/exact`.
    Bernoulli,
    /// A Boltzmann machine on any graph (Chimera, Pegasus, Zephyr, a JSON edge list) trained by
    /// PCD over colour classes: `gumbolt/sparse-bm/pcd`.
    Graph,
}

/// Every prior kind, in the order error messages list them.
pub(crate) const PRIOR_KINDS: [PriorKind; 3] =
    [PriorKind::Rbm, PriorKind::Bernoulli, PriorKind::Graph];

impl PriorKind {
    /// The checkpoint's (and `config.json`'s) `model_kind`, e.g. `gumbolt/rbm/pcd`.
    pub(crate) fn checkpoint_kind(self) -> String {
        struct Name;
        impl ModelVisitor for Name {
            type Output = String;
            fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, _: ModelTypes<P, G>) -> String {
                model_kind::<P, G>()
            }
        }
        with_model(self, Name)
    }

    /// The prior kind of a checkpoint's `model_kind`.
    pub(crate) fn from_checkpoint_kind(s: &str) -> Option<Self> {
        PRIOR_KINDS.into_iter().find(|k| k.checkpoint_kind() == s)
    }

    /// Whether its negative phase is PCD (`--pcd-steps`, `--pcd-chains` apply).
    pub(crate) fn uses_pcd(self) -> bool {
        !matches!(self, PriorKind::Bernoulli)
    }
}

/// What the command line needs of a prior beyond training, checkpoints and evaluation.
pub(crate) trait CliPrior: GumBoltPrior + ExportPrior {}

impl<P: GumBoltPrior + ExportPrior> CliPrior for P {}

/// Builds a fresh model of a configuration, with the training images' pixel means and the PCD
/// settings (ignored by a prior without PCD).
pub(crate) type FreshModel<P, G> =
    fn(GumBoltConfig, &[f32], PcdConfig) -> Result<GumBolt<P, G>, ModelError>;

/// The concrete types of a prior kind, and how a new model of them is built.
pub(crate) struct ModelTypes<P, G> {
    /// A fresh model.
    pub(crate) fresh: FreshModel<P, G>,
}

/// Code run on the concrete types of a prior kind (see [`with_model`]).
pub(crate) trait ModelVisitor {
    /// What the visit returns.
    type Output;

    /// Runs with the prior `P` and negative phase `G` of the kind.
    fn visit<P: CliPrior, G: CheckpointPartition<P>>(self, types: ModelTypes<P, G>)
    -> Self::Output;
}

/// Runs `visitor` on the types of `kind`: the one dispatch from a prior kind to code.
pub(crate) fn with_model<V: ModelVisitor>(kind: PriorKind, visitor: V) -> V::Output {
    match kind {
        PriorKind::Rbm => visitor.visit(ModelTypes::<Rbm, SampledPartition<Pcd>> {
            fresh: GumBolt::with_pcd,
        }),
        PriorKind::Bernoulli => {
            visitor.visit(ModelTypes::<FactorialBernoulli, ExactPartitionGradient> {
                fresh: |config, means, _| GumBolt::nw(config, means),
            })
        }
        PriorKind::Graph => visitor.visit(ModelTypes::<SparseBm, SampledPartition<ColourPcd>> {
            fresh: GumBolt::with_graph_pcd,
        }),
    }
}

/// A model kind of the command line (a row of [`MODELS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelKind {
    /// The `--model` value, the `model` of `config.json` and `eval.json`, the model part of
    /// `gumbolt reproduce`'s cell ids.
    pub(crate) name: &'static str,
    /// Other spellings accepted by `--model`.
    pub(crate) aliases: &'static [&'static str],
    /// The title in tables and plots.
    pub(crate) title: &'static str,
    /// The training objective.
    pub(crate) objective: Objective,
    /// The prior kind without `--prior` (and with `--prior rbm`).
    pub(crate) prior: PriorKind,
    /// Whether `--prior` may replace that prior by a Boltzmann machine on a graph.
    pub(crate) graph_prior: bool,
    /// The help text of the `--model` value.
    pub(crate) help: &'static str,
}

/// GumBolt: RBM prior, PCD negative phase.
pub(crate) const GUMBOLT: ModelKind = ModelKind {
    name: "gumbolt",
    aliases: &[],
    title: "GumBolt",
    objective: Objective::GumBolt,
    prior: PriorKind::Rbm,
    graph_prior: true,
    help: "GumBolt: RBM prior, PCD negative phase",
};

/// GumBolt-nW: the factorial prior with the exact log Z (GB Table 2).
pub(crate) const GUMBOLT_NW: ModelKind = ModelKind {
    name: "gumbolt-nw",
    aliases: &["nw"],
    title: "GumBolt-nW",
    objective: Objective::GumBolt,
    prior: PriorKind::Bernoulli,
    graph_prior: false,
    help: "GumBolt-nW: no couplings (a factorial Bernoulli prior) with the exact log Z",
};

/// dVAE (GB Table 1).
pub(crate) const DVAE: ModelKind = ModelKind {
    name: "dvae",
    aliases: &[],
    title: "dVAE",
    objective: Objective::Dvae,
    prior: PriorKind::Rbm,
    graph_prior: true,
    help: "dVAE (Rolfe 2016): spike-and-exponential smoothing, RBM prior, PCD [τ: 1/5]",
};

/// dVAE++ (GB Table 1).
pub(crate) const DVAEPP: ModelKind = ModelKind {
    name: "dvaepp",
    aliases: &["dvae++"],
    title: "dVAE++",
    objective: Objective::DvaePp,
    prior: PriorKind::Rbm,
    graph_prior: true,
    help: "dVAE++ (Vahdat et al. 2018): overlapping exponentials, RBM prior, PCD [τ: 1/10 on \
           MNIST, 1/8 on OMNIGLOT]",
};

/// REINFORCE with NVIL (k = 1) or VIMCO (k > 1).
pub(crate) const REINFORCE: ModelKind = ModelKind {
    name: "reinforce",
    aliases: &[],
    title: "REINFORCE",
    objective: Objective::Reinforce,
    prior: PriorKind::Rbm,
    graph_prior: true,
    help: "REINFORCE on the discrete bound with an NVIL baseline network (k = 1) or VIMCO (k > \
           1), RBM prior, PCD",
};

/// Every model kind, in the order of `--help`.
pub(crate) const MODELS: [ModelKind; 5] = [GUMBOLT, GUMBOLT_NW, DVAE, DVAEPP, REINFORCE];

impl ModelKind {
    /// The model kind named `name` (a `--model` name as stored in `config.json`).
    pub(crate) fn named(name: &str) -> Option<Self> {
        MODELS.into_iter().find(|m| m.name == name)
    }

    /// Whether a run of this model kind may have a prior of `kind`.
    fn accepts(self, kind: PriorKind) -> bool {
        self.prior == kind || (kind == PriorKind::Graph && self.graph_prior)
    }

    /// The model kind of a run with this prior kind and objective (a checkpoint's); for a
    /// combination no row has, the first row with that prior kind.
    pub(crate) fn of(kind: PriorKind, objective: Objective) -> Self {
        MODELS
            .into_iter()
            .find(|m| m.objective == objective && m.accepts(kind))
            .or_else(|| MODELS.into_iter().find(|m| m.accepts(kind)))
            .expect("every prior kind has a model kind (tested)")
    }

    /// The prior kind of a run of this model kind given `--prior` as a kind (`None`: the
    /// default); `Err` with the reason when the model cannot take it.
    pub(crate) fn prior_with(self, requested: Option<PriorKind>) -> Result<PriorKind, String> {
        match requested {
            None | Some(PriorKind::Rbm) => Ok(self.prior),
            Some(PriorKind::Bernoulli) => {
                if MODELS
                    .iter()
                    .any(|m| m.objective == self.objective && m.prior == PriorKind::Bernoulli)
                {
                    Ok(PriorKind::Bernoulli)
                } else {
                    Err(format!(
                        "--prior bernoulli is GumBolt-nW (exact log Z); --model {} needs --prior \
                         rbm or a graph",
                        self.name
                    ))
                }
            }
            Some(PriorKind::Graph) if self.graph_prior => Ok(PriorKind::Graph),
            Some(PriorKind::Graph) => Err(format!(
                "--model {} has a factorial prior; it cannot take a graph --prior",
                self.name
            )),
        }
    }

    /// The paper's τ of the objective (on OMNIGLOT if `omniglot`).
    pub(crate) fn paper_tau(self, omniglot: bool) -> f64 {
        self.objective.paper_tau(omniglot)
    }
}

impl ValueEnum for ModelKind {
    fn value_variants<'a>() -> &'a [Self] {
        &MODELS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(
            PossibleValue::new(self.name)
                .aliases(self.aliases.iter().copied())
                .help(self.help),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_titles_and_checkpoint_kinds_are_unique() {
        for (i, a) in MODELS.iter().enumerate() {
            for b in &MODELS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.title, b.title);
                assert!(!b.aliases.contains(&a.name) && !a.aliases.contains(&b.name));
            }
            assert_eq!(ModelKind::named(a.name), Some(*a));
        }
        let kinds: Vec<String> = PRIOR_KINDS.iter().map(|k| k.checkpoint_kind()).collect();
        assert_eq!(
            kinds,
            [
                "gumbolt/rbm/pcd",
                "gumbolt/bernoulli/exact",
                "gumbolt/sparse-bm/pcd"
            ]
        );
        for k in PRIOR_KINDS {
            assert_eq!(
                PriorKind::from_checkpoint_kind(&k.checkpoint_kind()),
                Some(k)
            );
        }
    }

    /// Every stored (prior kind, objective) maps to a row, and every row to itself.
    #[test]
    fn runs_map_back_to_their_model_kind() {
        for m in MODELS {
            assert_eq!(ModelKind::of(m.prior, m.objective), m);
            if m.graph_prior {
                assert_eq!(ModelKind::of(PriorKind::Graph, m.objective), m);
            }
        }
        for k in PRIOR_KINDS {
            for o in Objective::ALL {
                assert!(ModelKind::of(k, o).accepts(k));
            }
        }
        assert_eq!(
            GUMBOLT.prior_with(Some(PriorKind::Bernoulli)),
            Ok(PriorKind::Bernoulli)
        );
        assert!(DVAE.prior_with(Some(PriorKind::Bernoulli)).is_err());
        assert!(GUMBOLT_NW.prior_with(Some(PriorKind::Graph)).is_err());
        assert_eq!(GUMBOLT_NW.prior_with(None), Ok(PriorKind::Bernoulli));
    }

    fn results() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results")
    }

    fn json(path: &std::path::Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The run committed under `results/` (written before this registry existed) maps back to
    /// the model kind its `config.json` names, through its checkpoint's kind string.
    #[test]
    fn committed_run_directories_map_to_their_model_kinds() {
        let dir = results().join("t1-mnist-paper-nonlinear-k1/runs/nonlinear-gumbolt-k1/seed0");
        let config = json(&dir.join("config.json"));
        let meta = gumbolt_models::train::read_meta(dir.join("checkpoint.ckpt")).unwrap();
        assert_eq!(config["model_kind"], meta.model_kind.as_str());
        let kind = PriorKind::from_checkpoint_kind(&meta.model_kind).unwrap();
        assert_eq!(kind, PriorKind::Rbm);
        let model = ModelKind::of(kind, meta.model.objective);
        assert_eq!(config["model"], model.name);
        assert_eq!(model, GUMBOLT);
    }

    /// Every committed cell result names a registered model, with the title it was written with.
    #[test]
    fn committed_cell_results_use_registered_names_and_titles() {
        let mut n = 0;
        for set in std::fs::read_dir(results()).unwrap() {
            let cells = set.unwrap().path().join("cells");
            let Ok(files) = std::fs::read_dir(&cells) else {
                continue;
            };
            for f in files {
                let cell = json(&f.unwrap().path());
                let model = ModelKind::named(cell["model"].as_str().unwrap()).unwrap();
                let k = cell["k"].as_u64().unwrap();
                assert_eq!(cell["column_label"], format!("{} k={k}", model.title));
                assert_eq!(cell["column"], format!("{}-k{k}", model.name));
                n += 1;
            }
        }
        assert!(n > 0, "no committed cell result found");
    }
}
