//! `cargo xtask fuzz [--seconds N]`: runs every cargo-fuzz target in `fuzz/` for N seconds.
//!
//! Targets are discovered with `cargo fuzz list`, so a new target in
//! `fuzz/Cargo.toml` is fuzzed without touching xtask. cargo-fuzz needs a
//! nightly compiler (sanitizers): it runs under `rustup run nightly`. Builds go
//! to `target/fuzz`; the corpus grows in `fuzz/corpus/<target>` across runs, and
//! a crash leaves its input in `fuzz/artifacts/<target>`. Inputs committed under
//! `fuzz/seeds/<target>` (crashes found before, once fixed) run first every time.

use std::process::Command;
use std::time::Instant;

use crate::{cmd, project_root, target_dir};

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// Runs the task: `cargo xtask fuzz [--seconds N]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => DEFAULT_SECONDS,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds wants a whole number, got `{n}`"))?,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".to_string()),
    };
    fuzz_all(seconds)
}

/// Fuzzes every target for `seconds` each.
pub fn fuzz_all(seconds: u64) -> Result<(), String> {
    let fuzz_dir = project_root().join("fuzz");
    if !fuzz_dir.join("Cargo.toml").exists() {
        println!("fuzz: skipped, fuzz/Cargo.toml does not exist yet");
        return Ok(());
    }
    let list = cmd::output(cargo_fuzz().arg("list"))?;
    let targets: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return Err("`cargo fuzz list` found no fuzz targets in fuzz/".to_string());
    }
    println!("fuzz: {} for {seconds} s each", targets.join(", "));
    for target in targets {
        let start = Instant::now();
        // The growing corpus first (libFuzzer adds new inputs to the first
        // directory), then the committed seeds: inputs that once found a bug,
        // replayed before any new input is tried.
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut run = cargo_fuzz();
        run.args(["run", target, "--target-dir"])
            .arg(target_dir().join("fuzz"))
            .arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(target);
        if seeds.is_dir() {
            run.arg(&seeds);
        }
        run.arg("--").arg(format!("-max_total_time={seconds}"));
        cmd::run(&mut run).map_err(|e| format!("fuzz target `{target}`: {e}"))?;
        println!(
            "fuzz: {target} clean after {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `cargo fuzz` on the nightly toolchain, run in `fuzz/`.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(project_root().join("fuzz"))
        .args(["run", "nightly", "cargo", "fuzz"])
        // Set by the stable cargo that runs xtask; they would pin its tools.
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO");
    cmd
}
