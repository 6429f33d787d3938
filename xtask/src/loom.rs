//! `cargo xtask loom`: runs the loom models of the ring (`core/tests/loom.rs`) and of
//! the shared-memory parking (`host-unix/tests/loom_parking.rs`, on Linux).
//!
//! `--cfg loom` swaps ringlink-core's atomics for loom's (see `core/src/sync.rs`),
//! which changes every crate's build, so the models build in release mode (loom
//! explores many interleavings) in their own target directory, `target/loom`.

use crate::{cargo, cmd, project_root, target_dir};

/// Runs the task: `cargo xtask loom [test filter and libtest arguments]`.
pub fn run(args: &[String]) -> Result<(), String> {
    if !project_root().join("core/tests/loom.rs").exists() {
        println!("loom: skipped, core/tests/loom.rs does not exist yet");
        return Ok(());
    }
    let mut test = cargo();
    test.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", target_dir().join("loom"))
        .args([
            "test",
            "--package",
            "ringlink-core",
            "--release",
            "--test",
            "loom",
            // The async models (wakers, awaiting rings) too.
            "--features",
            "async",
        ]);
    if !args.is_empty() {
        test.arg("--").args(args);
    }
    cmd::run(&mut test)?;
    // Where both halves of a shared-memory side park (Linux: ringlink-unix).
    if cfg!(target_os = "linux")
        && project_root()
            .join("host-unix/tests/loom_parking.rs")
            .exists()
    {
        let mut parking = cargo();
        parking
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", target_dir().join("loom"))
            .args([
                "test",
                "--package",
                "ringlink-unix",
                "--release",
                "--test",
                "loom_parking",
            ]);
        if !args.is_empty() {
            parking.arg("--").args(args);
        }
        cmd::run(&mut parking)?;
    }
    Ok(())
}
