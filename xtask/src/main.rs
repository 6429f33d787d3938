//! ringlink's build and test automation: `cargo xtask <task>` (matklad's cargo-xtask pattern).
//!
//! Plain Rust, no dependencies: every task runs `$CARGO` (the cargo that started
//! xtask) or another tool with [`std::process::Command`] from the workspace root.
//! `cargo xtask ci` runs everything a change must pass; `cargo xtask help` lists
//! the tasks.

mod bench;
mod ci;
mod cmd;
mod cross;
mod examples;
mod fuzz;
mod loom;
mod qemu;
mod setup;
mod tidy;
mod wine;

use std::path::PathBuf;
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                  everything a change must pass (the README's test command)
  setup               install missing tools (apt packages as root, cargo-fuzz)
  cross               build ringlink-core for thumbv6m/thumbv7em (with and without defmt)
                      and the workspace for Windows (x86_64-pc-windows-gnu)
  examples [PART]...  build examples/ for Linux and Windows, run them (Wine for Windows),
                      type-check them and the libraries for macOS and FreeBSD
  wine [FILTER]       build for Windows, run the ringlink-windows and ringlink-host tests and the CLI under Wine
  loom                run the loom models of the ring (core/tests/loom.rs)
  fuzz [--seconds N]  run every fuzz target for N seconds (default 60)
  tidy                check that every .rs file opens with a `//!` line
  qemu | size        the Cortex-M self-test under QEMU, and footprints (firmware/)
  bench               a task of its own issue";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(rest),
        Some("setup") => setup::run(rest),
        Some("cross") => cross::run(rest),
        Some("loom") => loom::run(rest),
        Some("fuzz") => fuzz::run(rest),
        Some("tidy") => tidy::run(rest),
        Some("bench") => bench::run(rest),
        Some("qemu") => qemu::run(rest),
        Some("size") => qemu::size(rest),
        Some("wine") => wine::run(rest),
        Some("examples") => examples::run(rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}

/// The workspace root (the directory above `xtask/`).
pub fn project_root() -> PathBuf {
    // `cargo run` sets the variable at run time too: prefer it, so a binary built in one
    // checkout and reused from a copied target directory works on the checkout it runs in.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives one directory below the workspace root")
        .to_path_buf()
}

/// Where build output goes: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
/// Tasks that build with other flags or toolchains use subdirectories of it
/// (`cross`, `loom`, `fuzz`) so they never invalidate the main build.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

/// `$CARGO` (the cargo running xtask, so the same toolchain), run from the root.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root());
    cmd
}
