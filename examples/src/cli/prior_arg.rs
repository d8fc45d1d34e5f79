//! `gumbolt train --prior`: the RBM, the factorial prior of GumBolt-nW, or a Boltzmann machine on
//! a graph (a D-Wave topology or a JSON edge list), and how it sets up the model.

use super::registry::{ModelKind, PriorKind};
use super::usage_error;
use anyhow::Result;
use gumbolt_models::gumbolt::{GumBoltConfig, PriorGraph};
use gumbolt_priors::{SparseBm, Topology};
use std::path::PathBuf;

/// The value of `--prior`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PriorArg {
    /// The RBM (GB Eq. 4).
    Rbm,
    /// A factorial Bernoulli prior (GumBolt-nW).
    Bernoulli,
    /// A Boltzmann machine on a D-Wave topology.
    Topology(Topology),
    /// A Boltzmann machine on the graph of a JSON file.
    File {
        /// The file.
        path: PathBuf,
        /// Its node count and edges.
        nodes: usize,
        edges: Vec<(usize, usize)>,
    },
}

impl PriorArg {
    /// Its prior kind.
    pub(crate) fn kind(&self) -> PriorKind {
        match self {
            PriorArg::Rbm => PriorKind::Rbm,
            PriorArg::Bernoulli => PriorKind::Bernoulli,
            PriorArg::Topology(_) | PriorArg::File { .. } => PriorKind::Graph,
        }
    }

    /// The form stored in the run: `rbm`, `bernoulli`, `pegasus:4`, `graph:FILE`.
    pub(crate) fn label(&self) -> String {
        match self {
            PriorArg::Rbm => "rbm".into(),
            PriorArg::Bernoulli => "bernoulli".into(),
            PriorArg::Topology(t) => t.spec(),
            PriorArg::File { path, .. } => format!("graph:{}", path.display()),
        }
    }
}

/// Parses `--prior` (reading a `graph:FILE.json` file: a malformed file is an error naming it).
pub(crate) fn parse_prior(s: &str) -> Result<PriorArg, String> {
    match s {
        "rbm" => return Ok(PriorArg::Rbm),
        "bernoulli" => return Ok(PriorArg::Bernoulli),
        _ => {}
    }
    if let Some(file) = s.strip_prefix("graph:") {
        if file.is_empty() {
            return Err("graph: needs a file, e.g. graph:bm.json".into());
        }
        let bm = SparseBm::load_json(file).map_err(|e| e.to_string())?;
        return Ok(PriorArg::File {
            path: PathBuf::from(file),
            nodes: bm.num_units(),
            edges: bm.edges().to_vec(),
        });
    }
    s.parse::<Topology>().map(PriorArg::Topology).map_err(|e| {
        format!(
            "{e} (--prior takes rbm, bernoulli, chimera[:M,N,T], pegasus[:M], zephyr[:M,T] or \
             graph:FILE.json)"
        )
    })
}

/// The prior kind of `--model` with `--prior`.
pub(crate) fn kind_of(model: ModelKind, prior: Option<&PriorArg>) -> Result<PriorKind> {
    model
        .prior_with(prior.map(PriorArg::kind))
        .map_err(|e| usage_error("train", e))
}

/// Sets the model's graph and latent units per layer (the node count split evenly over the
/// layers) for a graph prior.
pub(crate) fn apply(prior: Option<&PriorArg>, mc: &mut GumBoltConfig) -> Result<()> {
    let graph = match prior {
        Some(PriorArg::Topology(t)) => PriorGraph::Topology(*t),
        Some(PriorArg::File { path, nodes, edges }) => PriorGraph::Edges {
            nodes: *nodes,
            edges: edges.clone(),
            source: path.display().to_string(),
        },
        _ => return Ok(()),
    };
    let n = graph.graph().map_err(|e| usage_error("train", e))?.0;
    let layers = mc.layers();
    if n % layers != 0 {
        return Err(usage_error(
            "train",
            format!(
                "--prior {}: {n} nodes cannot be split evenly over the {layers} stochastic layers \
                 of --structure {}",
                graph.label(),
                mc.structure.name()
            ),
        ));
    }
    mc.latent_units = n / layers;
    mc.prior_graph = Some(graph);
    Ok(())
}

/// The `--prior` label of a stored run.
pub(crate) fn label_of(kind: PriorKind, mc: &GumBoltConfig) -> String {
    match (kind, &mc.prior_graph) {
        (PriorKind::Rbm, _) => "rbm".into(),
        (PriorKind::Bernoulli, _) => "bernoulli".into(),
        (PriorKind::Graph, Some(g)) => g.label(),
        (PriorKind::Graph, None) => "a graph".into(),
    }
}
