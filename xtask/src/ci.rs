//! `cargo xtask ci`: every check a change must pass, one step after another.
//!
//! Each step prints its name and how long it took; the first failure stops the
//! run with a non-zero exit naming the step. `--skip <step>` leaves a step out
//! while iterating locally (CI never skips).

use std::time::{Duration, Instant};

use crate::{cargo, cmd, project_root};

/// Seconds each fuzz target runs in CI: a smoke test, not a campaign.
const FUZZ_SMOKE_SECONDS: u64 = 20;

/// A step: its name, and what it runs.
type Step = (&'static str, fn() -> Result<(), String>);

/// The steps, in order: cheap checks first, so a formatting slip fails in seconds.
/// One line per step; a task of another issue joins with one line here.
#[rustfmt::skip]
const STEPS: &[Step] = &[
    ("setup", || crate::setup::run(&[])),
    ("tidy", || crate::tidy::run(&[])),
    ("fmt", fmt),
    ("clippy", clippy),
    ("test", test),
    ("loom", || crate::loom::run(&[])),
    ("doc", doc),
    ("cross", || crate::cross::run(&[])),
    ("fuzz", || crate::fuzz::fuzz_all(FUZZ_SMOKE_SECONDS)),
    ("qemu", || crate::qemu::run(&[])),
    ("wine", || crate::wine::run(&[])),
    ("examples", || crate::examples::run(&[])),
];

/// Runs the task: `cargo xtask ci [--skip <step>]...`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut skipped = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--skip", Some(name)) if STEPS.iter().any(|(step, _)| step == name) => {
                skipped.push(name.as_str())
            }
            _ => {
                let names: Vec<&str> = STEPS.iter().map(|(step, _)| *step).collect();
                return Err(format!(
                    "usage: cargo xtask ci [--skip <step>]...; steps: {}",
                    names.join(", ")
                ));
            }
        }
    }

    let started = Instant::now();
    let mut times = Vec::new();
    let total = STEPS.len();
    for (i, &(name, step)) in STEPS.iter().enumerate() {
        if skipped.contains(&name) {
            println!("\n==> [{}/{total}] {}: skipped (--skip)", i + 1, name);
            continue;
        }
        println!("\n==> [{}/{total}] {}", i + 1, name);
        let step_start = Instant::now();
        let result = step();
        let took = step_start.elapsed();
        if let Err(e) = result {
            println!("<== {} FAILED after {}", name, human(took));
            return Err(format!(
                "ci failed at step `{}` (after {} in all): {e}",
                name,
                human(started.elapsed())
            ));
        }
        println!("<== {} ok in {}", name, human(took));
        times.push(format!("{} {}", name, human(took)));
    }
    println!(
        "\nci: {} steps passed in {} ({})",
        times.len(),
        human(started.elapsed()),
        times.join(", ")
    );
    Ok(())
}

fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn fmt() -> Result<(), String> {
    cmd::run(cargo().args(["fmt", "--all", "--check"]))?;
    if project_root().join("fuzz/Cargo.toml").exists() {
        // `fuzz/` is a workspace of its own.
        cmd::run(cargo().args([
            "fmt",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--all",
            "--check",
        ]))?;
    }
    Ok(())
}

fn clippy() -> Result<(), String> {
    cmd::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::wine::clippy()
}

fn test() -> Result<(), String> {
    if cmd::succeeds(cargo().args(["nextest", "--version"])) {
        cmd::run(cargo().args(["nextest", "run", "--workspace"]))?;
        // nextest does not run doc tests.
        cmd::run(cargo().args(["test", "--workspace", "--doc"]))
    } else {
        println!("test: cargo-nextest not found, using cargo test");
        cmd::run(cargo().args(["test", "--workspace"]))
    }
}

fn doc() -> Result<(), String> {
    cmd::run(
        cargo()
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--no-deps"]),
    )
}
