//! Measuring one job: a socket row with its server in a child process and its client
//! on the calling thread (or, with `--processes one`, its server on a thread of this
//! process; the 10,000-connection row runs both sides in children, see
//! [`crate::children`]), a core ring, an idle pair. Each call is one round of the job; the caller folds the rounds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[cfg(unix)]
use crate::children;
use crate::core_rings;
use crate::idle;
use crate::machine;
use crate::names::{Case, Driver, Name};
use crate::plan::{Job, SocketRow, Timing};
use crate::report::Measurement;
use crate::workload::{BenchError, ClientOutcome, ClientPlan, Limit, Stop, Transport};

/// `--pin`: the CPU of each side of a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pinning {
    /// The server side (its thread and every thread it starts).
    pub server: usize,
    /// The client side.
    pub client: usize,
}

/// Runs one turn of `job` (its share of a round's work, see [`Job::turns`]); `addr`
/// is a scratch socket path for it.
pub fn measure(job: &Job, addr: &Path, timing: Timing, pin: Option<Pinning>) -> Measurement {
    let turns = job.turns(timing);
    match job {
        Job::Socket(row) => measure_socket(*row, addr, timing, turns, pin),
        Job::Core { imp, chunk } => measure_core(*imp, *chunk, timing.core / turns as u32),
        Job::Idle { transport } => idle::measure(*transport, idle::IDLE),
    }
}

/// One run of a core ring for `duration`.
fn measure_core(imp: Name, chunk: usize, duration: Duration) -> Measurement {
    let mut m = Measurement::new(Case::Core, imp, Driver::TwoThreads, 1, chunk);
    match core_rings::run(imp, chunk, duration, false) {
        Ok(out) => {
            m.seconds = Some(out.elapsed.as_secs_f64());
            m.gib_per_s = Some(out.gib_per_s());
            m.mib_per_s = Some(out.gib_per_s() * 1024.0);
        }
        Err(e) => m.error = Some(e),
    }
    m
}

/// One turn of a socket row: `1 / turns` of its round trips, or of its time.
fn measure_socket(
    row: SocketRow,
    addr: &Path,
    timing: Timing,
    turns: usize,
    pin: Option<Pinning>,
) -> Measurement {
    let mut m = Measurement::new(
        row.case,
        row.transport.name(),
        row.driver,
        row.connections,
        row.chunk,
    );
    m.server_in_child = row.child;
    if let Some(why) = row.transport.unsupported(row.driver, row.connections) {
        m.skipped = Some(why);
        return m;
    }
    let stop = if row.case == Case::PingPong {
        Stop::RoundTrips((row.round_trips() / (row.connections * turns) as u64).max(1))
    } else {
        Stop::After(timing.exchange / turns as u32)
    };
    let plan = ClientPlan {
        connections: row.connections,
        chunk: row.chunk,
        stop,
        model: row.driver,
    };
    let outcome = if row.child {
        in_children(&mut m, row, plan, addr, timing, pin)
    } else {
        // Both sides' CPU: this process's, and the server child's (or Qt's program's)
        // once it has been reaped.
        let cpu_before = machine::cpu_time_with_children();
        let outcome = match timing.processes {
            #[cfg(unix)]
            crate::plan::Processes::Two => {
                children::with_server_child(row.transport, plan, addr, timing, pin)
            }
            // The Windows harness runs both sides in one process.
            _ => in_process(row.transport, plan, addr, timing, pin),
        };
        if let (Some(before), Some(after)) = (cpu_before, machine::cpu_time_with_children()) {
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
                    m.round_trips_per_s = Some(o.received as f64 / row.chunk as f64 / secs)
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

/// The row with its server and its client in child processes, their memory into `m`.
#[cfg(unix)]
fn in_children(
    m: &mut Measurement,
    row: SocketRow,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
    pin: Option<Pinning>,
) -> Result<ClientOutcome, BenchError> {
    children::in_children(row.transport, plan, addr, timing, pin).map(|(outcome, memory)| {
        m.peak_rss_kib = Some(memory.client_peak_kib);
        m.server_peak_rss_kib = Some(memory.server_peak_kib);
        m.rss_per_connection = Some(memory.per_connection(row.connections));
        outcome
    })
}

/// The child-process harness is Unix's (its memory figures come from `/proc`).
#[cfg(not(unix))]
fn in_children(
    _m: &mut Measurement,
    _row: SocketRow,
    _plan: ClientPlan,
    _addr: &Path,
    _timing: Timing,
    _pin: Option<Pinning>,
) -> Result<ClientOutcome, BenchError> {
    Err(BenchError::Setup(
        "child-process rows run on Unix only".into(),
    ))
}

/// Pins the calling thread to `cpu` until dropped, then restores its affinity.
pub(crate) struct Pinned(Vec<usize>);

impl Pinned {
    /// Pins the calling thread to `cpu`, if one is given.
    pub(crate) fn to(cpu: Option<usize>) -> Result<Option<Pinned>, BenchError> {
        let Some(cpu) = cpu else { return Ok(None) };
        let before = machine::allowed_cpus();
        machine::set_affinity(&[cpu]).map_err(|e| BenchError::Io("pinning a side", e))?;
        Ok(Some(Pinned(before)))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = machine::set_affinity(&self.0);
    }
}

/// Server on a thread of this process, client on this thread.
pub fn in_process(
    transport: &'static dyn Transport,
    plan: ClientPlan,
    addr: &Path,
    timing: Timing,
    pin: Option<Pinning>,
) -> Result<ClientOutcome, BenchError> {
    let deadline = Instant::now() + timing.row_limit;
    let (cancel_server, cancel_client) = (AtomicBool::new(false), AtomicBool::new(false));
    let (cancel_server, cancel_client) = (&cancel_server, &cancel_client);
    let _client_pin = Pinned::to(pin.map(|p| p.client))?;
    let result = thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = thread::Builder::new()
            .name("echo-server".into())
            .spawn_scoped(scope, move || {
                let limit = Limit {
                    deadline: deadline + Duration::from_secs(2),
                    cancel: cancel_server,
                };
                // The threads the server starts inherit its CPU.
                let result = Pinned::to(pin.map(|p| p.server)).and_then(|_pinned| {
                    transport.serve(addr, plan.echo_plan(), limit, &mut || {
                        let _ = ready_tx.send(());
                    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transports;
    use crate::workload::PING_PONG_ROUND_TRIPS;
    use std::path::PathBuf;

    fn timing() -> Timing {
        Timing {
            row_limit: Duration::from_secs(20),
            ..Timing::new(true, None)
        }
    }

    #[test]
    fn a_turn_does_its_share_of_the_rows_work() {
        let timing = Timing {
            core: Duration::from_millis(400),
            core_turns: 4,
            socket_turns: 3,
            processes: crate::plan::Processes::One,
            ..timing()
        };
        let core = Job::Core {
            imp: Name::RinglinkRing,
            chunk: 64,
        };
        assert_eq!(core.turns(timing), 4);
        let m = measure(&core, Path::new("unused"), timing, None);
        assert!(m.error.is_none(), "{:?}", m.error);
        // One turn of 100 ms (the threads join a little after the stop), not 400.
        let seconds = m.seconds.unwrap();
        assert!((0.099..0.3).contains(&seconds), "{seconds}");
        let std = transports::by_name(Name::Std).unwrap();
        let row = |case, connections, child| {
            Job::Socket(SocketRow {
                case,
                transport: std,
                driver: Driver::Threads,
                connections,
                chunk: 100,
                child,
            })
        };
        let exchange = |connections| row(Case::DataExchange, connections, false);
        assert_eq!(exchange(100).turns(timing), 3);
        assert_eq!(exchange(1000).turns(timing), 1, "wide rows run once");
        assert_eq!(row(Case::DataExchange, 10, true).turns(timing), 1);
        assert_eq!(row(Case::PingPong, 10, false).turns(timing), 3);
        assert_eq!(row(Case::PingPong, 10, true).turns(timing), 1);
        #[cfg(target_os = "linux")]
        for name in [Name::RinglinkShm, Name::Iceoryx2] {
            let shm = Job::Socket(SocketRow {
                case: Case::PingPong,
                transport: transports::by_name(name).unwrap(),
                driver: Driver::Spinning,
                connections: 10,
                chunk: 1,
                child: false,
            });
            assert_eq!(shm.turns(timing), 3, "{name}'s row takes turns like std's");
            let Job::Socket(r) = shm else { unreachable!() };
            assert_eq!(r.round_trips(), 10 * PING_PONG_ROUND_TRIPS, "{name} spins");
            let wide = SocketRow {
                connections: 1000,
                ..r
            };
            assert_eq!(wide.round_trips(), PING_PONG_ROUND_TRIPS, "{name}, wide");
        }
        #[cfg(target_os = "linux")]
        {
            let parks = SocketRow {
                case: Case::PingPong,
                transport: transports::by_name(Name::Iceoryx2).unwrap(),
                driver: Driver::EventDriven,
                connections: 1,
                chunk: 1,
                child: false,
            };
            assert_eq!(
                parks.round_trips(),
                PING_PONG_ROUND_TRIPS,
                "it parks: 8 s a row"
            );
        }
        let Job::Socket(std_row) = row(Case::PingPong, 10, false) else {
            unreachable!()
        };
        assert_eq!(std_row.round_trips(), PING_PONG_ROUND_TRIPS);
        let dir = scratch("turn");
        let m = measure(
            &row(Case::PingPong, 10, false),
            &dir.join("1.sock"),
            timing,
            None,
        );
        assert!(m.error.is_none(), "{:?}", m.error);
        // A third of the row's round trips: the time of the turn says how many ran.
        let trips = m.round_trips_per_s.unwrap() * m.seconds.unwrap();
        let share = (PING_PONG_ROUND_TRIPS / 30 * 10) as f64;
        assert!(
            (trips - share).abs() < 1.0,
            "{trips} round trips, expected {share}"
        );
        let timing = Timing {
            exchange: Duration::from_millis(600),
            ..timing
        };
        let m = measure(&exchange(2), &dir.join("0.sock"), timing, None);
        assert!(m.error.is_none(), "{:?}", m.error);
        assert!(m.mib_per_s.is_some_and(|v| v > 0.0));
        // A third of the row's 600 ms, not all of it.
        let seconds = m.seconds.unwrap();
        assert!((0.199..0.5).contains(&seconds), "{seconds}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ringlink-bench-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Every driver of every transport but Qt's (its program takes a minute to build;
    /// the quick run covers it).
    fn every_driver() -> Vec<(&'static dyn Transport, Driver)> {
        transports::all()
            .into_iter()
            .chain(transports::extras())
            .filter(|t| t.name() != Name::Qt)
            .flat_map(|t| t.models().iter().map(move |d| (t, *d)))
            .collect()
    }

    #[test]
    fn every_driver_of_every_transport_echoes_every_round_trip() {
        let dir = scratch("pingpong");
        for (i, (transport, model)) in every_driver().into_iter().enumerate() {
            if transport.unsupported(model, 3).is_some() {
                continue;
            }
            let plan = ClientPlan {
                connections: 3,
                chunk: 1,
                stop: Stop::RoundTrips(20),
                model,
            };
            let addr = dir.join(format!("{i}.sock"));
            let out = in_process(transport, plan, &addr, timing(), None)
                .unwrap_or_else(|e| panic!("{} ({model}): {e}", transport.name()));
            assert_eq!(out.received, 60, "{} ({model})", transport.name());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_driver_exchanges_data_for_the_given_time() {
        let dir = scratch("exchange");
        for (i, (transport, model)) in every_driver().into_iter().enumerate() {
            if transport.unsupported(model, 2).is_some() {
                continue;
            }
            // A loaded machine may not run a side at all in a short window:
            // lengthen it until bytes came back.
            for ms in [30, 300, 3000] {
                let plan = ClientPlan {
                    connections: 2,
                    chunk: 10_000,
                    stop: Stop::After(Duration::from_millis(ms)),
                    model,
                };
                let addr = dir.join(format!("{i}-{ms}.sock"));
                let out = in_process(transport, plan, &addr, timing(), None)
                    .unwrap_or_else(|e| panic!("{} ({model}): {e}", transport.name()));
                assert!(out.elapsed >= Duration::from_millis(ms));
                if out.received > 0 {
                    break;
                }
                assert!(ms < 3000, "{} ({model}) moved nothing", transport.name());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn pinned_sides_run_and_leave_the_affinity_as_it_was() {
        let dir = scratch("pinned");
        let cpus = machine::allowed_cpus();
        let pin = Pinning {
            server: cpus[0],
            client: *cpus.last().unwrap(),
        };
        let t = transports::by_name(Name::RinglinkUds).unwrap();
        let plan = ClientPlan {
            connections: 2,
            chunk: 1,
            stop: Stop::RoundTrips(50),
            model: Driver::Threads,
        };
        let out = in_process(t, plan, &dir.join("p.sock"), timing(), Some(pin)).unwrap();
        assert_eq!(out.received, 100);
        assert_eq!(machine::allowed_cpus(), cpus);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn shared_memory_switches_to_tokio_tasks_beyond_fifty_connections() {
        let shm = transports::by_name(Name::RinglinkShm).unwrap();
        assert_eq!(shm.drivers(1), [Driver::ThreadsSplice]);
        assert_eq!(shm.drivers(50), [Driver::ThreadsSplice, Driver::SpinLoop]);
        assert_eq!(shm.drivers(51), [Driver::TokioTasks, Driver::SpinLoop]);
        assert_eq!(
            shm.drivers(crate::CHILD_CONNECTIONS),
            [Driver::TokioTasks, Driver::SpinLoop]
        );
    }

    #[test]
    fn a_missing_server_fails_the_row_within_its_limit() {
        let dir = scratch("missing");
        // ringlink's first transport: its Unix socket, or its named pipe on Windows.
        let t = transports::all()[0];
        let cancel = AtomicBool::new(false);
        let limit = Limit {
            deadline: Instant::now() + Duration::from_secs(2),
            cancel: &cancel,
        };
        for model in t.models() {
            let plan = ClientPlan {
                connections: 1,
                chunk: 1,
                stop: Stop::RoundTrips(1),
                model: *model,
            };
            let started = Instant::now();
            assert!(t.run_client(&dir.join("nobody.sock"), plan, limit).is_err());
            assert!(started.elapsed() < Duration::from_secs(3));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
