//! # gumbolt-models
//!
//! GumBolt (Khoshaman & Amin, NeurIPS 2018) and its baselines, composed from the priors,
//! estimators and samplers crates. This crate currently holds the groundwork the models are
//! built on:
//!
//! - [`data`]: loaders for the `.amat` / `.amat.gz` image files (statically binarised MNIST of
//!   Larochelle & Murray 2011, bundled in the workspace's `data/` directory; algorithms §9 "Data"),
//!   the [`data::Dataset`] type and minibatch gathering.
//! - [`nn`]: hand-written batched networks on nalgebra f32 matrices (rows = samples): [`nn::Dense`],
//!   [`nn::BatchNorm`], [`nn::Tanh`], the [`nn::Mlp`] of algorithms §9
//!   (`[Dense → BatchNorm → tanh] × n_hidden → Dense`), the [`nn::Adam`] optimiser with the
//!   reference's TF1 ε-hat form and coupled weight decay, and the [`nn::ParamMut`] view through
//!   which one optimiser updates every tensor of a model.
//!
//! The GumBolt model itself (algorithms §2) will live in further modules of this crate.
#![warn(missing_docs)]

pub mod data;
pub mod nn;
