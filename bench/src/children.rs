//! The child-process harness: this binary, re-executed with the hidden `serve` and
//! `client` subcommands. Every socket row runs its server in a `serve` child and its
//! client in this process ([`with_server_child`]), so bytes cross a real process
//! boundary as they do for users; the 10,000-connection pingPong row runs both sides in
//! children ([`in_children`]), so each reports its own peak RSS from a clean start. A
//! child prints `ready` (server), then `ok {json}` or `error ...`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::machine;
use crate::measure::{Pinned, Pinning};
use crate::names::{Driver, Name};
use crate::plan::Timing;
use crate::report::PerConnection;
use crate::transports;
use crate::workload::{self, BenchError, ClientOutcome, ClientPlan, Limit, Stop, Transport};

/// What a child process is told.
#[derive(clap::Args, Clone)]
pub struct ChildArgs {
    #[arg(long)]
    transport: String,
    #[arg(long)]
    addr: PathBuf,
    #[arg(long)]
    connections: usize,
    /// Bytes per chunk (the server echoes in chunks of this size).
    #[arg(long, default_value_t = 1)]
    chunk: usize,
    #[arg(long)]
    round_trips: u64,
    #[arg(long)]
    model: String,
    /// Give up after this many seconds.
    #[arg(long)]
    seconds: u64,
    /// Run on this CPU only (`--pin`).
    #[arg(long)]
    cpu: Option<usize>,
}

/// Peak memory of the two child processes.
pub struct ChildMemory {
    client_base_kib: u64,
    /// The client's peak RSS, KiB.
    pub client_peak_kib: u64,
    server_base_kib: u64,
    /// The server's peak RSS, KiB.
    pub server_peak_kib: u64,
}

impl ChildMemory {
    /// Peak growth per connection on each side.
    pub fn per_connection(&self, connections: usize) -> PerConnection {
        let per = |peak: u64, base: u64| peak.saturating_sub(base) as f64 / connections as f64;
        PerConnection {
            client_kib: per(self.client_peak_kib, self.client_base_kib),
            server_kib: per(self.server_peak_kib, self.server_base_kib),
        }
    }
}

/// A child process whose stdout lines arrive on a channel; killed when dropped.
struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildProcess {
    fn spawn(role: &str, args: &ChildArgs) -> Result<ChildProcess, BenchError> {
        let exe =
            std::env::current_exe().map_err(|e| BenchError::Io("finding this executable", e))?;
        let mut command = Command::new(exe);
        command.arg(role);
        if let Some(cpu) = args.cpu {
            command.arg("--cpu").arg(cpu.to_string());
        }
        let mut child = command
            .arg("--transport")
            .arg(&args.transport)
            .arg("--addr")
            .arg(&args.addr)
            .arg("--connections")
            .arg(args.connections.to_string())
            .arg("--chunk")
            .arg(args.chunk.to_string())
            .arg("--round-trips")
            .arg(args.round_trips.to_string())
            .arg("--model")
            .arg(&args.model)
            .arg("--seconds")
            .arg(args.seconds.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::Io("spawning a child process", e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup("child without stdout".into()))?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ChildProcess { child, lines })
    }

    /// A `serve` child that has said `ready` (its clients may connect), or why not.
    fn serving(args: &ChildArgs, deadline: Instant) -> Result<ChildProcess, BenchError> {
        let server = ChildProcess::spawn("serve", args)?;
        let first = server.line(deadline)?;
        if first != "ready" {
            return Err(BenchError::Setup(format!(
                "server child: {}",
                first.strip_prefix("error ").unwrap_or(&first)
            )));
        }
        Ok(server)
    }

    /// The next line, or an error when the child exits or the deadline passes.
    fn line(&self, deadline: Instant) -> Result<String, BenchError> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => {
                    BenchError::TimedOut("waiting for a child process")
                }
                mpsc::RecvTimeoutError::Disconnected => {
                    BenchError::Setup("a child process exited early".into())
                }
            })
    }

    /// The `ok {json}` result line.
    fn result(&self, deadline: Instant) -> Result<serde_json::Value, BenchError> {
        let line = self.line(deadline)?;
        if let Some(json) = line.strip_prefix("ok ") {
            serde_json::from_str(json)
                .map_err(|e| BenchError::Protocol(format!("child said {line:?}: {e}")))
        } else {
            Err(BenchError::Setup(format!(
                "child: {}",
                line.strip_prefix("error ").unwrap_or(&line)
            )))
        }
    }
}

impl ChildProcess {
    fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_u64(v: &serde_json::Value, key: &str) -> Result<u64, BenchError> {
    v[key]
        .as_u64()
        .ok_or_else(|| BenchError::Protocol(format!("child result without {key}")))
}

/// Server and client each in a child process (clean peak-RSS figures), each on its
/// CPU when pinned.
pub fn in_children(
    transport: &'static dyn Transport,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
    pin: Option<Pinning>,
) -> Result<(ClientOutcome, ChildMemory), BenchError> {
    let Stop::RoundTrips(round_trips) = plan.stop else {
        return Err(BenchError::Setup(
            "only pingPong runs in child processes".into(),
        ));
    };
    let deadline = Instant::now() + timing.row_limit + Duration::from_secs(5);
    let args = ChildArgs {
        transport: transport.name().to_string(),
        addr: addr.to_path_buf(),
        connections: plan.connections,
        chunk: 1,
        round_trips,
        model: plan.model.to_string(),
        seconds: timing.row_limit.as_secs(),
        cpu: pin.map(|p| p.server),
    };
    let mut server = ChildProcess::serving(&args, deadline)?;
    let args = ChildArgs {
        cpu: pin.map(|p| p.client),
        ..args
    };
    let client = ChildProcess::spawn("client", &args)?;
    let client_result = client.result(deadline);
    let server_result = match &client_result {
        Ok(_) => server.result(deadline),
        Err(_) => {
            // Its clients are gone: nothing more to learn from the server.
            server.kill();
            Err(BenchError::Cancelled)
        }
    };
    let _ = std::fs::remove_file(addr);
    let c = client_result?;
    let s = server_result?;
    let outcome = ClientOutcome {
        elapsed: Duration::from_nanos(json_u64(&c, "elapsed_ns")?),
        received: json_u64(&c, "received")?,
    };
    let memory = ChildMemory {
        client_base_kib: json_u64(&c, "base_kib")?,
        client_peak_kib: json_u64(&c, "peak_kib")?,
        server_base_kib: json_u64(&s, "base_kib")?,
        server_peak_kib: json_u64(&s, "peak_kib")?,
    };
    Ok((outcome, memory))
}

/// The server in a child process, the client on this thread (pinned to its CPU when
/// `pin` says so). The child is reaped before this returns, so its CPU time is in
/// this process's `RUSAGE_CHILDREN`.
pub fn with_server_child(
    transport: &'static dyn Transport,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
    pin: Option<Pinning>,
) -> Result<ClientOutcome, BenchError> {
    let deadline = Instant::now() + timing.row_limit;
    let args = ChildArgs {
        transport: transport.name().to_string(),
        addr: addr.to_path_buf(),
        connections: plan.connections,
        chunk: plan.chunk,
        round_trips: 0,
        model: plan.model.to_string(),
        seconds: timing.row_limit.as_secs() + 2,
        cpu: pin.map(|p| p.server),
    };
    let mut server = ChildProcess::serving(&args, deadline)?;
    let cancel = AtomicBool::new(false);
    let outcome = Pinned::to(pin.map(|p| p.client)).and_then(|_pinned| {
        transport.run_client(
            addr,
            plan,
            Limit {
                deadline,
                cancel: &cancel,
            },
        )
    });
    let served = match &outcome {
        Ok(_) => server.result(deadline + Duration::from_secs(2)).map(drop),
        Err(_) => {
            // The client's error explains the row; its server has nothing to add.
            server.kill();
            Ok(())
        }
    };
    // Reap the child now: its CPU time counts for the row.
    drop(server);
    let _ = std::fs::remove_file(addr);
    let outcome = outcome?;
    served?;
    Ok(outcome)
}

fn child_setup(args: &ChildArgs) -> Result<(&'static dyn Transport, Driver, Instant), String> {
    let transport = Name::parse(&args.transport)
        .and_then(transports::by_name)
        .ok_or_else(|| format!("unknown transport {}", args.transport))?;
    let model = transport
        .models()
        .iter()
        .copied()
        .find(|m| m.as_str() == args.model)
        .ok_or_else(|| format!("{} has no model {:?}", args.transport, args.model))?;
    if let Some(cpu) = args.cpu {
        machine::set_affinity(&[cpu]).map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
    }
    Ok((
        transport,
        model,
        Instant::now() + Duration::from_secs(args.seconds),
    ))
}

/// The `serve` role.
pub fn child_serve(args: &ChildArgs) -> i32 {
    let result = child_setup(args).and_then(|(transport, model, deadline)| {
        let cancel = AtomicBool::new(false);
        let plan = workload::EchoPlan {
            connections: args.connections,
            chunk: args.chunk,
            model,
        };
        let mut base = 0;
        transport
            .serve(
                &args.addr,
                plan,
                Limit {
                    deadline,
                    cancel: &cancel,
                },
                &mut || {
                    base = machine::status_kib("VmRSS").unwrap_or(0);
                    println!("ready");
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(serde_json::json!({
            "base_kib": base,
            "peak_kib": machine::status_kib("VmHWM").unwrap_or(0),
        }))
    });
    report_child(result)
}

/// The `client` role.
pub fn child_client(args: &ChildArgs) -> i32 {
    let result = child_setup(args).and_then(|(transport, model, deadline)| {
        let cancel = AtomicBool::new(false);
        let plan = ClientPlan {
            connections: args.connections,
            chunk: 1,
            stop: Stop::RoundTrips(args.round_trips),
            model,
        };
        let base = machine::status_kib("VmRSS").unwrap_or(0);
        let outcome = transport
            .run_client(
                &args.addr,
                plan,
                Limit {
                    deadline,
                    cancel: &cancel,
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(serde_json::json!({
            "elapsed_ns": outcome.elapsed.as_nanos() as u64,
            "received": outcome.received,
            "base_kib": base,
            "peak_kib": machine::status_kib("VmHWM").unwrap_or(0),
        }))
    });
    report_child(result)
}

fn report_child(result: Result<serde_json::Value, String>) -> i32 {
    match result {
        Ok(v) => {
            println!("ok {v}");
            0
        }
        Err(e) => {
            println!("error {e}");
            1
        }
    }
}
