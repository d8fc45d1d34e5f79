//! Helpers shared by the command-line tests (each test file uses some of them).
#![allow(dead_code)]

use gumbolt_models::checkpoint::{self, TensorData};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the `gumbolt` binary with `args` and waits for it.
pub fn gumbolt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gumbolt"))
        .args(args)
        .output()
        .expect("the gumbolt binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs gumbolt, asserts success and parses every stdout line as JSON.
pub fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = gumbolt(args);
    assert!(
        out.status.success(),
        "gumbolt {args:?} failed: {}",
        stderr(&out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid JSON ({e}): {l}")))
        .collect()
}

/// As [`json_lines`], asserting there is exactly one line.
pub fn one_json(args: &[&str]) -> Value {
    let v = json_lines(args);
    assert_eq!(v.len(), 1, "one JSON line expected from {args:?}: {v:?}");
    v.into_iter().next().unwrap()
}

/// The number `v[key]`.
pub fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

/// A tensor: name, shape and the bits of its values.
pub type TensorBits = (String, Vec<usize>, Vec<u32>);

/// The tensors of a checkpoint bit for bit, and its metadata without the wall-clock field.
pub fn checkpoint_state(path: &Path) -> (Vec<TensorBits>, Value) {
    let raw = checkpoint::read(path).unwrap();
    let tensors = raw
        .tensors
        .iter()
        .map(|t| {
            let bits = match &t.data {
                TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                TensorData::U32(v) => v.clone(),
            };
            (t.name.clone(), t.shape.clone(), bits)
        })
        .collect();
    let mut meta = raw.meta;
    meta.as_object_mut().unwrap().remove("train_seconds");
    (tensors, meta)
}

/// Asserts that a JSON report (`train_summary.json`, bench's line) shows the arithmetic a new
/// run takes unless told: bf16 network products and bf16x3 chain products where this CPU has
/// AMX-BF16, f32 elsewhere, both as asked for and as run.
pub fn assert_default_products(v: &Value) {
    let amx = gumbolt_core::linalg::Precision::bf16_available();
    let (net, chains) = if amx {
        ("bf16", "bf16x3")
    } else {
        ("f32", "f32")
    };
    assert_eq!(v["network_products"], net, "{v}");
    assert_eq!(v["network_products_effective"], net, "{v}");
    assert_eq!(v["chain_products"], chains, "{v}");
    assert_eq!(v["chain_products_effective"], chains, "{v}");
}
