//! The bundled data are found at run time (beside the executable, in the working directory, or
//! through `GUMBOLT_DATA_DIR`), never through a path compiled into the binary.

use std::path::Path;
use std::process::Command;

/// A copy of the `gumbolt` binary in a fresh directory outside the checkout.
fn copied_binary(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin").join("gumbolt");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_gumbolt"), &bin).unwrap();
    bin
}

/// Runs `cmd`, retrying while the kernel reports the fresh copy as busy: another test thread
/// may fork while this one still holds the copy open for writing (ETXTBSY until its child
/// execs).
fn output(cmd: &mut Command) -> std::process::Output {
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r.unwrap(),
        }
    }
    panic!("{cmd:?}: the executable stayed busy")
}

/// The smallest command that loads the bundled MNIST: a one-iteration bench.
const BENCH: [&str; 9] = [
    "bench",
    "--structure",
    "linear",
    "--k",
    "1",
    "--iters",
    "1",
    "--warmup",
    "0",
];

#[test]
fn a_copied_binary_says_where_it_looked_for_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = copied_binary(tmp.path());
    let mut cmd = Command::new(&bin);
    cmd.args(BENCH)
        .args(["--pcd-steps", "1"])
        .current_dir(tmp.path())
        .env_remove("GUMBOLT_DATA_DIR");
    let out = output(&mut cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bundled data directory was not found")
            && err.contains(&tmp.path().join("bin").join("data").display().to_string())
            && err.contains("GUMBOLT_DATA_DIR"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_copied_binary_finds_data_beside_it_or_through_the_environment() {
    let repo_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let tmp = tempfile::tempdir().unwrap();
    let bin = copied_binary(tmp.path());
    let run = |cwd: &Path, env: Option<&Path>| {
        let mut cmd = Command::new(&bin);
        cmd.args(BENCH)
            .args(["--pcd-steps", "1", "--json"])
            .current_dir(cwd)
            .env_remove("GUMBOLT_DATA_DIR");
        if let Some(e) = env {
            cmd.env("GUMBOLT_DATA_DIR", e);
        }
        output(&mut cmd)
    };
    // Through the environment variable.
    let out = run(tmp.path(), Some(&repo_data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // From the working directory's data/ (a symlink to the checkout's).
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(repo_data.canonicalize().unwrap(), work.join("data")).unwrap();
    let out = run(&work.join("."), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
