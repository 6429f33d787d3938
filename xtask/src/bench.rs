//! `cargo xtask bench [--quick] [--json PATH] [--svg PATH]`: builds `ringlink-bench` in
//! release mode (with its `iceoryx2` feature) and runs Qt's `QLocalSocket` workload over
//! every ringlink transport and peer. Run as root, it first installs what Qt's own row
//! needs (`qt6-base-dev`, `g++`, `pkg-config`) when they are missing. The JSON report
//! and the SVG chart default to `<target dir>/ringlink-bench/`.
//!
//! `--wine` builds the harness for Windows instead, as `cargo xtask wine` builds the tests
//! (Debian's toolchain, `-Zbuild-std`, mingw), and runs it under Wine over named pipes;
//! its report defaults to `<target dir>/ringlink-bench/windows/`. Under Wine only the
//! ratios mean something.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USAGE: &str = "usage: cargo xtask bench [--quick] [--wine] [--json PATH] [--svg PATH] \
                     [--cases pingPong,dataExchange,core,idle] [--transports NAME,...] \
                     [--connections N,...] [--chunks BYTES,...] [--rounds N] [--pin one|two] \
                     [--processes two|one] \
                     [--no-iceoryx2]";

/// Longest a run under Wine may take (`--quick`, full).
const WINE_TIMEOUT: (Duration, Duration) =
    (Duration::from_secs(10 * 60), Duration::from_secs(90 * 60));

/// The chunks of a quick run under Wine: pingPong's byte and Qt's chunks up to 10,000.
const QUICK_WINE_CHUNKS: &str = "1,100,1000,10000";

/// What `cargo xtask bench` was asked for.
#[derive(Debug, PartialEq)]
struct BenchArgs {
    quick: bool,
    /// Build for Windows and run under Wine (named pipes).
    wine: bool,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    /// Build without the iceoryx2 peer (a faster build; its rows say "not run").
    no_iceoryx2: bool,
    /// Filters and options passed through to the harness as they are.
    filters: Vec<String>,
}

fn parse(args: &[String]) -> Result<BenchArgs, String> {
    let mut parsed = BenchArgs {
        quick: false,
        wine: false,
        json: None,
        svg: None,
        no_iceoryx2: false,
        filters: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--wine" => parsed.wine = true,
            "--json" => parsed.json = Some(PathBuf::from(value("--json")?)),
            "--svg" => parsed.svg = Some(PathBuf::from(value("--svg")?)),
            "--no-iceoryx2" => parsed.no_iceoryx2 = true,
            "--cases" | "--transports" | "--connections" | "--chunks" | "--rounds" | "--pin"
            | "--processes" => {
                let v = value(arg)?;
                parsed.filters.push(arg.clone());
                parsed.filters.push(v);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Whether `pkg-config` finds Qt's network module.
fn has_qt() -> bool {
    Command::new("pkg-config")
        .args(["--exists", "Qt6Network"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("g++")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Installs Qt's development files for the `qt` row when they are missing and this
/// runs as root with apt; otherwise the row says why it was not run.
fn install_qt() {
    if has_qt() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!("bench: Qt 6 not found and not root with apt: the qt rows will say \"not run\"");
        return;
    }
    eprintln!("bench: installing qt6-base-dev, g++ and pkg-config for the qt rows");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    const INSTALL: [&str; 6] = ["install", "-y", "-q", "qt6-base-dev", "g++", "pkg-config"];
    // A fresh machine's package lists may be missing or old: update once and retry.
    let installed = apt(&INSTALL) || (apt(&["update", "-q"]) && apt(&INSTALL));
    if !installed {
        eprintln!("bench: installing qt6-base-dev failed: the qt rows will say \"not run\"");
    }
}

/// Runs the task with its command-line arguments.
pub fn run(args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    if args.wine {
        return run_under_wine(args);
    }
    if cfg!(target_os = "linux") {
        install_qt();
    }
    let root = workspace_root();
    let out_dir = target_dir(&root).join("ringlink-bench");
    // Paths given by the user are relative to where they ran the command.
    let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let json = args
        .json
        .map_or_else(|| out_dir.join("results.json"), |p| here.join(p));
    let svg = args
        .svg
        .map_or_else(|| out_dir.join("results.svg"), |p| here.join(p));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["run", "--release", "--package", "ringlink-bench"])
        .args(if args.no_iceoryx2 {
            &[][..]
        } else {
            &["--features", "iceoryx2"][..]
        })
        .arg("--")
        .arg("--json")
        .arg(json)
        .arg("--svg")
        .arg(svg)
        .args(&args.filters);
    if args.quick {
        cmd.arg("--quick");
    }
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ringlink-bench failed ({status})"))
    }
}

/// A Unix path as a Windows program under Wine sees it: on drive `Z:`, Wine's view of `/`.
fn wine_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// `--wine`: builds the harness for Windows in release mode and runs it under Wine.
fn run_under_wine(args: BenchArgs) -> Result<(), String> {
    let out_dir = target_dir(&workspace_root())
        .join("ringlink-bench")
        .join("windows");
    let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let json = args
        .json
        .map_or_else(|| out_dir.join("results.json"), |p| here.join(p));
    let svg = args
        .svg
        .map_or_else(|| out_dir.join("results.svg"), |p| here.join(p));
    crate::cmd::run(
        crate::wine::windows_cargo("build")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
            .args(["--release", "--package", "ringlink-bench"]),
    )?;
    let exe = crate::wine::windows_release_dir().join("ringlink-bench.exe");
    let wine = crate::wine::Wine::start()?;
    let mut bench = wine.command(&exe);
    bench
        .arg("--json")
        .arg(wine_path(&json))
        .arg("--svg")
        .arg(wine_path(&svg))
        .args(&args.filters);
    if args.quick {
        bench.arg("--quick");
        // interprocess stalls on 100,000-byte chunks under Wine, and every row after with it.
        if !args.filters.iter().any(|f| f == "--chunks") {
            bench.args(["--chunks", QUICK_WINE_CHUNKS]);
        }
    }
    let timeout = if args.quick {
        WINE_TIMEOUT.0
    } else {
        WINE_TIMEOUT.1
    };
    wine.run(&mut bench, timeout, "ringlink-bench.exe")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_flags() {
        let parsed = parse(&args(&["--quick", "--json", "a.json", "--svg", "b.svg"])).unwrap();
        assert_eq!(
            parsed,
            BenchArgs {
                quick: true,
                wine: false,
                json: Some("a.json".into()),
                svg: Some("b.svg".into()),
                no_iceoryx2: false,
                filters: vec![],
            }
        );
        let parsed = parse(&args(&["--cases", "core", "--pin", "two", "--no-iceoryx2"])).unwrap();
        assert!(!parsed.quick && parsed.no_iceoryx2);
        assert_eq!(parsed.filters, args(&["--cases", "core", "--pin", "two"]));
    }

    #[test]
    fn wine_runs_get_their_paths_on_drive_z() {
        let parsed = parse(&args(&["--wine", "--quick"])).unwrap();
        assert!(parsed.wine && parsed.quick);
        assert_eq!(
            wine_path(Path::new("/work/target/a.json")),
            r"Z:\work\target\a.json"
        );
    }

    #[test]
    fn rejects_unknown_and_incomplete_flags() {
        assert!(
            parse(&args(&["--fast"]))
                .unwrap_err()
                .contains("unknown argument")
        );
        assert!(
            parse(&args(&["--json"]))
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
