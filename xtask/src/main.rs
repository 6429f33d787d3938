//! ringlink's build and test automation (placeholder until the full xtask lands).
fn main() {}
