//! Cargo hygiene of the workspace (issue 16), checked on the manifests and sources themselves so
//! that it runs with `cargo test` (CI also runs `cargo machete` when it is installed):
//!
//! - every dependency a member declares is named in that member's Rust sources (an unused
//!   dependency only costs build time and widens the supply chain);
//! - the library crates meant for publishing carry `rust-version`, a `version` on every path
//!   dependency (through `[workspace.dependencies]`) and their licence files; the internal
//!   crates say `publish = false`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The dependency names of the `[section]` of a manifest (`name.workspace = true`,
/// `name = "1"`, `name = { … }`).
fn deps(manifest: &str, section: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
            continue;
        }
        if !in_section || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let name = t.split(['=', '.', ' ']).next().unwrap().trim();
        out.push(name.to_string());
    }
    out
}

/// The text of every `.rs` file under `dir` (skipping the fuzz workspace and build outputs).
fn sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() && !["target", "fuzz", "corpus"].contains(&name.as_str()) {
            sources(&p, out);
        } else if name.ends_with(".rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
}

const MEMBERS: [&str; 8] = [
    "core",
    "priors",
    "estimators",
    "samplers",
    "datasets",
    "models",
    "examples",
    "tests",
];
const PUBLISHED: [&str; 6] = [
    "core",
    "priors",
    "estimators",
    "samplers",
    "datasets",
    "models",
];

#[test]
fn every_declared_dependency_is_used() {
    let mut unused = Vec::new();
    for m in MEMBERS {
        let dir = root().join(m);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut src = String::new();
        sources(&dir, &mut src);
        for section in ["dependencies", "dev-dependencies"] {
            for d in deps(&manifest, section) {
                let ident = d.replace('-', "_");
                let used = src.contains(&format!("{ident}::"))
                    || src.contains(&format!("use {ident}"))
                    || src.contains(&format!("extern crate {ident}"))
                    || src.contains(&format!("{ident}!"));
                if !used {
                    unused.push(format!("{m}: [{section}] {d}"));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "declared but never named in the sources: {unused:?}"
    );
}

#[test]
fn publishable_crates_are_packaged_and_internal_ones_are_not() {
    let ws = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(ws.contains("\nrust-version = \""), "workspace rust-version");
    assert!(
        !ws.contains("example.invalid"),
        "a placeholder repository URL"
    );
    for line in ws.lines().filter(|l| l.contains("path = \"")) {
        assert!(
            line.contains("version = \""),
            "path dependency without a version: {line}"
        );
    }
    for m in PUBLISHED {
        let dir = root().join(m);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("rust-version.workspace = true"),
            "{m}: rust-version"
        );
        assert!(
            !manifest.contains("publish = false"),
            "{m} is meant for publishing"
        );
        for f in ["LICENSE-MIT", "LICENSE-APACHE"] {
            let text =
                std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{m}/{f}: {e}"));
            assert!(text.contains("License"), "{m}/{f} is not a licence text");
        }
    }
    for m in ["examples", "tests"] {
        let manifest = std::fs::read_to_string(root().join(m).join("Cargo.toml")).unwrap();
        assert!(manifest.contains("publish = false"), "{m} is internal");
    }
}
