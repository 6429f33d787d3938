//! ringlink's benchmark harness (being built; see `cargo xtask bench`).
fn main() {
    eprintln!("ringlink-bench: not built yet");
    std::process::exit(2);
}
