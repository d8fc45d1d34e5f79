//! Build-time facts for run manifests (`manifest.json`): the git commit the binary is built
//! from and whether the tree had uncommitted changes, and the compiler's version.
//!
//! Without git or outside a git checkout (a source tarball, a crate unpacked by cargo) the
//! commit and the dirty flag are `unknown`. Sets `GUMBOLT_GIT_COMMIT`, `GUMBOLT_GIT_DIRTY`
//! (`true`, `false` or `unknown`) and `GUMBOLT_RUSTC_VERSION` for `env!`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git args` in `dir`; its trimmed stdout if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();

    // A commit only if the examples crate is in the checkout (not a crate unpacked elsewhere).
    // (`build.rs` must be tracked by that repository: a copy unpacked inside another
    // project's checkout reports `unknown`, not that project's commit.)
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let in_checkout = top.as_deref().is_some_and(|t| manifest_dir.starts_with(t))
        && git(&manifest_dir, &["ls-files", "--error-unmatch", "build.rs"]).is_some();
    let commit = in_checkout
        .then(|| git(&manifest_dir, &["rev-parse", "HEAD"]))
        .flatten();
    let dirty = match &commit {
        Some(_) => match git(&root, &["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) => (!s.is_empty()).to_string(),
            None => "unknown".into(),
        },
        None => "unknown".into(),
    };
    println!(
        "cargo:rustc-env=GUMBOLT_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=GUMBOLT_GIT_DIRTY={dirty}");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GUMBOLT_RUSTC_VERSION={version}");

    // Rerun when HEAD moves, the index changes, or a source file of the workspace changes
    // (the dirty flag). Directories are watched recursively by cargo.
    if in_checkout {
        for what in ["HEAD", "index", "packed-refs"] {
            if let Some(p) = git(&manifest_dir, &["rev-parse", "--git-path", what]) {
                println!("cargo:rerun-if-changed={}", manifest_dir.join(p).display());
            }
        }
        if let Some(r) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"])
            && let Some(p) = git(&manifest_dir, &["rev-parse", "--git-path", &r])
        {
            println!("cargo:rerun-if-changed={}", manifest_dir.join(p).display());
        }
        for member in [
            "core",
            "priors",
            "estimators",
            "samplers",
            "datasets",
            "models",
            "examples/src",
            "tests",
            "Cargo.toml",
            "Cargo.lock",
        ] {
            let p = root.join(member);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
