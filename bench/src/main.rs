//! ringlink's benchmark harness: Qt's `QLocalSocket` workload (pingPong, dataExchange)
//! over every transport and peer, plus the in-process core rings, in one run, so every
//! figure reads as a ratio on one machine. Run it with `cargo xtask bench [--quick]`.
//!
//! The 10,000-connection pingPong runs its server and its client in child processes
//! (this binary, re-executed with the hidden `serve` / `client` subcommands), so each
//! reports its own peak RSS from a clean start.

mod core_rings;
mod idle;
mod machine;
mod readiness;
mod report;
mod threaded;
mod transports;
mod workload;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use machine::Machine;
use report::{CORE, DATA_EXCHANGE, IDLE, Measurement, PING_PONG, PerConnection};
use workload::{
    BenchError, ClientOutcome, ClientPlan, Limit, PING_PONG_ROUND_TRIPS, Stop, Transport,
};

/// Connections of the in-process pingPong rows (Qt's, plus 1).
const PING_PONG_CONNECTIONS: [usize; 6] = [1, 10, 50, 100, 1000, 5000];
/// Connections of the pingPong row whose server runs in a child process.
pub(crate) const CHILD_CONNECTIONS: usize = 10_000;
/// dataExchange connections and chunks (Qt's).
const EXCHANGE_CONNECTIONS: [usize; 3] = [1, 5, 10];
const EXCHANGE_CHUNKS: [usize; 4] = [100, 1000, 10_000, 100_000];

#[derive(Parser)]
#[command(
    name = "ringlink-bench",
    about = "Qt's QLocalSocket benchmark over ringlink and its peers"
)]
struct Cli {
    /// Short run: dataExchange 0.3 s per row, core 0.15 s per row (about two minutes in all).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/ringlink-bench/results.json")]
    json: PathBuf,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "target/ringlink-bench/results.svg")]
    svg: PathBuf,
    /// Only these cases (comma-separated: pingPong, dataExchange, core, idle).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// Only these transports (comma-separated names; the baselines std and rtrb are
    /// always kept). `std-epoll` is measured only when named here.
    #[arg(long, value_delimiter = ',')]
    transports: Vec<String>,
    /// Only rows with these connection counts (comma-separated; for profiling one row).
    #[arg(long, value_delimiter = ',')]
    connections: Vec<usize>,
    /// Only rows with these chunk sizes (comma-separated bytes).
    #[arg(long, value_delimiter = ',')]
    chunks: Vec<usize>,
    /// Rounds over the socket rows, keeping each row's best (default: 1 with --quick, else 3).
    #[arg(long)]
    rounds: Option<usize>,
    #[command(subcommand)]
    role: Option<Role>,
}

/// Roles of a re-executed child process (not for direct use).
#[derive(Subcommand)]
enum Role {
    /// Serve echo for a parent's pingPong run; prints `ready`, then `ok {json}` or `error ...`.
    #[command(hide = true)]
    Serve(ChildArgs),
    /// Run a pingPong client against a child server; prints `ok {json}` or `error ...`.
    #[command(hide = true)]
    Client(ChildArgs),
}

#[derive(clap::Args, Clone)]
struct ChildArgs {
    #[arg(long)]
    transport: String,
    #[arg(long)]
    addr: PathBuf,
    #[arg(long)]
    connections: usize,
    #[arg(long)]
    round_trips: u64,
    #[arg(long)]
    model: String,
    /// Give up after this many seconds.
    #[arg(long)]
    seconds: u64,
}

/// Durations and bounds of a run.
#[derive(Clone, Copy)]
struct Timing {
    exchange: Duration,
    core: Duration,
    /// Bound of one socket row.
    row_limit: Duration,
    /// Rounds over the socket rows.
    rounds: usize,
    /// Runs of each core row (the best counts).
    core_runs: usize,
}

impl Timing {
    fn new(quick: bool) -> Timing {
        if quick {
            Timing {
                exchange: Duration::from_millis(300),
                core: Duration::from_millis(100),
                row_limit: Duration::from_secs(30),
                rounds: 1,
                core_runs: 3,
            }
        } else {
            Timing {
                exchange: Duration::from_secs(2),
                core: Duration::from_millis(300),
                row_limit: Duration::from_secs(90),
                rounds: 3,
                core_runs: 5,
            }
        }
    }
}

/// One row to measure.
enum Job {
    Socket {
        case: &'static str,
        transport: &'static dyn Transport,
        connections: usize,
        chunk: usize,
        child: bool,
    },
    Core {
        imp: &'static str,
        chunk: usize,
    },
    Idle {
        transport: &'static str,
    },
}

impl Job {
    fn label(&self) -> String {
        match self {
            Job::Socket {
                case,
                transport,
                connections,
                chunk,
                child,
            } => format!(
                "{case} {} {connections} conns{} chunk {chunk}",
                transport.name(),
                if *child { " (child server)" } else { "" }
            ),
            Job::Core { imp, chunk } => format!("core {imp} chunk {chunk}"),
            Job::Idle { transport } => format!("idle {transport}"),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = machine::raise_open_file_limit() {
        eprintln!("ringlink-bench: cannot raise the open-file limit: {e}");
    }
    let code = match &cli.role {
        Some(Role::Serve(args)) => child_serve(args),
        Some(Role::Client(args)) => child_client(args),
        None => run(&cli),
    };
    std::process::exit(code);
}

fn plan_jobs(cli: &Cli) -> Vec<Job> {
    let wants_case =
        |c: &str| cli.cases.is_empty() || cli.cases.iter().any(|x| x.eq_ignore_ascii_case(c));
    let asked = |name: &str| cli.transports.iter().any(|x| x == name);
    let chosen: Vec<&'static dyn Transport> = transports::all()
        .into_iter()
        .filter(|t| t.name() == "std" || cli.transports.is_empty() || asked(t.name()))
        .chain(transports::extras().into_iter().filter(|t| asked(t.name())))
        .collect();
    let mut jobs = Vec::new();
    if wants_case(PING_PONG) {
        for connections in PING_PONG_CONNECTIONS {
            for &transport in &chosen {
                jobs.push(Job::Socket {
                    case: PING_PONG,
                    transport,
                    connections,
                    chunk: 1,
                    child: false,
                });
            }
        }
        for &transport in &chosen {
            jobs.push(Job::Socket {
                case: PING_PONG,
                transport,
                connections: CHILD_CONNECTIONS,
                chunk: 1,
                child: true,
            });
        }
    }
    if wants_case(DATA_EXCHANGE) {
        for connections in EXCHANGE_CONNECTIONS {
            for chunk in EXCHANGE_CHUNKS {
                for &transport in &chosen {
                    jobs.push(Job::Socket {
                        case: DATA_EXCHANGE,
                        transport,
                        connections,
                        chunk,
                        child: false,
                    });
                }
            }
        }
    }
    if wants_case(CORE) {
        for chunk in core_rings::CHUNKS {
            for imp in core_rings::IMPLS {
                if core_rings::applies(imp, chunk)
                    && (imp == "rtrb"
                        || cli.transports.is_empty()
                        || cli.transports.iter().any(|x| x == imp))
                {
                    jobs.push(Job::Core { imp, chunk });
                }
            }
        }
    }
    if wants_case(IDLE) {
        for &transport in idle::transports() {
            if transport == "std" || cli.transports.is_empty() || asked(transport) {
                jobs.push(Job::Idle { transport });
            }
        }
    }
    jobs.retain(|job| {
        let (connections, chunk) = match job {
            Job::Socket {
                connections, chunk, ..
            } => (*connections, *chunk),
            Job::Core { chunk, .. } => (1, *chunk),
            Job::Idle { .. } => (1, 1),
        };
        (cli.connections.is_empty() || cli.connections.contains(&connections))
            && (cli.chunks.is_empty() || cli.chunks.contains(&chunk))
    });
    jobs
}

fn run(cli: &Cli) -> i32 {
    let timing = Timing::new(cli.quick);
    let machine = Machine::probe(cli.quick);
    let jobs = plan_jobs(cli);
    let scratch = std::env::temp_dir().join(format!("ringlink-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("ringlink-bench: cannot create {}: {e}", scratch.display());
        return 2;
    }
    println!(
        "ringlink-bench{}: {} rows on {} cores ({}), load average {}",
        if cli.quick { " --quick" } else { "" },
        jobs.len(),
        machine.cores,
        machine.cpu.as_deref().unwrap_or("unknown CPU"),
        machine
            .load_average_at_start
            .map_or("?".into(), |l| format!("{l:.2}")),
    );
    println!(
        "pingPong: {PING_PONG_ROUND_TRIPS} round trips per row; dataExchange: {:?} per row; core: best of {} x {:?}",
        timing.exchange, timing.core_runs, timing.core
    );
    let rounds = cli.rounds.unwrap_or(timing.rounds).max(1);
    let socket_jobs = jobs
        .iter()
        .filter(|j| matches!(j, Job::Socket { .. }))
        .count();
    let bar = ProgressBar::new((jobs.len() + socket_jobs * (rounds - 1)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    // Every round measures every row once, so a burst of load on the machine hits
    // all transports of a row alike; each row keeps its best round.
    let mut best: Vec<Option<Measurement>> = vec![None; jobs.len()];
    for round in 0..rounds {
        for (i, job) in jobs.iter().enumerate() {
            if round > 0 && !matches!(job, Job::Socket { .. }) {
                // Core rows take their best of several runs at once; idle rows run once.
                continue;
            }
            bar.set_message(if rounds > 1 {
                format!("round {}/{rounds}: {}", round + 1, job.label())
            } else {
                job.label()
            });
            let m = match job {
                Job::Socket {
                    case,
                    transport,
                    connections,
                    chunk,
                    child,
                } => {
                    let addr = scratch.join(format!("{i}.sock"));
                    measure_socket(
                        case,
                        *transport,
                        *connections,
                        *chunk,
                        *child,
                        &addr,
                        timing,
                    )
                }
                Job::Core { imp, chunk } => measure_core(imp, *chunk, timing),
                Job::Idle { transport } => idle::measure(transport, idle::IDLE),
            };
            if let Some(e) = &m.error {
                bar.println(format!("{}: FAILED: {e}", job.label()));
            }
            best[i] = Some(match best[i].take() {
                Some(previous) => previous.better_of(m),
                None => m,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let results: Vec<Measurement> = best.into_iter().flatten().collect();
    let _ = std::fs::remove_dir_all(&scratch);

    print!("{}", report::table(&results));
    print!("{}", report::goals(&results));
    let mut code = 0;
    match report::write_json(&cli.json, &machine, &results) {
        Ok(()) => println!("JSON: {}", cli.json.display()),
        Err(e) => {
            eprintln!("ringlink-bench: writing {}: {e}", cli.json.display());
            code = 2;
        }
    }
    match report::write_svg(&cli.svg, &results) {
        Ok(()) => println!("SVG:  {}", cli.svg.display()),
        Err(e) => {
            eprintln!("ringlink-bench: writing {}: {e}", cli.svg.display());
            code = 2;
        }
    }
    if results.iter().any(|m| m.error.is_some()) {
        eprintln!("ringlink-bench: some rows failed (see FAILED above)");
        code = 1;
    }
    code
}

fn measure_core(imp: &'static str, chunk: usize, timing: Timing) -> Measurement {
    let mut best: Option<Measurement> = None;
    for _ in 0..timing.core_runs.max(1) {
        let mut m = Measurement::new(CORE, imp, "2 threads", 1, chunk);
        match core_rings::run(imp, chunk, timing.core, false) {
            Ok(out) => {
                m.seconds = Some(out.elapsed.as_secs_f64());
                m.gib_per_s = Some(out.gib_per_s());
                m.mib_per_s = Some(out.gib_per_s() * 1024.0);
            }
            Err(e) => m.error = Some(e),
        }
        best = Some(match best {
            Some(previous) => previous.better_of(m),
            None => m,
        });
    }
    best.unwrap_or_else(|| Measurement::new(CORE, imp, "2 threads", 1, chunk))
}

fn measure_socket(
    case: &'static str,
    transport: &'static dyn Transport,
    connections: usize,
    chunk: usize,
    child: bool,
    addr: &Path,
    timing: Timing,
) -> Measurement {
    let model = transport.choose_model(connections);
    let mut m = Measurement::new(case, transport.name(), model, connections, chunk);
    m.server_in_child = child;
    if let Some(why) = transport.unsupported(connections) {
        m.skipped = Some(why);
        return m;
    }
    let stop = if case == PING_PONG {
        Stop::RoundTrips(PING_PONG_ROUND_TRIPS / connections as u64)
    } else {
        Stop::After(timing.exchange)
    };
    let plan = ClientPlan {
        connections,
        chunk,
        stop,
        model,
    };
    let outcome = if child {
        in_children(transport, plan, addr, timing).map(|(outcome, memory)| {
            m.peak_rss_kib = Some(memory.client_peak_kib);
            m.server_peak_rss_kib = Some(memory.server_peak_kib);
            m.rss_per_connection = Some(memory.per_connection(connections));
            outcome
        })
    } else {
        let cpu_before = machine::cpu_time();
        let outcome = in_process(transport, plan, addr, timing);
        if let (Some(before), Some(after)) = (cpu_before, machine::cpu_time()) {
            m.cpu_seconds = Some((after - before).as_secs_f64());
        }
        outcome
    };
    let outcome = outcome.and_then(|o| match plan.expected_bytes() {
        Some(expected) if o.received != expected => Err(BenchError::Protocol(format!(
            "received {} bytes, expected {expected}",
            o.received
        ))),
        // A fixed-time run that moved nothing has stalled, not measured anything.
        None if o.received == 0 => Err(BenchError::Protocol(
            "nothing came back in the whole run".into(),
        )),
        _ => Ok(o),
    });
    match outcome {
        Ok(o) => {
            let secs = o.elapsed.as_secs_f64();
            m.seconds = Some(secs);
            match stop {
                Stop::RoundTrips(_) => {
                    m.round_trips_per_s = Some(o.received as f64 / chunk as f64 / secs)
                }
                Stop::After(_) => {
                    m.mib_per_s = Some(o.received as f64 / (1u64 << 20) as f64 / secs)
                }
            }
        }
        Err(e) => m.error = Some(e.to_string()),
    }
    m
}

/// Server on a thread of this process, client on this thread.
fn in_process(
    transport: &'static dyn Transport,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
) -> Result<ClientOutcome, BenchError> {
    let deadline = Instant::now() + timing.row_limit;
    let (cancel_server, cancel_client) = (AtomicBool::new(false), AtomicBool::new(false));
    let (cancel_server, cancel_client) = (&cancel_server, &cancel_client);
    let result = thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = thread::Builder::new()
            .name("echo-server".into())
            .spawn_scoped(scope, move || {
                let limit = Limit {
                    deadline: deadline + Duration::from_secs(2),
                    cancel: cancel_server,
                };
                let result = transport.serve(addr, plan.echo_plan(), limit, &mut || {
                    let _ = ready_tx.send(());
                });
                if result.is_err() {
                    cancel_client.store(true, Ordering::Relaxed);
                }
                result
            })
            .map_err(|e| BenchError::Io("spawning the server thread", e))?;
        let client_limit = Limit {
            deadline,
            cancel: cancel_client,
        };
        let ready = loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => break true,
                Err(mpsc::RecvTimeoutError::Timeout)
                    if !server.is_finished() && !client_limit.expired() => {}
                Err(_) => break false,
            }
        };
        let outcome = if ready {
            transport.run_client(addr, plan, client_limit)
        } else {
            Err(BenchError::Setup("the server did not start".into()))
        };
        if outcome.is_err() {
            cancel_server.store(true, Ordering::Relaxed);
        }
        let served = server
            .join()
            .unwrap_or_else(|_| Err(BenchError::Setup("the server thread panicked".into())));
        match (outcome, served) {
            // The client's error explains a server that was cancelled or saw the client fail.
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(o), Ok(())) => Ok(o),
        }
    });
    let _ = std::fs::remove_file(addr);
    result
}

/// Peak memory of the two child processes.
struct ChildMemory {
    client_base_kib: u64,
    client_peak_kib: u64,
    server_base_kib: u64,
    server_peak_kib: u64,
}

impl ChildMemory {
    fn per_connection(&self, connections: usize) -> PerConnection {
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
        let mut child = Command::new(exe)
            .arg(role)
            .arg("--transport")
            .arg(&args.transport)
            .arg("--addr")
            .arg(&args.addr)
            .arg("--connections")
            .arg(args.connections.to_string())
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

/// Server and client each in a child process (clean peak-RSS figures).
fn in_children(
    transport: &'static dyn Transport,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
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
        round_trips,
        model: plan.model.to_string(),
        seconds: timing.row_limit.as_secs(),
    };
    let mut server = ChildProcess::spawn("serve", &args)?;
    let first = server.line(deadline)?;
    if first != "ready" {
        return Err(BenchError::Setup(format!("server child: {first}")));
    }
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

fn child_setup(
    args: &ChildArgs,
) -> Result<(&'static dyn Transport, &'static str, Instant), String> {
    let transport = transports::by_name(&args.transport)
        .ok_or_else(|| format!("unknown transport {}", args.transport))?;
    let model = transport
        .models()
        .iter()
        .copied()
        .find(|m| *m == args.model)
        .ok_or_else(|| format!("{} has no model {:?}", args.transport, args.model))?;
    Ok((
        transport,
        model,
        Instant::now() + Duration::from_secs(args.seconds),
    ))
}

fn child_serve(args: &ChildArgs) -> i32 {
    let result = child_setup(args).and_then(|(transport, model, deadline)| {
        let cancel = AtomicBool::new(false);
        let plan = workload::EchoPlan {
            connections: args.connections,
            chunk: 1,
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

fn child_client(args: &ChildArgs) -> i32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            row_limit: Duration::from_secs(20),
            ..Timing::new(true)
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ringlink-bench-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_transport_echoes_every_round_trip_in_process() {
        let dir = scratch("pingpong");
        for transport in transports::all().into_iter().chain(transports::extras()) {
            let plan = ClientPlan {
                connections: 4,
                chunk: 1,
                stop: Stop::RoundTrips(50),
                model: transport.choose_model(4),
            };
            let addr = dir.join(format!("{}.sock", transport.name()));
            let out = in_process(transport, plan, &addr, timing())
                .unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
            assert_eq!(out.received, 200, "{}", transport.name());
            assert!(out.elapsed > Duration::ZERO);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_transport_exchanges_data_for_the_given_time() {
        let dir = scratch("exchange");
        for transport in transports::all().into_iter().chain(transports::extras()) {
            let plan = ClientPlan {
                connections: 2,
                chunk: 10_000,
                stop: Stop::After(Duration::from_millis(50)),
                model: transport.choose_model(2),
            };
            let addr = dir.join(format!("{}.sock", transport.name()));
            let out = in_process(transport, plan, &addr, timing())
                .unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
            assert!(out.received > 0, "{}", transport.name());
            assert!(
                out.elapsed >= Duration::from_millis(50),
                "{}",
                transport.name()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_model_of_every_transport_works() {
        let dir = scratch("models");
        for transport in transports::all().into_iter().chain(transports::extras()) {
            for (i, model) in transport.models().iter().enumerate() {
                let plan = ClientPlan {
                    connections: 3,
                    chunk: 1,
                    stop: Stop::RoundTrips(20),
                    model,
                };
                let addr = dir.join(format!("{}-{i}.sock", transport.name()));
                let out = in_process(transport, plan, &addr, timing())
                    .unwrap_or_else(|e| panic!("{} {model}: {e}", transport.name()));
                assert_eq!(out.received, 60, "{} {model}", transport.name());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn shared_memory_switches_to_tokio_tasks_beyond_fifty_connections() {
        let shm = transports::by_name("ringlink-shm").unwrap();
        assert_eq!(shm.choose_model(50), "threads, splice");
        assert_eq!(shm.choose_model(51), "tokio tasks");
        let std = transports::by_name("std").unwrap();
        assert_eq!(std.choose_model(1), "threads");
    }

    #[test]
    fn a_missing_server_fails_the_row_within_its_limit() {
        let dir = scratch("missing");
        let t = transports::by_name("ringlink-uds").unwrap();
        let cancel = AtomicBool::new(false);
        let limit = Limit {
            deadline: Instant::now() + Duration::from_secs(2),
            cancel: &cancel,
        };
        let plan = ClientPlan {
            connections: 1,
            chunk: 1,
            stop: Stop::RoundTrips(1),
            model: t.choose_model(1),
        };
        let started = Instant::now();
        assert!(t.run_client(&dir.join("nobody.sock"), plan, limit).is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_plan_covers_qts_rows_and_filters_them() {
        let cli = Cli::parse_from(["ringlink-bench", "--quick"]);
        let jobs = plan_jobs(&cli);
        let sockets = transports::all().len();
        let core = core_rings::CHUNKS.len() * core_rings::IMPLS.len() - 1;
        let idle = idle::transports().len();
        assert_eq!(jobs.len(), sockets * (6 + 1 + 12) + core + idle);
        assert!(
            matches!(jobs.last(), Some(Job::Idle { transport: "std" })),
            "idle rows come last, std among them"
        );
        let cli = Cli::parse_from([
            "ringlink-bench",
            "--cases",
            "pingPong",
            "--transports",
            "ringlink-uds",
            "--connections",
            "10",
        ]);
        let labels: Vec<String> = plan_jobs(&cli).iter().map(Job::label).collect();
        assert_eq!(labels.len(), 2, "{labels:?}");
        assert!(
            labels[0].contains("ringlink-uds") && labels[1].contains("std"),
            "{labels:?}"
        );
    }
}
