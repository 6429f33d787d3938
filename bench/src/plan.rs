//! What a run measures: the rows (jobs) from the command line's filters, grouped by
//! workload so a round runs every transport of a row back to back, and the durations
//! and bounds of a run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::idle;
use crate::names::{Case, Driver, DriverKind, Name};
use crate::report::likes;
use crate::workload::{PING_PONG_ROUND_TRIPS, Transport};
use crate::{core_rings, transports};

/// Connections of the in-process pingPong rows (Qt's, plus 1).
#[cfg(unix)]
pub const PING_PONG_CONNECTIONS: &[usize] = &[1, 10, 50, 100, 1000, 5000];
/// Connections of the pingPong rows on Windows: Qt's first ones. Under Wine every pipe
/// operation is a round trip to the wineserver, so the wide rows would take minutes.
#[cfg(windows)]
pub const PING_PONG_CONNECTIONS: &[usize] = &[1, 10, 100];
/// Connections of the pingPong row whose server runs in a child process (Unix).
#[cfg(unix)]
pub const CHILD_CONNECTIONS: usize = 10_000;
/// dataExchange connections and chunks (Qt's).
pub const EXCHANGE_CONNECTIONS: [usize; 3] = [1, 5, 10];
/// dataExchange chunk sizes (Qt's).
pub const EXCHANGE_CHUNKS: [usize; 4] = [100, 1000, 10_000, 100_000];

/// The widest socket rows that take turns: a turn of a wider row would spend more of
/// its time opening connections than exchanging on them.
pub const TURN_CONNECTIONS: usize = 100;

/// How many times Qt's round trips a shared-memory pingPong row makes where it spins
/// ([`SocketRow::round_trips`]).
pub const SHARED_MEMORY_ROUND_TRIPS_FACTOR: u64 = 10;

/// Durations and bounds of a run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Time of one dataExchange row.
    pub exchange: Duration,
    /// Time of one core ring within one round (summed over its turns).
    pub core: Duration,
    /// Bound of one socket row.
    pub row_limit: Duration,
    /// Rounds over every row (the median counts).
    pub rounds: usize,
    /// Turns of a core row within one round: its rings take turns, `core / core_turns`
    /// each, so a slow stretch of the VM falls on every ring of the row alike.
    pub core_turns: usize,
    /// Turns of a socket row of at most [`TURN_CONNECTIONS`] connections within one
    /// round, each a share of the row's time or round trips (see [`Job::turns`]); the
    /// full run's is a multiple of [`CONTEXT_TURNS`], as is its `core_turns`.
    pub socket_turns: usize,
    /// Whether a socket row's server runs in a process of its own.
    pub processes: Processes,
}

static ONE_PROCESS: AtomicBool = AtomicBool::new(false);

/// Records `--processes` for what a row needs per process (descriptors, threads).
pub fn set_processes(processes: Processes) {
    ONE_PROCESS.store(processes == Processes::One, Ordering::Relaxed);
}

/// Whether `--processes one` puts both sides of a row in this process.
#[cfg(unix)]
pub fn one_process() -> bool {
    ONE_PROCESS.load(Ordering::Relaxed)
}

/// Where the two sides of a socket row run (`--processes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Processes {
    /// The server in a child process, the client in this one: a real process
    /// boundary, as users of local IPC have (the default).
    Two,
    /// The server on a thread of this process (for profiling one process).
    One,
}

impl Timing {
    /// The quick or the full run; `rounds` overrides the default.
    pub fn new(quick: bool, rounds: Option<usize>) -> Timing {
        let t = if quick {
            Timing {
                exchange: Duration::from_millis(300),
                core: Duration::from_millis(300),
                row_limit: Duration::from_secs(30),
                rounds: 1,
                core_turns: 10,
                socket_turns: 3,
                processes: Processes::Two,
            }
        } else {
            Timing {
                exchange: Duration::from_secs(1),
                core: Duration::from_millis(300),
                row_limit: Duration::from_secs(90),
                rounds: 6,
                // Every order of each group of a row, equally often (`Row::turn`).
                core_turns: 2 * CONTEXT_TURNS,
                socket_turns: CONTEXT_TURNS,
                processes: Processes::Two,
            }
        };
        Timing {
            rounds: rounds.unwrap_or(t.rounds).max(1),
            ..t
        }
    }
}

/// A socket row: pingPong or dataExchange over a transport under one driver.
#[derive(Clone, Copy)]
pub struct SocketRow {
    /// pingPong or dataExchange.
    pub case: Case,
    /// The transport.
    pub transport: &'static dyn Transport,
    /// Its driver for this row.
    pub driver: Driver,
    /// Connections.
    pub connections: usize,
    /// Bytes per chunk.
    pub chunk: usize,
    /// Whether the server (and the client) run in child processes.
    pub child: bool,
}

impl SocketRow {
    /// Round trips of this pingPong row over all its connections and turns: Qt's
    /// [`PING_PONG_ROUND_TRIPS`], or [`SHARED_MEMORY_ROUND_TRIPS_FACTOR`] times as many
    /// for a shared-memory transport that spins (ringlink-shm's, ringlink-shm-tokio's,
    /// iceoryx2's spinning side) on a row that takes turns. Those make Qt's 100,000
    /// round trips in 9-100 ms, so a turn would be 3-30 ms, mostly the first hand-overs
    /// before a spin has adapted, and a pause of the VM would be the whole figure; ten
    /// times as many give every turn 30-300 ms. A rate is a rate: the table's round
    /// trips/s and every ratio read the same.
    pub fn round_trips(&self) -> u64 {
        let spins = self.transport.name().is_shared_memory()
            && self.driver.kind() != DriverKind::EventDriven;
        if spins && self.takes_turns() {
            PING_PONG_ROUND_TRIPS * SHARED_MEMORY_ROUND_TRIPS_FACTOR
        } else {
            PING_PONG_ROUND_TRIPS
        }
    }

    /// Whether the row's transports take turns within a round (see [`Job::turns`]).
    fn takes_turns(&self) -> bool {
        self.connections <= TURN_CONNECTIONS && !self.child
    }
}

/// One row to measure.
pub enum Job {
    /// A socket row.
    Socket(SocketRow),
    /// A core ring between two threads.
    Core {
        /// The ring.
        imp: Name,
        /// Bytes per operation.
        chunk: usize,
    },
    /// A connected pair with nothing to send (Unix).
    #[cfg_attr(not(unix), allow(dead_code))]
    Idle {
        /// The transport.
        transport: Name,
    },
}

impl Job {
    /// `pingPong ringlink-uds (epoll) 10 conns chunk 1`.
    pub fn label(&self) -> String {
        match self {
            Job::Socket(r) => format!(
                "{} {} ({}) {} conns{} chunk {}",
                r.case,
                r.transport.name(),
                r.driver,
                r.connections,
                if r.child { " (child server)" } else { "" },
                r.chunk
            ),
            Job::Core { imp, chunk } => format!("core {imp} chunk {chunk}"),
            Job::Idle { transport } => format!("idle {transport}"),
        }
    }

    /// How many turns the job takes within a round, each doing `1 / turns` of its
    /// work: its row's jobs take turns (each group in its next order, [`Row::turn`]),
    /// so a slow stretch of the VM (a vCPU moved, a neighbour's burst) falls on every
    /// transport of the row instead of on whichever ran during it; a job's round is its
    /// work over its time summed over its turns ([`crate::report::fold_turns`]).
    ///
    /// Socket rows take turns (dataExchange's time, pingPong's round trips) unless
    /// wider than [`TURN_CONNECTIONS`] or in child processes; core rows take theirs.
    /// Shared memory's spinning pingPong rows make ten times Qt's round trips
    /// ([`SocketRow::round_trips`]), so that a third of them is still long enough to
    /// measure.
    pub fn turns(&self, timing: Timing) -> usize {
        match self {
            Job::Core { .. } => timing.core_turns.max(1),
            Job::Socket(r) if r.takes_turns() => timing.socket_turns.max(1),
            Job::Socket(_) | Job::Idle { .. } => 1,
        }
    }

    /// The workload: jobs with one key are one row of the table across transports.
    pub fn row_key(&self) -> (Case, usize, usize, bool) {
        match self {
            Job::Socket(r) => (r.case, r.connections, r.chunk, r.child),
            Job::Core { chunk, .. } => (Case::Core, 1, *chunk, false),
            Job::Idle { .. } => (Case::Idle, 1, 1, false),
        }
    }
}

/// What the command line asked for.
#[derive(Default)]
pub struct Filters {
    /// Only these cases (all when empty).
    pub cases: Vec<String>,
    /// Only these transports (all when empty; the baselines are kept).
    pub transports: Vec<String>,
    /// Only rows with these connection counts.
    pub connections: Vec<usize>,
    /// Only rows with these chunk sizes.
    pub chunks: Vec<usize>,
}

/// The cases a run measures unless told otherwise. On Windows the named-pipe cases and
/// the idle pairs: the core rings are the same code everywhere (`--cases core` measures
/// them there too).
const DEFAULT_CASES: &[Case] = if cfg!(windows) {
    &[Case::PingPong, Case::DataExchange, Case::Idle]
} else {
    Case::ALL
};

impl Filters {
    fn wants_case(&self, case: Case) -> bool {
        if self.cases.is_empty() {
            DEFAULT_CASES.contains(&case)
        } else {
            self.cases.iter().any(|x| Case::parse(x) == Some(case))
        }
    }

    /// Baselines (std, std-epoll, rtrb) are always kept, so the like of a row exists.
    fn wants(&self, name: Name) -> bool {
        matches!(name, Name::Std | Name::StdEpoll | Name::Rtrb)
            || self.transports.is_empty()
            || self.asked(name)
    }

    fn asked(&self, name: Name) -> bool {
        self.transports.iter().any(|x| Name::parse(x) == Some(name))
    }
}

/// The transport (or ring) of a job and its driver; `None` for an idle pair.
fn who(job: &Job) -> Option<(Name, Driver)> {
    match job {
        Job::Socket(r) => Some((r.transport.name(), r.driver)),
        Job::Core { imp, .. } => Some((*imp, Driver::TwoThreads)),
        Job::Idle { .. } => None,
    }
}

/// How long the VM rests after a spinning job before a job that does not spin: the
/// job right after two spinning vCPUs runs fast for a while (tokio after ringlink-shm
/// measured 6% above its ringlink twin), and with every order of a row's groups
/// ([`Row::turn`]) the spinning groups, last in a turn, come right before the next
/// turn's first job.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Whether a job spins on both vCPUs (shared memory's spinning drivers, iceoryx2's).
pub fn spins(job: &Job) -> bool {
    who(job).is_some_and(|(_, driver)| driver.kind() == DriverKind::Spinning)
}

/// One row's jobs in groups, in the order they run: each peer in the group of the first
/// ringlink job whose nearest like it is ([`crate::report::likes`]), with that job's
/// other ringlink transports, so every ratio a goal reads (ringlink-uds against std,
/// std-epoll, tokio; ringlink-ring against rtrb) is of runs at most a group apart (see
/// [`Row::turn`]). In table order, std's run came 8 runs after ringlink-uds's, and
/// their ratio took whatever the VM did in between.
fn next_to_likes(jobs: &[Job], row: &[usize]) -> Vec<Vec<usize>> {
    let is = |j: usize, (peer, kind): (Name, DriverKind)| {
        who(&jobs[j]).is_some_and(|(n, d)| n == peer && d.kind() == kind)
    };
    // A group per peer: the ringlink jobs whose nearest like it is, and the peer's jobs.
    struct Group {
        like: Option<(Name, DriverKind)>,
        ours: Vec<usize>,
        peers: Vec<usize>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for &i in row {
        let Some((name, driver)) = who(&jobs[i]) else {
            groups.push(Group {
                like: None,
                ours: Vec::new(),
                peers: vec![i],
            });
            continue;
        };
        let like = if name.is_ringlink() {
            likes(name, driver)
                .iter()
                .copied()
                .find(|&like| row.iter().any(|&j| is(j, like)))
                // A spinning job beside a like that does not spin (ringlink-shm beside
                // std where iceoryx2 has no row) runs apart, with the spinning jobs.
                .filter(|&(_, kind)| !spins(&jobs[i]) || kind == DriverKind::Spinning)
        } else {
            Some((name, driver.kind()))
        };
        let at = match groups.iter().position(|g| like.is_some() && g.like == like) {
            Some(at) => at,
            None => {
                groups.push(Group {
                    like,
                    ours: Vec::new(),
                    peers: Vec::new(),
                });
                groups.len() - 1
            }
        };
        if name.is_ringlink() {
            groups[at].ours.push(i);
        } else {
            groups[at].peers.push(i);
        }
    }
    // Spinning jobs (shared memory's, iceoryx2's) run last, Qt's row just before them:
    // the job right after two spinning vCPUs runs fast for a while (the like after
    // ringlink-shm's run measured 6% above its ringlink twin on 1-connection
    // dataExchange rows, 5-6 of 6 rounds; apart, 1.00x), so within a turn nothing
    // follows them, and the next turn's first job waits `SETTLE` first.
    let place = |g: &Group| {
        // A group whose like spins holds that like's job, so its members say it all.
        if g.ours.iter().chain(&g.peers).any(|&j| spins(&jobs[j])) {
            2
        } else if g.like.is_some_and(|(name, _)| name == Name::Qt) {
            1
        } else {
            0
        }
    };
    groups.sort_by_key(place);
    groups
        .into_iter()
        .map(|Group { ours, peers, .. }| {
            let mut group = Vec::with_capacity(ours.len() + peers.len());
            group.extend(ours.first());
            group.extend(peers);
            group.extend(ours.iter().skip(1));
            group
        })
        .collect()
}

/// The jobs of a run, grouped by workload (see [`Job::row_key`]).
pub fn plan_jobs(filters: &Filters) -> Vec<Job> {
    let chosen: Vec<&'static dyn Transport> = transports::all()
        .into_iter()
        .filter(|t| filters.wants(t.name()))
        .chain(
            transports::extras()
                .into_iter()
                .filter(|t| filters.asked(t.name())),
        )
        .collect();
    let mut jobs = Vec::new();
    let mut sockets = |case: Case, connections: usize, chunk: usize, child: bool| {
        for &transport in &chosen {
            for driver in transport.drivers(connections) {
                jobs.push(Job::Socket(SocketRow {
                    case,
                    transport,
                    driver,
                    connections,
                    chunk,
                    child,
                }));
            }
        }
    };
    if filters.wants_case(Case::PingPong) {
        for &connections in PING_PONG_CONNECTIONS {
            sockets(Case::PingPong, connections, 1, false);
        }
        #[cfg(unix)]
        sockets(Case::PingPong, CHILD_CONNECTIONS, 1, true);
    }
    if filters.wants_case(Case::DataExchange) {
        for connections in EXCHANGE_CONNECTIONS {
            for chunk in EXCHANGE_CHUNKS {
                sockets(Case::DataExchange, connections, chunk, false);
            }
        }
    }
    if filters.wants_case(Case::Core) {
        for chunk in core_rings::CHUNKS {
            for imp in core_rings::IMPLS {
                if core_rings::applies(imp, chunk) && filters.wants(imp) {
                    jobs.push(Job::Core { imp, chunk });
                }
            }
        }
    }
    if filters.wants_case(Case::Idle) {
        for &transport in idle::transports() {
            if filters.wants(transport) {
                jobs.push(Job::Idle { transport });
            }
        }
    }
    jobs.retain(|job| {
        let (_, connections, chunk, _) = job.row_key();
        (filters.connections.is_empty() || filters.connections.contains(&connections))
            && (filters.chunks.is_empty() || filters.chunks.contains(&chunk))
    });
    jobs
}

/// One row of a round: its jobs in groups, each a ringlink job with its likes (see
/// [`next_to_likes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Indices into the jobs, group by group.
    pub groups: Vec<Vec<usize>>,
}

/// Every order of a group's jobs, in the order the turns take them: one order for one
/// job; both for two; all six for three; for more, each rotation forwards and backwards.
fn group_orders(n: usize) -> Vec<Vec<usize>> {
    match n {
        0 | 1 => vec![(0..n).collect()],
        2 => vec![vec![0, 1], vec![1, 0]],
        3 => vec![
            vec![0, 1, 2],
            vec![2, 1, 0],
            vec![1, 2, 0],
            vec![0, 2, 1],
            vec![2, 0, 1],
            vec![1, 0, 2],
        ],
        _ => (0..n)
            .flat_map(|r| {
                let forward: Vec<usize> = (0..n).map(|i| (i + r) % n).collect();
                let backward: Vec<usize> = forward.iter().rev().copied().collect();
                [forward, backward]
            })
            .collect(),
    }
}

impl Row {
    /// The jobs in the order of turn `turn`: the groups in their order, each group's
    /// jobs in the next of its orders ([`group_orders`]). Over [`CONTEXT_TURNS`] turns a
    /// group of up to three runs in every order the same number of times, so each job
    /// of a pair follows each of the others, and the job before the group, equally
    /// often: the job that ran just before leaves the VM in a state of its own (a busy
    /// thread pool, a woken vCPU), and reversing whole rows let ringlink-uds (epoll)
    /// follow std's threads where std-epoll followed ringlink-uds (tokio tasks): on
    /// 1-connection dataExchange rows it read 1.17-1.45x std-epoll in 12 of 12 rounds
    /// (medians 0.91-1.12x with this order, in one A/B and one full run).
    pub fn turn(&self, turn: usize) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.groups.iter().map(Vec::len).sum());
        for group in &self.groups {
            let orders = group_orders(group.len());
            order.extend(orders[turn % orders.len()].iter().map(|&k| group[k]));
        }
        order
    }

    /// The row's jobs, in the first turn's order.
    pub fn jobs(&self) -> Vec<usize> {
        self.turn(0)
    }
}

/// Turns after which every group of up to three jobs has run in each of its orders
/// equally often (see [`Row::turn`]).
pub const CONTEXT_TURNS: usize = 6;

/// The rows of one round (to run back to back, each ringlink job next to its like, see
/// [`next_to_likes`]), shuffled by `seed` (0: planned order).
pub fn round_rows(jobs: &[Job], seed: u64) -> Vec<Row> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match rows.last_mut() {
            Some(row) if jobs[row[0]].row_key() == job.row_key() => row.push(i),
            _ => rows.push(vec![i]),
        }
    }
    let mut rows: Vec<Row> = rows
        .iter()
        .map(|row| Row {
            groups: next_to_likes(jobs, row),
        })
        .collect();
    if seed != 0 {
        // Fisher-Yates with xorshift64: no dependency, and the order differs per round.
        let mut state = seed;
        for i in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(i, (state % (i as u64 + 1)) as usize);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_plan_covers_qts_rows_under_every_driver_and_filters_them() {
        let jobs = plan_jobs(&Filters::default());
        let socket_rows = |case: Case| {
            jobs.iter()
                .filter(|j| matches!(j, Job::Socket(r) if r.case == case))
                .count()
        };
        let drivers_at =
            |n: usize| -> usize { transports::all().iter().map(|t| t.drivers(n).len()).sum() };
        let ping: usize = PING_PONG_CONNECTIONS
            .iter()
            .map(|&n| drivers_at(n))
            .sum::<usize>()
            + drivers_at(CHILD_CONNECTIONS);
        assert_eq!(socket_rows(Case::PingPong), ping);
        let exchange: usize = EXCHANGE_CONNECTIONS
            .iter()
            .map(|&n| EXCHANGE_CHUNKS.len() * drivers_at(n))
            .sum();
        assert_eq!(socket_rows(Case::DataExchange), exchange);
        assert!(
            matches!(
                jobs.last(),
                Some(Job::Idle {
                    transport: Name::Std
                })
            ),
            "idle rows come last, std among them"
        );
        let uds: Vec<Driver> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Socket(r)
                    if r.transport.name() == Name::RinglinkUds
                        && r.connections == 1
                        && r.case == Case::PingPong =>
                {
                    Some(r.driver)
                }
                _ => None,
            })
            .collect();
        assert_eq!(uds, [Driver::Threads, Driver::Epoll, Driver::TokioTasks]);

        let filters = Filters {
            cases: vec!["pingPong".into()],
            transports: vec!["ringlink-uds".into()],
            connections: vec![10],
            ..Filters::default()
        };
        let labels: Vec<String> = plan_jobs(&filters).iter().map(Job::label).collect();
        assert_eq!(labels.len(), 5, "{labels:?}");
        assert!(labels[0].contains("ringlink-uds (threads)"), "{labels:?}");
        assert!(
            labels.iter().any(|l| l.contains("std (threads)")),
            "{labels:?}"
        );
        assert!(
            labels.iter().any(|l| l.contains("std-epoll (epoll)")),
            "{labels:?}"
        );
    }

    #[test]
    fn a_round_keeps_rows_together_and_shuffles_them() {
        let jobs = plan_jobs(&Filters {
            cases: vec!["dataExchange".into()],
            ..Filters::default()
        });
        let planned: Vec<Vec<usize>> = round_rows(&jobs, 0).iter().map(Row::jobs).collect();
        let mut all = planned.concat();
        all.sort_unstable();
        assert_eq!(all, (0..jobs.len()).collect::<Vec<_>>());
        // Rows keep the table's order; a row holds exactly its jobs, in every turn.
        for pair in planned.windows(2) {
            assert!(pair[0].iter().max() < pair[1].iter().min());
        }
        for row in round_rows(&jobs, 0) {
            let mut first = row.jobs();
            first.sort_unstable();
            for turn in 0..CONTEXT_TURNS {
                let mut order = row.turn(turn);
                order.sort_unstable();
                assert_eq!(order, first, "turn {turn}");
            }
        }
        let shuffled: Vec<Vec<usize>> = round_rows(&jobs, 0x9e37_79b9_7f4a_7c15)
            .iter()
            .map(Row::jobs)
            .collect();
        assert_ne!(shuffled, planned);
        let mut sorted = shuffled.clone();
        sorted.sort_unstable();
        let mut rows = planned.clone();
        rows.sort_unstable();
        assert_eq!(sorted, rows, "the same rows, in another order");
    }

    #[test]
    fn a_groups_orders_come_round_equally_often() {
        for n in 1..=3 {
            let orders = group_orders(n);
            assert_eq!(CONTEXT_TURNS % orders.len(), 0, "{n} jobs");
            let mut seen: Vec<Vec<usize>> = orders.clone();
            seen.sort_unstable();
            seen.dedup();
            let permutations = (1..=n).product::<usize>();
            assert_eq!(seen.len(), permutations, "every order of {n} jobs, once");
        }
        // Consecutive turns of a pair swap it.
        assert_eq!(group_orders(2), [vec![0, 1], vec![1, 0]]);
        // Wider groups: each rotation, forwards and backwards.
        assert_eq!(group_orders(4).len(), 8);
    }

    #[test]
    fn over_a_rounds_turns_each_job_of_a_group_follows_the_same_jobs() {
        let timing = Timing::new(false, None);
        assert_eq!(timing.socket_turns % CONTEXT_TURNS, 0);
        assert_eq!(timing.core_turns % CONTEXT_TURNS, 0);
        let jobs = plan_jobs(&Filters::default());
        let mut checked = 0;
        for row in round_rows(&jobs, 0) {
            for group in row.groups.iter().filter(|g| (2..=3).contains(&g.len())) {
                let place = |i: usize| group.iter().position(|&j| j == i);
                // How often each job runs first in its group (right after the group
                // before it), and how often each runs right after each other.
                let mut first = vec![0; group.len()];
                let mut after = vec![vec![0; group.len()]; group.len()];
                for turn in 0..CONTEXT_TURNS {
                    let order = row.turn(turn);
                    let mine: Vec<usize> = order.iter().filter_map(|&i| place(i)).collect();
                    let start = order.iter().position(|&i| place(i).is_some()).unwrap();
                    assert_eq!(
                        order[start..start + mine.len()]
                            .iter()
                            .filter_map(|&i| place(i))
                            .count(),
                        mine.len(),
                        "a group runs back to back"
                    );
                    first[mine[0]] += 1;
                    for w in mine.windows(2) {
                        after[w[1]][w[0]] += 1;
                    }
                }
                let label = |k: usize| jobs[group[k]].label();
                assert!(
                    first.iter().all(|&n| n == first[0]),
                    "{first:?}: {}",
                    label(0)
                );
                for (u, row_u) in after.iter().enumerate() {
                    for (v, &n) in row_u.iter().enumerate() {
                        assert_eq!(
                            n,
                            after[v][u],
                            "{} after {} against the reverse",
                            label(u),
                            label(v)
                        );
                    }
                }
                checked += 1;
            }
        }
        assert!(checked >= 30, "{checked} groups");
    }

    #[test]
    fn each_ringlink_job_runs_next_to_its_like() {
        let jobs = plan_jobs(&Filters::default());
        let find = |row: &[usize], name: Name, driver: Driver| {
            row.iter()
                .position(|&i| who(&jobs[i]) == Some((name, driver)))
        };
        // ringlink's socket on Unix, its named pipe on Windows.
        let socket = if cfg!(windows) {
            Name::RinglinkPipe
        } else {
            Name::RinglinkUds
        };
        let mut pairs = 0;
        for planned in round_rows(&jobs, 0) {
            for turn in 0..CONTEXT_TURNS {
                let row = planned.turn(turn);
                for (ours, peer) in [
                    ((socket, Driver::Threads), (Name::Std, Driver::Threads)),
                    ((socket, Driver::Epoll), (Name::StdEpoll, Driver::Epoll)),
                    (
                        (socket, Driver::TokioTasks),
                        (Name::Tokio, Driver::TokioTasks),
                    ),
                    (
                        (Name::RinglinkRing, Driver::TwoThreads),
                        (Name::Rtrb, Driver::TwoThreads),
                    ),
                ] {
                    let (Some(a), Some(b)) =
                        (find(&row, ours.0, ours.1), find(&row, peer.0, peer.1))
                    else {
                        continue;
                    };
                    // One group: back to back, or a like of both between them.
                    let group = planned.groups.iter().find(|g| g.contains(&row[a])).unwrap();
                    assert!(
                        group.contains(&row[b]) && a.abs_diff(b) < group.len().max(2),
                        "{} and {}",
                        jobs[row[a]].label(),
                        jobs[row[b]].label()
                    );
                    // Within a turn, neither half of the pair runs right after a
                    // spinning job (between turns, the run waits `SETTLE`).
                    for at in [a, b] {
                        assert!(
                            at == 0 || !spins(&jobs[row[at - 1]]),
                            "{} runs right after {}",
                            jobs[row[at]].label(),
                            jobs[row[at - 1]].label()
                        );
                    }
                    pairs += 1;
                }
            }
        }
        // Every socket row pairs at least the threads and the tokio driver, in every
        // turn.
        let mut socket_rows: Vec<_> = jobs
            .iter()
            .filter(|j| matches!(j, Job::Socket(_)))
            .map(Job::row_key)
            .collect();
        socket_rows.dedup();
        assert!(socket_rows.len() >= 15, "{} socket rows", socket_rows.len());
        assert!(
            pairs >= 2 * CONTEXT_TURNS * socket_rows.len(),
            "{pairs} pairs"
        );
    }
}
