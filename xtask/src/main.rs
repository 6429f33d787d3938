//! ringlink's build and test automation: `cargo xtask <task>` (matklad's cargo-xtask pattern).
//!
//! Skeleton: the task modules are filled in by their own issues.
mod bench;
mod qemu;
mod wine;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("qemu") => qemu::run(&args[1..]),
        Some("wine") => wine::run(&args[1..]),
        _ => Err("usage: cargo xtask <bench|qemu|wine>".to_string()),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}
