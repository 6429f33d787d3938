//! `cargo xtask cross`: builds ringlink-core for microcontroller targets and the workspace for Windows.
//!
//! rustup cannot fetch target standard libraries on these machines, so the
//! builds use Debian's `rustc-web` toolchain (`/usr/bin/cargo`, Rust 1.96) and
//! build `core` from its sources (`-Zbuild-std`, enabled on a stable compiler by
//! `RUSTC_BOOTSTRAP=1`). They get their own target directory (`target/cross`)
//! so they never invalidate the host build.

use std::path::PathBuf;
use std::process::Command;

use crate::{cmd, project_root, target_dir};

/// Debian's cargo, as installed by `rustc-web`/`cargo-web`.
pub const DEBIAN_CARGO: &str = "/usr/bin/cargo";

/// Microcontroller targets: `thumbv6m` has no compare-and-swap (the ring must not
/// need it), `thumbv7em` with a hardware FPU is the common Cortex-M4/M7.
pub const THUMB_TARGETS: &[&str] = &["thumbv6m-none-eabi", "thumbv7em-none-eabihf"];

/// Runs the task: `cargo xtask cross`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("cross takes no arguments, got `{arg}`"));
    }
    // One cargo run per feature set builds every target in one build graph, so
    // the standard library and proc-macro builds run in parallel and are shared.
    // `async,defmt` shows the waker slot builds without compare-and-swap (thumbv6m).
    for features in [None, Some("defmt"), Some("async,defmt")] {
        let mut build = debian_cargo("core");
        build.args(["build", "--package", "ringlink-core"]);
        for target in THUMB_TARGETS {
            build.args(["--target", target]);
        }
        if let Some(features) = features {
            build.args(["--features", features]);
        }
        cmd::run(&mut build)?;
    }
    crate::wine::build()
}

/// The target directory of builds made with Debian's toolchain.
pub fn cross_target_dir() -> PathBuf {
    target_dir().join("cross")
}

/// A `/usr/bin/cargo` command that builds the listed standard-library crates
/// from source (`build_std`, e.g. `"core"` or `"std,panic_abort"`), run from the
/// workspace root with [`cross_target_dir`]. Add the subcommand and its arguments.
///
/// The rustup proxies in `~/.cargo/bin` would shadow Debian's `rustc`, so
/// `/usr/bin` goes first on `PATH`, and the variables rustup and the outer cargo
/// set for this process are removed.
pub fn debian_cargo(build_std: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![PathBuf::from("/usr/bin")];
    dirs.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(dirs).unwrap_or(path);

    let mut cmd = Command::new(DEBIAN_CARGO);
    cmd.current_dir(project_root())
        .env("PATH", path)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", cross_target_dir())
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .arg(format!("-Zbuild-std={build_std}"));
    cmd
}
