//! `cargo xtask qemu` (not built yet).

/// Runs the task with its command-line arguments.
pub fn run(_args: &[String]) -> Result<(), String> {
    Err("`cargo xtask qemu` is not built yet".to_string())
}
