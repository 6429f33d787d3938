//! `cargo xtask tidy`: source checks no compiler makes, after rust-analyzer's tidy test.
//!
//! Every `.rs` file of the workspace (and of `fuzz/`) opens with a `//!` line
//! saying what it is for.

use std::fs;
use std::path::{Path, PathBuf};

use crate::project_root;

/// Directories never checked: build output and fuzzer state (hidden directories
/// such as `.git` are skipped too).
const SKIPPED_DIRS: &[&str] = &["target", "corpus", "artifacts", "coverage"];

/// Runs the task: `cargo xtask tidy`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("tidy takes no arguments, got `{arg}`"));
    }
    let root = project_root();
    let offenders = files_without_module_doc(&root)?;
    if offenders.is_empty() {
        println!("tidy: every .rs file opens with a `//!` line");
        return Ok(());
    }
    let names: Vec<String> = offenders
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    Err(format!(
        "these files do not open with a `//!` line saying what they are for:\n  {}",
        names.join("\n  ")
    ))
}

/// The `.rs` files under `root` whose first line is not a `//!` comment.
fn files_without_module_doc(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    rust_files(root, &mut files)?;
    files.sort();
    let mut offenders = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if !text.starts_with("//!") {
            offenders.push(file);
        }
    }
    Ok(offenders)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if kind.is_dir() {
            let skipped = name.starts_with('.')
                || name.starts_with("target")
                || SKIPPED_DIRS.contains(&name.as_ref());
            if !skipped {
                rust_files(&path, out)?;
            }
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_files_are_found_and_build_output_is_not() {
        let mut files = Vec::new();
        rust_files(&project_root(), &mut files).unwrap();
        assert!(files.iter().any(|f| f.ends_with("xtask/src/tidy.rs")));
        assert!(files.iter().any(|f| f.ends_with("core/src/lib.rs")));
        assert!(
            !files
                .iter()
                .any(|f| f.components().any(|c| c.as_os_str() == "target"))
        );
    }

    #[test]
    fn a_file_without_module_doc_is_reported() {
        let dir = std::env::temp_dir().join(format!("ringlink-tidy-{}", std::process::id()));
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::create_dir_all(dir.join("target")).unwrap();
        fs::write(dir.join("src/good.rs"), "//! Does a thing.\nfn f() {}\n").unwrap();
        fs::write(dir.join("src/bad.rs"), "// not a module doc\nfn f() {}\n").unwrap();
        fs::write(dir.join("target/generated.rs"), "fn f() {}\n").unwrap();
        let offenders = files_without_module_doc(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(offenders.unwrap(), vec![dir.join("src/bad.rs")]);
    }
}
