//! ringlink's benchmark harness: Qt's `QLocalSocket` workload (pingPong, dataExchange)
//! over every transport and peer, each under the drivers its users use, plus the
//! in-process core rings, in one run, so every figure reads as a ratio on one machine.
//! Run it with `cargo xtask bench [--quick]`.
//!
//! The parts: [`plan`] turns the command line into jobs; [`measure`] runs one round of
//! a job (its server in a child process of [`children`], its client here); this file
//! interleaves the rounds and folds them into medians; [`report`] prints the table and
//! the goals and writes the JSON and the SVG.

#[cfg(unix)]
mod children;
mod core_rings;
mod idle;
mod machine;
mod measure;
mod names;
#[cfg(windows)]
mod pipes;
mod plan;
#[cfg(unix)]
mod readiness;
mod report;
#[cfg(any(target_os = "linux", windows))]
mod shm_relay;
mod threaded;
#[cfg(unix)]
mod transports;
mod workload;

// The transports are the platform's: Unix sockets and shared memory, or named pipes.
#[cfg(windows)]
use pipes as transports;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[cfg(unix)]
use children::ChildArgs;
use machine::Machine;
use measure::Pinning;
use plan::{Filters, Job, Processes, Timing};
use report::Measurement;
use workload::PING_PONG_ROUND_TRIPS;

#[cfg(unix)]
pub(crate) use plan::CHILD_CONNECTIONS;

#[derive(Parser)]
#[command(
    name = "ringlink-bench",
    about = "Qt's QLocalSocket benchmark over ringlink and its peers"
)]
struct Cli {
    /// Short run: one round, dataExchange 0.3 s per row (in 3 turns), core 10 turns of 30 ms per ring.
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
    /// Only these transports (comma-separated names; the baselines std, std-epoll and
    /// rtrb are always kept).
    #[arg(long, value_delimiter = ',')]
    transports: Vec<String>,
    /// Only rows with these connection counts (comma-separated; for profiling one row).
    #[arg(long, value_delimiter = ',')]
    connections: Vec<usize>,
    /// Only rows with these chunk sizes (comma-separated bytes).
    #[arg(long, value_delimiter = ',')]
    chunks: Vec<usize>,
    /// Rounds over every row, reporting each row's median (default: 1 with --quick, else 6).
    #[arg(long)]
    rounds: Option<usize>,
    /// Run the two sides of every row on one core or on two.
    #[arg(long, value_enum)]
    pin: Option<Pin>,
    /// Where a row's server runs: `two` (a child process of its own, the default) or
    /// `one` (a thread of this process).
    #[arg(long, value_enum, default_value = "two")]
    processes: Processes,
    /// Run on this CPU only (a child process of a pinned run).
    #[arg(long, hide = true)]
    cpu: Option<usize>,
    #[cfg(unix)]
    #[command(subcommand)]
    role: Option<Role>,
}

/// `--pin`.
#[derive(Clone, Copy, ValueEnum)]
enum Pin {
    /// Both sides on the first allowed CPU.
    One,
    /// The server on the first allowed CPU, the client on the second.
    Two,
}

/// Roles of a re-executed child process (not for direct use).
#[cfg(unix)]
#[derive(clap::Subcommand)]
enum Role {
    /// Serve echo for a parent's pingPong run; prints `ready`, then `ok {json}` or `error ...`.
    #[command(hide = true)]
    Serve(ChildArgs),
    /// Run a pingPong client against a child server; prints `ok {json}` or `error ...`.
    #[command(hide = true)]
    Client(ChildArgs),
}

fn main() {
    let cli = Cli::parse();
    #[cfg(unix)]
    if let Err(e) = machine::raise_open_file_limit() {
        eprintln!("ringlink-bench: cannot raise the open-file limit: {e}");
    }
    #[cfg(unix)]
    let code = match &cli.role {
        Some(Role::Serve(args)) => children::child_serve(args),
        Some(Role::Client(args)) => children::child_client(args),
        None => run(&cli),
    };
    #[cfg(not(unix))]
    let code = run(&cli);
    std::process::exit(code);
}

/// The CPUs of the two sides for `--pin`, or why they cannot be had.
fn pinning(pin: Option<Pin>) -> Result<Option<Pinning>, String> {
    // A Windows thread's affinity is not inherited by the threads it starts.
    if cfg!(windows) && pin.is_some() {
        return Err("--pin: Unix only".into());
    }
    let cpus = machine::allowed_cpus();
    match (pin, cpus.as_slice()) {
        (None, _) => Ok(None),
        (Some(_), []) => Err("--pin: the allowed CPUs are unknown".into()),
        (Some(Pin::One), [first, ..]) => Ok(Some(Pinning {
            server: *first,
            client: *first,
        })),
        (Some(Pin::Two), [first, second, ..]) => Ok(Some(Pinning {
            server: *first,
            client: *second,
        })),
        (Some(Pin::Two), _) => Err("--pin two: only one CPU is allowed".into()),
    }
}

fn header(cli: &Cli, jobs: usize, timing: Timing, machine: &Machine) {
    let us = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.1} us"));
    println!(
        "ringlink-bench{}: {jobs} rows on {} cores ({}), load average {}",
        if cli.quick { " --quick" } else { "" },
        machine.cores,
        machine.cpu.as_deref().unwrap_or("unknown CPU"),
        machine
            .load_average_at_start
            .map_or("?".into(), |l| format!("{l:.2}")),
    );
    if let Some(wine) = &machine.wine {
        println!(
            "named pipes under Wine {wine}: absolute figures mean nothing here, only the ratios do"
        );
    }
    println!(
        "wake-up latency (blocking hand-over between two threads): same core {}, across cores {}",
        us(machine.wake_up_same_core_us),
        us(machine.wake_up_across_cores_us),
    );
    println!(
        "pingPong: {PING_PONG_ROUND_TRIPS} round trips per row ({} times as many where shared memory spins, up to {} connections); dataExchange: {:?} per row; core: {:?} per ring; per round, a row's transports take turns: {} on socket rows of up to {} connections, {} on core rows",
        plan::SHARED_MEMORY_ROUND_TRIPS_FACTOR,
        plan::TURN_CONNECTIONS,
        timing.exchange,
        timing.core,
        timing.socket_turns,
        plan::TURN_CONNECTIONS,
        timing.core_turns
    );
    if timing.rounds > 1 {
        println!(
            "{} rounds, each row's transports back to back, each ringlink transport beside its like (every order of each such group over a round's turns), rows shuffled between rounds; the median is shown with its spread; a ratio is the median of the per-round ratios",
            timing.rounds
        );
    } else {
        println!(
            "1 round (quick): figures of a single run, no spread; the full run takes the median of 6"
        );
    }
    match timing.processes {
        Processes::Two if cfg!(unix) => println!(
            "two processes: every row's server runs in a child process, its client here (Qt's program holds both sides, as Qt's benchmark does)"
        ),
        _ => println!("one process: every row's server runs on a thread of this process"),
    }
    match machine.pinned {
        Some((s, c)) if s == c => println!("pinned: both sides on CPU {s}"),
        Some((s, c)) => println!("pinned: server on CPU {s}, client on CPU {c}"),
        None => {}
    }
}

fn run(cli: &Cli) -> i32 {
    plan::set_processes(cli.processes);
    let timing = Timing {
        processes: cli.processes,
        ..Timing::new(cli.quick, cli.rounds)
    };
    let pin = match pinning(cli.pin) {
        Ok(pin) => pin,
        Err(e) => {
            eprintln!("ringlink-bench: {e}");
            return 2;
        }
    };
    let mut machine = Machine::probe(cli.quick);
    machine.rounds = timing.rounds;
    machine.pinned = pin.map(|p| (p.server, p.client));
    machine.measure_wake_ups();
    let filters = Filters {
        cases: cli.cases.clone(),
        transports: cli.transports.clone(),
        connections: cli.connections.clone(),
        chunks: cli.chunks.clone(),
    };
    let jobs = plan::plan_jobs(&filters);
    let scratch = std::env::temp_dir().join(format!("ringlink-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("ringlink-bench: cannot create {}: {e}", scratch.display());
        return 2;
    }
    header(cli, jobs.len(), timing, &machine);
    #[cfg(unix)]
    if jobs
        .iter()
        .any(|j| matches!(j, Job::Socket(r) if r.transport.name() == names::Name::Qt))
    {
        // Built once, before the clock of any row runs.
        match transports::qt::program() {
            Ok(p) => println!("Qt's program: {}", p.display()),
            Err(e) => println!("qt rows not run: {e}"),
        }
    }
    let results = rounds(&jobs, &scratch, timing, pin);
    let _ = std::fs::remove_dir_all(&scratch);

    print!("{}", report::table::table(&results));
    print!("{}", report::goals::goals(&results));
    let mut code = 0;
    match report::write_json(&cli.json, &machine, &results) {
        Ok(()) => println!("JSON: {}", cli.json.display()),
        Err(e) => {
            eprintln!("ringlink-bench: writing {}: {e}", cli.json.display());
            code = 2;
        }
    }
    match report::svg::write_svg(&cli.svg, &results) {
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

/// Measures every job `timing.rounds` times. Each round runs every transport of a row
/// back to back, so a burst of load hits them alike, and shuffles the rows, so no
/// transport always follows the same one; each job keeps its median round.
fn rounds(
    jobs: &[Job],
    scratch: &std::path::Path,
    timing: Timing,
    pin: Option<Pinning>,
) -> Vec<Measurement> {
    let bar = ProgressBar::new((jobs.len() * timing.rounds) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let clock = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64;
    let mut all: Vec<Vec<Measurement>> = jobs.iter().map(|_| Vec::new()).collect();
    // Whether the job that ran last spun; the next one waits for the VM to settle.
    let mut after_spin = false;
    for round in 0..timing.rounds {
        // The first round runs in table order; later ones shuffle the rows.
        let seed = if round == 0 {
            0
        } else {
            clock ^ (round as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
        };
        for row in plan::round_rows(jobs, seed) {
            let row_jobs = row.jobs();
            let announce = |what: String| {
                bar.set_message(if timing.rounds > 1 {
                    format!("round {}/{}: {what}", round + 1, timing.rounds)
                } else {
                    what.clone()
                });
                // Under Wine the bar is hidden: say which row runs, so a stall names its row.
                if cfg!(windows) && bar.is_hidden() {
                    eprintln!("{what}");
                }
            };
            // The row's jobs take turns, each group of the row in its next order
            // (`Row::turn`), each turn doing its share of the round's work; a job's
            // round folds its turns.
            let turns = row_jobs
                .iter()
                .map(|&i| jobs[i].turns(timing))
                .max()
                .unwrap_or(1);
            let mut done: Vec<Vec<Measurement>> = row_jobs.iter().map(|_| Vec::new()).collect();
            for turn in 0..turns {
                for i in row.turn(turn) {
                    let Some(k) = row_jobs.iter().position(|&j| j == i) else {
                        continue;
                    };
                    let job = &jobs[i];
                    let ended = done[k]
                        .last()
                        .is_some_and(|m: &Measurement| m.error.is_some() || m.skipped.is_some());
                    if done[k].len() >= job.turns(timing) || ended {
                        continue;
                    }
                    announce(if turns > 1 {
                        format!("{} (turn {}/{turns})", job.label(), turn + 1)
                    } else {
                        job.label()
                    });
                    let spins = plan::spins(job);
                    if after_spin && !spins {
                        std::thread::sleep(plan::SETTLE);
                    }
                    let addr = scratch.join(format!("{i}.sock"));
                    done[k].push(measure::measure(job, &addr, timing, pin));
                    after_spin = spins;
                }
            }
            let measured = done.into_iter().filter_map(report::fold_turns);
            for (&i, m) in row_jobs.iter().zip(measured) {
                if let Some(e) = &m.error {
                    let line = format!("{}: FAILED: {e}", jobs[i].label());
                    // A hidden bar (no terminal, as under Wine) prints nothing.
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
                all[i].push(m);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    all.into_iter().filter_map(report::median_of).collect()
}
