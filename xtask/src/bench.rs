//! `cargo xtask bench` (not built yet).

/// Runs the task with its command-line arguments.
pub fn run(_args: &[String]) -> Result<(), String> {
    Err("`cargo xtask bench` is not built yet".to_string())
}
