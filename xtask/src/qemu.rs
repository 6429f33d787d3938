//! `cargo xtask qemu` and `cargo xtask size`: ringlink-core on a Cortex-M3, under QEMU.
//!
//! The firmware in `firmware/` is its own cargo workspace, cross-built for
//! `thumbv7m-none-eabi` with Debian's `rustc-web` (`/usr/bin/cargo`,
//! `RUSTC_BOOTSTRAP=1`, `-Zbuild-std=core`, linked by `rust-lld` with
//! cortex-m-rt's `link.x`) into `<target>/firmware`.
//!
//! - `qemu` runs the `selftest` image and the `selftest-async` image (ringlink-core's
//!   async API on embassy's executor) on `qemu-system-arm -machine lm3s6965evb`.
//!   Their defmt log leaves through semihosting on QEMU's standard output and is
//!   decoded by `defmt-print` (installed with `cargo install` when missing); the
//!   verdict is the semihosting exit status. Then it runs each image once per
//!   injected fault (chosen on the semihosting command line) and requires each run
//!   to *fail* its checks: a self-test that cannot fail proves nothing.
//!   Every QEMU run is killed after a timeout, so it never hangs CI.
//! - `size` builds minimal images (baseline, ring, ring + channel + frames,
//!   ring + channel + frames + postcard, shared producer; embassy's executor alone and
//!   with async channel + frames) and prints their flash and RAM, read from the ELF
//!   section headers.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cross::debian_cargo;
use crate::{cmd, project_root, target_dir};

/// The Cortex-M3 of the lm3s6965.
const TARGET: &str = "thumbv7m-none-eabi";
/// How long one QEMU run may take before it is killed and counted as failed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The self-test's exit status when a check fails (see `firmware/src/bin/selftest`).
const EXIT_CHECK_FAILED: i32 = 1;

/// The self-test images: the blocking API, and the async API on embassy.
const SELFTESTS: &[(&str, &[(&str, &str)])] =
    &[("selftest", FAULTS), ("selftest-async", ASYNC_FAULTS)];

/// Faults the self-test can inject into its own data paths (`fault=<name>` on the
/// semihosting command line), with what each one does. Each must make a check fail.
const FAULTS: &[(&str, &str)] = &[
    (
        "flip-bit",
        "the SysTick producer flips a bit of a frame inside the ring",
    ),
    (
        "skip-seq",
        "the SysTick producer skips a sequence number without counting a drop",
    ),
    (
        "drop-byte",
        "the channel task loses one byte of the byte stream",
    ),
];

/// Faults of the async self-test (same names, async data paths).
const ASYNC_FAULTS: &[(&str, &str)] = &[
    (
        "flip-bit",
        "SysTick flips a bit of a sample after its CRC, on its way to the awaiting task",
    ),
    (
        "skip-seq",
        "SysTick skips a sequence number without counting a drop",
    ),
    (
        "drop-byte",
        "async channel task B loses one byte of A's stream",
    ),
];

/// Minimal images measured by `cargo xtask size`, with what each one holds.
const SIZE_IMAGES: &[(&str, &str)] = &[
    ("size-empty", "cortex-m-rt baseline (vector table, reset)"),
    ("size-ring", "ring: static Ring<256>, write + read"),
    ("size-frames", "ring + channel + frames (no postcard)"),
    ("size-postcard", "ring + channel + frames + postcard"),
    (
        "size-shared",
        "SharedProducer<256> (SysTick + thread) + FrameConsumer",
    ),
];

/// Images of the async API, built with the firmware's `async` feature; the first
/// is the executor alone, the baseline of the others' "+async" column.
const ASYNC_SIZE_IMAGES: &[(&str, &str)] = &[
    (
        "size-executor",
        "embassy thread executor + 3 tasks, no ringlink",
    ),
    (
        "size-async",
        "executor + async Channel<64> + async frames (2 tasks)",
    ),
];

/// Runs `cargo xtask qemu [--timeout SECONDS] [--no-faults]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut timeout = DEFAULT_TIMEOUT;
    let mut faults = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout" => {
                let secs = args
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or("--timeout takes a number of seconds")?;
                timeout = Duration::from_secs(secs);
            }
            "--no-faults" => faults = false,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo xtask qemu [--timeout SECONDS] [--no-faults]"
                ));
            }
        }
    }
    let qemu = find_tool("qemu-system-arm").ok_or(
        "qemu-system-arm not found: `cargo xtask setup` or `apt-get install qemu-system-arm`",
    )?;
    let defmt_print = defmt_print()?;
    let started = Instant::now();
    let bins: Vec<&str> = SELFTESTS.iter().map(|(name, _)| *name).collect();
    let elfs = build(&bins, &["defmt", "async"])?;
    for ((image, image_faults), elf) in SELFTESTS.iter().zip(&elfs) {
        println!("qemu: {image}");
        let run = run_qemu(&qemu, &defmt_print, elf, None, timeout)?;
        if !run.passed() {
            return Err(format!("{image} failed: {}", run.verdict()));
        }
        println!("qemu: {image} passed");
        if !faults {
            continue;
        }
        for (fault, what) in *image_faults {
            println!("qemu: {image} with fault `{fault}` ({what}): must fail");
            let run = run_qemu(&qemu, &defmt_print, elf, Some(fault), timeout)?;
            if run.exit_code() != Some(EXIT_CHECK_FAILED) {
                return Err(format!(
                    "with fault `{fault}` injected {image} should fail a check (exit status {EXIT_CHECK_FAILED}), but it {}",
                    run.verdict()
                ));
            }
            println!("qemu: {image}: fault `{fault}` detected");
        }
    }
    println!(
        "qemu: all runs as expected in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `cargo xtask size`: builds the minimal images and prints their footprint.
pub fn size(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("size takes no arguments, got `{arg}`"));
    }
    // Without ringlink-core's `defmt` feature: logging is not the core's footprint.
    // The blocking images without the `async` feature, as their users build them.
    let rows = footprints(SIZE_IMAGES, &[])?;
    let async_rows = footprints(ASYNC_SIZE_IMAGES, &["async"])?;
    let base = rows.first().map(|(_, _, f)| *f).unwrap_or_default();
    let executor = async_rows.first().map(|(_, _, f)| *f).unwrap_or_default();
    println!(
        "{TARGET}, opt-level \"s\", fat LTO, panic = abort, no defmt. Bytes; flash = code + data, \
         RAM = data + bss (stack not counted); \"+\" columns: over the cortex-m-rt baseline; \
         \"+async\": over the executor alone (what ringlink's async layer adds)."
    );
    println!(
        "{:<14} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7}  contents",
        "image", "code", "data", "bss", "flash", "RAM", "+flash", "+RAM", "+async"
    );
    let all = rows.iter().map(|row| (row, None)).chain(
        async_rows
            .iter()
            .map(|row| (row, Some(row.2.flash().saturating_sub(executor.flash())))),
    );
    for ((name, what, f), over_executor) in all {
        let over_executor = over_executor.map(|b| b.to_string()).unwrap_or_default();
        println!(
            "{:<14} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>7}  {}",
            name,
            f.text,
            f.data,
            f.bss,
            f.flash(),
            f.ram(),
            f.flash().saturating_sub(base.flash()),
            f.ram().saturating_sub(base.ram()),
            over_executor,
            what
        );
    }
    Ok(())
}

/// Builds `images` with the firmware `features` and reads their footprints.
fn footprints(
    images: &[(&'static str, &'static str)],
    features: &[&str],
) -> Result<Vec<(&'static str, &'static str, Footprint)>, String> {
    let bins: Vec<&str> = images.iter().map(|(name, _)| *name).collect();
    let elfs = build(&bins, features)?;
    let mut rows = Vec::new();
    for ((name, what), elf) in images.iter().zip(&elfs) {
        let bytes =
            std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
        let footprint = Footprint::of_elf(&bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
        rows.push((*name, *what, footprint));
    }
    Ok(rows)
}

/// `<target>/firmware`: apart from the host build, whose compiler and flags differ.
fn firmware_target_dir() -> PathBuf {
    target_dir().join("firmware")
}

/// `tool` on `PATH` (after `/usr/bin`) or in `~/.cargo/bin`.
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![PathBuf::from("/usr/bin")];
    dirs.extend(std::env::split_paths(&path));
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    } else if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// `defmt-print`, installed from crates.io with `cargo install --locked` if missing.
fn defmt_print() -> Result<PathBuf, String> {
    if let Some(tool) = find_tool("defmt-print") {
        return Ok(tool);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut install = Command::new(cargo);
    install.args(["install", "defmt-print", "--locked"]);
    println!("$ cargo install defmt-print --locked");
    let status = install
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo install defmt-print --locked` failed ({status})"
        ));
    }
    find_tool("defmt-print").ok_or_else(|| "defmt-print installed but not found".to_string())
}

/// Builds the firmware binaries `bins` with cargo `features` (release profile:
/// opt-level "s") and returns their ELF paths, in order.
fn build(bins: &[&str], features: &[&str]) -> Result<Vec<PathBuf>, String> {
    let target_dir = firmware_target_dir();
    // `firmware/.cargo/config.toml` (target, linker scripts, DEFMT_LOG) applies
    // because cargo runs from the firmware directory.
    let mut cmd = debian_cargo("core");
    if let Some(linker) = fallback_linker()? {
        cmd.env("CARGO_TARGET_THUMBV7M_NONE_EABI_LINKER", linker);
    }
    cmd.current_dir(project_root().join("firmware"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--target", TARGET]);
    for bin in bins {
        cmd.args(["--bin", bin]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd::run(&mut cmd).map_err(|e| format!("firmware build: {e}"))?;
    let dir = target_dir.join(TARGET).join("release");
    Ok(bins.iter().map(|bin| dir.join(bin)).collect())
}

/// `None` when `rust-lld` on `PATH` works (the firmware's cargo config names it),
/// else another `rust-lld` to link with: rustc-web's is a link to `lld-22`, which
/// Debian ships in a package of its own, and rustup toolchains carry one too.
fn fallback_linker() -> Result<Option<PathBuf>, String> {
    // `is_file` follows the link, so a dangling `rust-lld` does not count.
    if find_tool("rust-lld").is_some() {
        return Ok(None);
    }
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")));
    let toolchains = rustup_home.map(|home| home.join("toolchains"));
    let found = toolchains
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|toolchain| std::fs::read_dir(toolchain.path().join("lib/rustlib")).ok())
        .flatten()
        .flatten()
        .map(|host| host.path().join("bin/rust-lld"))
        .find(|lld| lld.is_file());
    match found {
        Some(lld) => {
            println!(
                "qemu: rust-lld on PATH is missing or dangling; linking with {}",
                lld.display()
            );
            Ok(Some(lld))
        }
        None => Err(
            "rust-lld (the linker) is missing or dangling: `apt-get install rust-web-llvm lld-22`"
                .to_string(),
        ),
    }
}

/// How one QEMU run ended.
struct QemuRun {
    /// `None` when the run was killed at the timeout.
    status: Option<ExitStatus>,
    timeout: Duration,
}

impl QemuRun {
    fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    fn passed(&self) -> bool {
        self.exit_code() == Some(0)
    }

    fn verdict(&self) -> String {
        match (self.status, self.exit_code()) {
            (None, _) => format!("timed out after {} s", self.timeout.as_secs()),
            (Some(_), Some(0)) => "passed".to_string(),
            (Some(_), Some(code)) if code == EXIT_CHECK_FAILED => {
                format!("failed a check (exit status {code})")
            }
            (Some(_), Some(code)) => format!("ended with exit status {code} (panic or fault)"),
            (Some(status), None) => format!("was killed ({status})"),
        }
    }
}

/// Runs `elf` in QEMU with its semihosting output decoded by `defmt-print`,
/// killing QEMU after `timeout`.
fn run_qemu(
    qemu: &Path,
    defmt_print: &Path,
    elf: &Path,
    fault: Option<&str>,
    timeout: Duration,
) -> Result<QemuRun, String> {
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-cpu",
        "cortex-m3",
        "-machine",
        "lm3s6965evb",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
    ])
    .arg(elf);
    if let Some(fault) = fault {
        // Reaches the firmware as its semihosting command line.
        cmd.args(["-append", &format!("fault={fault}")]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut qemu_child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let (Some(log), Some(stderr)) = (qemu_child.stdout.take(), qemu_child.stderr.take()) else {
        kill(&mut qemu_child);
        return Err("QEMU's output pipes were not created".to_string());
    };
    let decoder = Command::new(defmt_print)
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::from(log))
        .spawn();
    let mut decoder = match decoder {
        Ok(child) => child,
        Err(e) => {
            kill(&mut qemu_child);
            return Err(format!("cannot start {}: {e}", defmt_print.display()));
        }
    };
    let stderr = std::thread::spawn(move || forward_stderr(stderr));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match qemu_child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                eprintln!(
                    "qemu: no verdict after {} s, killing QEMU",
                    timeout.as_secs()
                );
                kill(&mut qemu_child);
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill(&mut qemu_child);
                kill(&mut decoder);
                return Err(format!("cannot wait for QEMU: {e}"));
            }
        }
    };
    // QEMU is gone, so the decoder reads end of file and exits.
    let _ = decoder.wait();
    let _ = stderr.join();
    Ok(QemuRun { status, timeout })
}

/// Kills a child this task started and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Passes QEMU's diagnostics on, minus the lm3s6965 model's notice about its
/// unused general-purpose timers.
fn forward_stderr(stderr: impl Read) {
    for line in BufReader::new(stderr).lines() {
        match line {
            Ok(line) if line.contains("Timer with period zero") => {}
            Ok(line) => eprintln!("qemu: {line}"),
            Err(_) => break,
        }
    }
}

/// Flash and RAM of an image, from the sizes of its allocated sections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Footprint {
    /// Read-only sections: vector table, code, constants.
    text: u64,
    /// Initialised data: in RAM, with its initial image in flash.
    data: u64,
    /// Zero-initialised and uninitialised data: RAM only.
    bss: u64,
}

impl Footprint {
    fn flash(&self) -> u64 {
        self.text + self.data
    }

    fn ram(&self) -> u64 {
        self.data + self.bss
    }

    /// Sums the allocated sections of a little-endian ELF32 file.
    fn of_elf(elf: &[u8]) -> Result<Self, String> {
        const SHT_NOBITS: u32 = 8;
        const SHF_WRITE: u32 = 0x1;
        const SHF_ALLOC: u32 = 0x2;
        if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file".to_string());
        }
        if elf.get(4..6) != Some([1u8, 1].as_slice()) {
            return Err("not a little-endian 32-bit ELF file".to_string());
        }
        let u16_at = |at: usize| -> Result<u32, String> {
            elf.get(at..at + 2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or_else(|| format!("ELF truncated at offset {at}"))
        };
        let u32_at = |at: usize| -> Result<u32, String> {
            elf.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("ELF truncated at offset {at}"))
        };
        let sh_off = u32_at(0x20)? as usize;
        let sh_entsize = u16_at(0x2e)? as usize;
        let sh_num = u16_at(0x30)? as usize;
        if sh_entsize < 40 {
            return Err(format!("section header entries of {sh_entsize} bytes"));
        }
        let mut footprint = Footprint::default();
        for i in 0..sh_num {
            let header = sh_off + i * sh_entsize;
            let kind = u32_at(header + 4)?;
            let flags = u32_at(header + 8)?;
            let size = u64::from(u32_at(header + 20)?);
            if flags & SHF_ALLOC == 0 {
                continue;
            }
            if kind == SHT_NOBITS {
                footprint.bss += size;
            } else if flags & SHF_WRITE != 0 {
                footprint.data += size;
            } else {
                footprint.text += size;
            }
        }
        Ok(footprint)
    }
}

#[cfg(test)]
mod tests {
    use super::Footprint;

    /// A little-endian ELF32 image with the given (type, flags, size) sections.
    fn elf(sections: &[(u32, u32, u32)]) -> Vec<u8> {
        let mut out = vec![0u8; 52];
        out[..6].copy_from_slice(b"\x7fELF\x01\x01");
        out[0x20..0x24].copy_from_slice(&52u32.to_le_bytes());
        out[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        out[0x30..0x32].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        for &(kind, flags, size) in sections {
            let mut header = [0u8; 40];
            header[4..8].copy_from_slice(&kind.to_le_bytes());
            header[8..12].copy_from_slice(&flags.to_le_bytes());
            header[20..24].copy_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&header);
        }
        out
    }

    #[test]
    fn sections_are_sorted_into_flash_and_ram() {
        let image = elf(&[
            (0, 0, 0),        // null section
            (1, 0x2, 1024),   // .vector_table
            (1, 0x6, 900),    // .text
            (1, 0x3, 640),    // .data
            (8, 0x3, 100),    // .bss
            (1, 0x0, 50_000), // .debug_info: not loaded
        ]);
        let f = Footprint::of_elf(&image).unwrap();
        assert_eq!((f.text, f.data, f.bss), (1924, 640, 100));
        assert_eq!((f.flash(), f.ram()), (2564, 740));
    }

    #[test]
    fn truncated_or_foreign_files_are_errors() {
        assert!(Footprint::of_elf(b"\x7fELF").is_err());
        assert!(Footprint::of_elf(b"MZ\x90\x00").is_err());
        let mut image = elf(&[(1, 0x2, 10)]);
        image.truncate(60);
        assert!(Footprint::of_elf(&image).is_err());
    }
}
