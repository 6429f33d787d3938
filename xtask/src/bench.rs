//! `cargo xtask bench [--quick] [--json PATH] [--svg PATH]`: builds `ringlink-bench` in
//! release mode and runs Qt's `QLocalSocket` workload over every ringlink transport and
//! peer. The JSON report and the SVG chart default to `<target dir>/ringlink-bench/`.

use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask bench [--quick] [--json PATH] [--svg PATH] \
                     [--cases pingPong,dataExchange,core,idle] [--transports NAME,...] \
                     [--connections N,...] [--chunks BYTES,...]";

/// What `cargo xtask bench` was asked for.
#[derive(Debug, PartialEq)]
struct BenchArgs {
    quick: bool,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    /// Filters passed through to the harness as they are.
    filters: Vec<String>,
}

fn parse(args: &[String]) -> Result<BenchArgs, String> {
    let mut parsed = BenchArgs {
        quick: false,
        json: None,
        svg: None,
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
            "--json" => parsed.json = Some(PathBuf::from(value("--json")?)),
            "--svg" => parsed.svg = Some(PathBuf::from(value("--svg")?)),
            "--cases" | "--transports" | "--connections" | "--chunks" => {
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

/// Runs the task with its command-line arguments.
pub fn run(args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
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
        .args(["run", "--release", "--package", "ringlink-bench", "--"])
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
                json: Some("a.json".into()),
                svg: Some("b.svg".into()),
                filters: vec![],
            }
        );
        let parsed = parse(&args(&["--cases", "core"])).unwrap();
        assert!(!parsed.quick);
        assert_eq!(parsed.filters, args(&["--cases", "core"]));
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
