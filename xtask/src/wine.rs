//! `cargo xtask wine`: builds ringlink for Windows and runs its tests under Wine.
//!
//! The build is `x86_64-pc-windows-gnu` with Debian's `rustc-web` (the standard
//! library built from source with `-Zbuild-std=std,panic_abort`) and mingw-w64 as
//! linker, in its own target directory (`target/windows`). The linker is passed as an
//! environment variable, never as a committed cargo config, so host builds are untouched.
//!
//! Wine 8 has no `bcryptprimitives.dll`, whose `ProcessPrng` every Rust std since 1.78
//! imports; `xtask/shim/bcryptprimitives.c` is a one-function DLL that forwards it to
//! `RtlGenRandom`, built here with mingw and copied into a private Wine prefix
//! (`target/wine-prefix`). Every Wine process runs with a timeout, and `wineserver -k`
//! ends whatever is left, so nothing can hang CI.
//!
//! Steps: the `ringlink` CLI and the test binaries of `ringlink-windows` and
//! `ringlink-host` (unit and cross-process tests, `tokio` feature on) are built and run,
//! then their doc tests (cargo runs them with Wine as the target runner), then the CLI
//! as a user would run it: `ringlink.exe listen NAME --echo`,
//! `echo hi | ringlink.exe connect NAME`, `ringlink.exe probe NAME`. The whole workspace is built for Windows by
//! `cargo xtask cross` ([`build`]).
//!
//! Windows builds keep only line tables as debug info: full debug info makes mingw's
//! linker several times slower, and backtraces still name files and lines.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cmd, cross, project_root, target_dir};

/// The Windows target triple.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// The mingw-w64 C compiler, also the linker of the Windows target.
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Debian's `wine64` package puts the loader here, not on `PATH`.
const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";

/// Longest a fresh prefix may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one test binary may run.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);
/// Tests Wine cannot run, left out by name (`--skip`) and listed in the output; each is in
/// README's "Checked on Windows proper only" table.
const NOT_UNDER_WINE: &[(&str, &str)] = &[(
    "name::tests::live_names_are_listed",
    "Wine cannot enumerate \\\\.\\pipe\\ (ERROR_BAD_DEV_TYPE)",
)];
/// Longest one CLI command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the doc tests may take, building included.
const DOC_TIMEOUT: Duration = Duration::from_secs(240);

const USAGE: &str = "usage: cargo xtask wine [--no-cli] [TEST_FILTER]";

/// Runs the task: `cargo xtask wine [--no-cli] [TEST_FILTER]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut filter = None;
    let mut cli = true;
    for arg in args {
        match arg.as_str() {
            "--no-cli" => cli = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            a if a.starts_with('-') || filter.is_some() => return Err(USAGE.to_string()),
            a => filter = Some(a.to_string()),
        }
    }
    check_tools()?;
    let started = Instant::now();
    cmd::run(windows_cargo("build").args(["--package", "ringlink-cli", "--bin", "ringlink"]))?;
    let tests = build_tests()?;
    let built = started.elapsed();
    let shim = build_shim()?;
    let boot_start = Instant::now();
    let wine = Wine::prepare(&shim)?;
    let booted = boot_start.elapsed();
    let run_start = Instant::now();
    let result = run_tests(&wine, &tests, filter.as_deref()).and_then(|()| {
        if filter.is_some() {
            return Ok(());
        }
        doc_tests(&wine)?;
        if cli { cli_smoke(&wine) } else { Ok(()) }
    });
    drop(wine);
    println!(
        "wine: build {:.1}s, prefix {:.1}s, tests {:.1}s",
        built.as_secs_f64(),
        booted.as_secs_f64(),
        run_start.elapsed().as_secs_f64()
    );
    result
}

/// Builds the workspace for Windows (libraries, the `ringlink` CLI, the test crates, the
/// benchmark harness). `cargo xtask cross` calls this.
pub fn build() -> Result<(), String> {
    check_tools()?;
    cmd::run(windows_cargo("build").arg("--workspace"))
}

/// Lints the whole workspace for Windows, as the clippy step does for Linux: the
/// `#[cfg(windows)]` code (the named pipes, Windows shared memory, the Windows
/// bench) is linted only here. cargo-clippy runs `cargo check` itself, so
/// `-Zbuild-std` goes after the subcommand too, where that inner cargo reads it.
pub fn clippy() -> Result<(), String> {
    check_tools()?;
    cmd::run(windows_cargo("clippy").args([
        "-Zbuild-std=std,panic_abort",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// The Windows target directory, beside the host's.
fn windows_target_dir() -> PathBuf {
    target_dir().join("windows")
}

/// Where the Windows binaries of the dev profile end up.
pub fn windows_bin_dir() -> PathBuf {
    windows_target_dir().join(WINDOWS_TARGET).join("debug")
}

/// Where the Windows binaries of the release profile end up.
pub fn windows_release_dir() -> PathBuf {
    windows_target_dir().join(WINDOWS_TARGET).join("release")
}

/// Debian's cargo running `subcommand` for the Windows target; add its arguments.
pub fn windows_cargo(subcommand: &str) -> Command {
    let mut cargo = cross::debian_cargo("std,panic_abort");
    cargo
        .env("CARGO_TARGET_DIR", windows_target_dir())
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", MINGW_GCC)
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env("CARGO_PROFILE_TEST_DEBUG", "line-tables-only")
        .args([subcommand, "--target", WINDOWS_TARGET]);
    cargo
}

/// Fails with a hint when a tool is missing.
fn check_tools() -> Result<(), String> {
    let missing: Vec<&str> = [cross::DEBIAN_CARGO, WINE, WINESERVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .chain((!cmd::succeeds(Command::new(MINGW_GCC).arg("--version"))).then_some(MINGW_GCC))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {}: run `cargo xtask setup` (packages cargo-web, rust-web-src, gcc-mingw-w64-x86-64, wine64)",
            missing.join(", ")
        ))
    }
}

/// The packages whose tests run under Wine: the named-pipe adapter, and the shared half
/// of the host adapters (its Win32 error-code table, and the suite the adapter runs).
const TESTED_PACKAGES: &[&str] = &["ringlink-windows", "ringlink-host"];

/// The benchmark harness's own tests run under Wine too (a binary crate: no doc
/// tests): its Windows transports, pipe names, process times and idle pairs.
const TESTED_BINARIES: &[&str] = &["ringlink-bench"];

/// Their async halves are tested too.
const TESTED_FEATURES: &str = "ringlink-windows/tokio,ringlink-host/tokio";

/// Builds the test binaries and returns their paths.
fn build_tests() -> Result<Vec<PathBuf>, String> {
    let mut build = windows_cargo("test");
    build
        .args(["--no-run"])
        .args(
            TESTED_PACKAGES
                .iter()
                .chain(TESTED_BINARIES)
                .flat_map(|p| ["--package", p]),
        )
        .args([
            "--features",
            TESTED_FEATURES,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let line = cmd::display(&build);
    println!("$ {line}");
    let out = build
        .output()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{line}` failed ({})", out.status));
    }
    let tests = test_executables(&String::from_utf8_lossy(&out.stdout));
    if tests.is_empty() {
        return Err("the Windows build produced no test binaries".to_string());
    }
    Ok(tests)
}

/// Whether an artifact line's `profile` object says it was built as a test (a binary's
/// `target` object has a `"test":true` of its own: it is tested by default).
fn built_as_test(line: &str) -> bool {
    let Some(start) = line.find(r#""profile":{"#) else {
        return false;
    };
    let profile = &line[start..];
    let profile = &profile[..profile.find('}').unwrap_or(profile.len())];
    profile.contains(r#""test":true"#)
}

/// The test executables named in cargo's JSON messages.
fn test_executables(json: &str) -> Vec<PathBuf> {
    json.lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#) && built_as_test(l))
        .filter_map(|l| {
            let start = l.find(r#""executable":""#)? + r#""executable":""#.len();
            let end = start + l[start..].find('"')?;
            Some(PathBuf::from(&l[start..end]))
        })
        .collect()
}

/// Builds the `ProcessPrng` shim DLL (when its sources changed) and returns its path.
fn build_shim() -> Result<PathBuf, String> {
    let src = project_root().join("xtask/shim");
    let c = src.join("bcryptprimitives.c");
    let def = src.join("bcryptprimitives.def");
    let dir = windows_target_dir().join("shim");
    let dll = dir.join("bcryptprimitives.dll");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (modified(&dll), modified(&c), modified(&def)) {
        (Some(out), Some(a), Some(b)) => out >= a && out >= b,
        _ => false,
    };
    if !fresh {
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        cmd::run(
            Command::new(MINGW_GCC)
                .args([
                    "-shared",
                    "-O2",
                    "-s",
                    "-nostdlib",
                    "-Wl,--entry,DllMain",
                    "-o",
                ])
                .arg(&dll)
                .arg(&c)
                .arg(&def)
                .args(["-lkernel32", "-ladvapi32"]),
        )?;
    }
    Ok(dll)
}

/// A private Wine prefix with the shim installed; `wineserver -k` when dropped.
pub struct Wine {
    prefix: PathBuf,
}

impl Wine {
    /// Checks the tools, builds the shim and prepares the prefix: what a task needs
    /// before it runs Windows binaries.
    pub fn start() -> Result<Wine, String> {
        check_tools()?;
        Wine::prepare(&build_shim()?)
    }

    fn prepare(shim: &Path) -> Result<Wine, String> {
        let wine = Wine {
            prefix: target_dir().join("wine-prefix"),
        };
        if !wine.prefix.join("system.reg").exists() {
            println!("wine: creating the prefix {}", wine.prefix.display());
            let mut boot = wine.command(Path::new("wineboot"));
            boot.arg("--init").env("WINEARCH", "win64");
            wine.run(&mut boot, BOOT_TIMEOUT, "wineboot")?;
        }
        let system32 = wine.prefix.join("drive_c/windows/system32");
        fs::copy(shim, system32.join("bcryptprimitives.dll"))
            .map_err(|e| format!("cannot install the shim into {}: {e}", system32.display()))?;
        Ok(wine)
    }

    /// `wine64 <program>` in this prefix, quiet, without Mono/Gecko installers, run from
    /// the directory of the Windows binaries.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(WINE);
        cmd.arg(program).current_dir(project_root());
        self.environment(&mut cmd);
        cmd
    }

    /// The environment every Wine process of this prefix gets.
    fn environment(&self, cmd: &mut Command) {
        cmd.env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=;winemenubuilder.exe=d")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    /// Runs `cmd` with inherited output; kills it after `timeout`.
    pub fn run(&self, cmd: &mut Command, timeout: Duration, what: &str) -> Result<(), String> {
        println!("$ {}", cmd::display(cmd));
        let mut child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        wait_with_timeout(&mut child, timeout, what)
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        // Ends every process left in the prefix (and the server itself).
        let _ = Command::new(WINESERVER)
            .arg("-k")
            .env("WINEPREFIX", &self.prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits for `child`, killing it after `timeout`; an error unless it exits successfully.
fn wait_with_timeout(child: &mut Child, timeout: Duration, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{what} failed ({status})")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what} timed out after {}s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait for {what}: {e}")),
        }
    }
}

fn run_tests(wine: &Wine, tests: &[PathBuf], filter: Option<&str>) -> Result<(), String> {
    for (skipped, why) in NOT_UNDER_WINE {
        println!("wine: not run under Wine (checked on Windows proper only): {skipped}: {why}");
    }
    for exe in tests {
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut test = wine.command(exe);
        if let Some(filter) = filter {
            test.arg(filter);
        }
        for (skipped, _) in NOT_UNDER_WINE {
            test.args(["--skip", skipped]);
        }
        wine.run(&mut test, TEST_TIMEOUT, &name)?;
    }
    Ok(())
}

/// The doc tests of [`TESTED_PACKAGES`], run by cargo with Wine as the target runner.
fn doc_tests(wine: &Wine) -> Result<(), String> {
    let mut doc = windows_cargo("test");
    doc.args(TESTED_PACKAGES.iter().flat_map(|p| ["--package", p]))
        .args(["--features", TESTED_FEATURES, "--doc"])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE);
    wine.environment(&mut doc);
    wine.run(&mut doc, DOC_TIMEOUT, "the doc tests")
}

/// The CLI as a newcomer uses it: a server in one "terminal", a client in another.
fn cli_smoke(wine: &Wine) -> Result<(), String> {
    let exe = windows_bin_dir().join("ringlink.exe");
    let name = format!("ringlink-xtask-wine-{}", std::process::id());
    let mut listen = wine.command(&exe);
    listen
        .args(["listen", &name, "--echo"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    println!("$ {} &", cmd::display(&listen));
    let mut server = listen
        .spawn()
        .map_err(|e| format!("cannot start ringlink.exe listen: {e}"))?;
    let result = cli_client(wine, &exe, &name);
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn cli_client(wine: &Wine, exe: &Path, name: &str) -> Result<(), String> {
    let mut connect = wine.command(exe);
    connect
        .args(["connect", name, "--wait", "--timeout", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    println!("$ echo hi | {}", cmd::display(&connect));
    let mut client = connect
        .spawn()
        .map_err(|e| format!("cannot start ringlink.exe connect: {e}"))?;
    if let Some(mut stdin) = client.stdin.take() {
        stdin
            .write_all(b"hi\n")
            .map_err(|e| format!("cannot write to ringlink.exe connect: {e}"))?;
    }
    let mut stdout = client.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        out
    });
    wait_with_timeout(&mut client, CLI_TIMEOUT, "ringlink.exe connect")?;
    let out = reader.join().unwrap_or_default();
    // The Windows CLI may write \r\n if it goes through a text-mode console layer.
    let text = String::from_utf8_lossy(&out).replace("\r\n", "\n");
    if text != "hi\n" {
        return Err(format!(
            "ringlink.exe connect printed {text:?}, expected \"hi\\n\""
        ));
    }
    println!("wine: ringlink.exe connect echoed {text:?}");
    let mut probe = wine.command(exe);
    probe.args(["probe", name]).stdout(Stdio::inherit());
    wine.run(&mut probe, CLI_TIMEOUT, "ringlink.exe probe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executables_in_cargo_json() {
        let json = concat!(
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":"/t/a-1.exe","fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"test":true},"profile":{"opt_level":"0","test":false},"executable":"/t/bin.exe"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","profile":{"test":true},"executable":null}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(test_executables(json), vec![PathBuf::from("/t/a-1.exe")]);
    }
}
