//! # gumbolt-models
//!
//! GumBolt (Khoshaman & Amin, NeurIPS 2018) and its baselines, composed from the priors,
//! estimators and samplers crates. The models do not depend on a data set (the input dimension
//! is a field of the configuration); the trainer and the evaluator take their images as
//! [`gumbolt_datasets::Dataset`]s. This crate holds:
//!
//! - [`nn`]: hand-written batched networks on nalgebra f32 matrices (rows = samples): [`nn::Dense`],
//!   [`nn::BatchNorm`], [`nn::Tanh`], the [`nn::Mlp`] of docs/algorithms.md §9
//!   (`[Dense → BatchNorm → tanh] × n_hidden → Dense`), the [`nn::Adam`] optimiser with the
//!   reference's TF1 ε-hat form and coupled weight decay, and the [`nn::ParamMut`] view through
//!   which one optimiser updates every tensor of a model.
//!
//! - [`gumbolt`]: the GumBolt model (GB §3.1 Eq. 9; docs/algorithms.md §2): the relaxed importance-
//!   weighted objective with its hand-written backward pass, the training step (PCD, KL
//!   annealing, Adam with the paper's schedule), the discrete objective at τ = 0 and the
//!   S-sample log-likelihood estimator.
//!
//! - [`dvae`]: the one-stochastic-layer dVAE / dVAE++ objective (smoothed ELBO with the
//!   closed-form KL to an RBM prior, docs/algorithms.md §3–§4) and its hand-written gradient.
//! - [`train`]: the training loop of GB §5.1 ([`train::Trainer`]) with monitoring of F_k and
//!   L_k (GB Fig. 2b), atomic checkpoints and bit-exact resumption.
//! - [`checkpoint`]: the versioned, checksummed checkpoint container.
//! - [`eval`]: `log Z` (PT + bridge sampling, AIS, exact), the multi-threaded S-sample test
//!   log-likelihood at τ = 0, and generation.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod dvae;
pub mod eval;
#[doc(hidden)]
pub mod fuzz;
pub mod gumbolt;
pub mod nn;
pub mod train;
