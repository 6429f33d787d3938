//! `cargo xtask setup`: installs the tools the other tasks need, only when missing.
//!
//! Debian packages are installed with apt when running as root (one `apt-get
//! update`, one `apt-get install`); otherwise the exact command is printed.
//! `cargo-fuzz` is installed with `cargo install` (no root needed). With
//! everything present this takes a few milliseconds.

use std::process::Command;

use crate::{cargo, cmd};

/// Debian packages the tasks use, and why.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "Rust with -Zbuild-std for the cross builds"),
    ("cargo-web", "the cargo of rustc-web"),
    (
        "rust-web-clippy",
        "clippy of rustc-web, for the Windows lints",
    ),
    ("rust-web-src", "standard library sources for -Zbuild-std"),
    (
        "rust-web-llvm",
        "rust-lld, the linker of the Cortex-M binaries",
    ),
    ("lld-22", "what rust-web-llvm's rust-lld links to"),
    ("gcc-mingw-w64-x86-64", "linker for x86_64-pc-windows-gnu"),
    ("wine64", "runs the Windows binaries"),
    ("qemu-system-arm", "runs the Cortex-M binaries"),
    ("g++", "compiles libFuzzer for cargo-fuzz"),
    (
        "python3-pyqt5",
        "Qt's QLocalServer/QLocalSocket for the Qt interop test",
    ),
];

/// Runs the task: `cargo xtask setup`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("setup takes no arguments, got `{arg}`"));
    }
    apt_packages()?;
    cargo_fuzz()?;
    nightly();
    Ok(())
}

fn apt_packages() -> Result<(), String> {
    if !cmd::succeeds(Command::new("dpkg-query").arg("--version")) {
        let names: Vec<&str> = APT_PACKAGES.iter().map(|(name, _)| *name).collect();
        println!(
            "setup: not a Debian system; install the equivalents of: {}",
            names.join(" ")
        );
        return Ok(());
    }
    let missing = missing_packages();
    if missing.is_empty() {
        println!("setup: apt packages present");
        return Ok(());
    }
    for name in &missing {
        let why = APT_PACKAGES
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, why)| *why);
        println!("setup: missing {name} ({why})");
    }
    let mut update = apt_get();
    update.arg("update");
    let mut install = apt_get();
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing);
    if !is_root() {
        println!(
            "setup: not root; run as root:\n  {} && {}",
            cmd::display(&update),
            cmd::display(&install)
        );
        return Err(format!("missing apt packages: {}", missing.join(" ")));
    }
    cmd::run(&mut update)?;
    cmd::run(&mut install)?;
    let still = missing_packages();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("apt did not install: {}", still.join(" ")))
    }
}

/// `apt-get` that waits for a lock held by another apt instead of failing.
fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-o", "DPkg::Lock::Timeout=600", "-q"]);
    cmd
}

fn missing_packages() -> Vec<String> {
    // `dpkg-query -W` exits non-zero when some package is unknown but still
    // prints the known ones, so read its output whatever the status.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\\n"])
        .args(APT_PACKAGES.iter().map(|(name, _)| name))
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    APT_PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            !out.lines().any(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .is_some_and(|status| status.split_whitespace().last() == Some("installed"))
            })
        })
        .map(str::to_string)
        .collect()
}

fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn cargo_fuzz() -> Result<(), String> {
    if cmd::succeeds(cargo().args(["fuzz", "--version"])) {
        println!("setup: cargo-fuzz present");
        return Ok(());
    }
    cmd::run(cargo().args(["install", "cargo-fuzz", "--locked"]))
}

/// cargo-fuzz needs a nightly toolchain; rustup cannot fetch one on every
/// machine, so a missing one is reported (the fuzz task fails on it), not fatal here.
fn nightly() {
    if cmd::succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        println!("setup: nightly toolchain present");
    } else {
        println!(
            "setup: no nightly toolchain; `cargo xtask fuzz` needs `rustup toolchain install nightly`"
        );
    }
}
