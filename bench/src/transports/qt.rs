//! Qt itself: `QLocalServer`/`QLocalSocket` in Qt's event loop, run by a small C++
//! program of ours (`bench/qt/ringlink-qt-peer.cpp`) that carries out Qt's own
//! benchmark workload: the server in a `QThread` with its event loop, the client
//! sockets in the main thread's, as in Qt's `tst_qlocalsocket`. The harness builds it
//! with `g++` against Debian's `qt6-base-dev` (`pkg-config Qt6Network`) on first use;
//! where that cannot be done, the rows say why they were not run.
//!
//! The program runs both sides, so [`Transport::serve`] only says it is ready and the
//! client spawns the program, which reports its own timing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::names::{Driver, Name};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, Transport,
};

/// The C++ source, built into the harness so the program matches it.
const SOURCE: &str = include_str!("../../qt/ringlink-qt-peer.cpp");

/// Qt's `QLocalSocket`.
pub struct Qt;

/// The most connections a Qt row runs.
const MOST_CONNECTIONS: usize = 1000;

/// Builds the program next to this executable (once per run; again only when the
/// source changed). The error says why Qt's rows cannot run.
pub fn program() -> Result<&'static Path, &'static str> {
    static PROGRAM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(build)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

fn build() -> Result<PathBuf, String> {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "Qt6Network"])
        .output()
        .map_err(|e| format!("pkg-config: {e} (install pkg-config and qt6-base-dev)"))?;
    if !flags.status.success() {
        return Err("Qt6Network not found by pkg-config (install qt6-base-dev)".into());
    }
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
    let dir = exe
        .parent()
        .unwrap_or(Path::new("."))
        .join("ringlink-qt-peer");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let source = dir.join("ringlink-qt-peer.cpp");
    let program = dir.join("ringlink-qt-peer");
    if program.exists() && std::fs::read_to_string(&source).ok().as_deref() == Some(SOURCE) {
        return Ok(program);
    }
    std::fs::write(&source, SOURCE).map_err(|e| format!("{}: {e}", source.display()))?;
    let out = Command::new("g++")
        .args(["-O2", "-std=c++17", "-fPIC", "-o"])
        .arg(&program)
        .arg(&source)
        .args(flags.split_whitespace())
        .output()
        .map_err(|e| format!("g++: {e} (install g++)"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&program);
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "building the Qt program failed: {}",
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(program)
}

impl Transport for Qt {
    fn name(&self) -> Name {
        Name::Qt
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::QtEventLoop]
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        if connections >= crate::CHILD_CONNECTIONS {
            return Some("Qt's program runs both sides in one process".into());
        }
        if connections > MOST_CONNECTIONS {
            // Measured: 1000 connections take 20 s where 100 take 8 s, 5000 outlast 30 s.
            return Some(format!(
                "Qt's event loop polls every socket on each pass: beyond {MOST_CONNECTIONS} connections a row outlasts its limit"
            ));
        }
        program().err().map(str::to_string)
    }

    fn serve(
        &self,
        _addr: &Path,
        _plan: EchoPlan,
        _limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        // The program serves in its own thread.
        ready();
        Ok(())
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let program = program().map_err(|e| BenchError::Setup(e.into()))?;
        let mut cmd = Command::new(program);
        match plan.stop {
            Stop::RoundTrips(n) => cmd
                .arg("pingPong")
                .arg(addr)
                .arg(plan.connections.to_string())
                .arg(n.to_string()),
            Stop::After(d) => cmd
                .arg("dataExchange")
                .arg(addr)
                .arg(plan.connections.to_string())
                .arg(plan.chunk.to_string())
                .arg(d.as_millis().to_string()),
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .during("starting the Qt program")?;
        loop {
            match child.try_wait().during("waiting for the Qt program")? {
                Some(_) => break,
                None if limit.expired() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(BenchError::TimedOut("running the Qt program"));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout
                .read_to_string(&mut out)
                .during("reading the Qt program")?;
        }
        parse(out.trim())
    }
}

/// `ok ELAPSED_NS RECEIVED` from the program.
fn parse(line: &str) -> Result<ClientOutcome, BenchError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        ["ok", ns, received] => match (ns.parse::<u64>(), received.parse::<u64>()) {
            (Ok(ns), Ok(received)) => Ok(ClientOutcome {
                elapsed: Duration::from_nanos(ns),
                received,
            }),
            _ => Err(BenchError::Protocol(format!("Qt program said {line:?}"))),
        },
        _ => Err(BenchError::Setup(format!(
            "Qt program: {}",
            line.strip_prefix("error ").unwrap_or(line)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_output_is_parsed() {
        let o = parse("ok 1500 42").unwrap();
        assert_eq!((o.elapsed, o.received), (Duration::from_nanos(1500), 42));
        assert!(
            parse("error cannot listen")
                .unwrap_err()
                .to_string()
                .contains("cannot listen")
        );
        assert!(parse("ok x 1").is_err());
    }
}
