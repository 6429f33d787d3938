//! The results of a run: one [`Measurement`] per row, folded over the rounds into a
//! median with its spread, compared with its like, printed as a table, written as JSON
//! and drawn as an SVG chart.
//!
//! - [`table`]: the terminal table, its `vs` column comparing each row with its like;
//! - [`svg`]: the chart, one panel per case, all drawn by one panel helper;
//! - [`goals`]: the goals block, each goal read against its like.

pub mod goals;
pub mod svg;
pub mod table;

use std::path::Path;

use serde::Serialize;

use crate::machine::Machine;
use crate::names::{Case, Driver, DriverKind, Name};

/// Per-connection memory of the client and the server process.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PerConnection {
    /// (Client peak RSS − its RSS before connecting) / connections, KiB.
    pub client_kib: f64,
    /// (Server peak RSS − its RSS before listening) / connections, KiB.
    pub server_kib: f64,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measurement {
    /// `"pingPong"`, `"dataExchange"`, `"core"` or `"idle"`.
    pub case: Case,
    /// The transport or ring.
    pub transport: Name,
    /// The driver of its connections (`"epoll"`, `"threads"`, `"tokio tasks"`, ...).
    pub model: Driver,
    /// Connections (1 for core).
    pub connections: u64,
    /// Bytes per chunk (1 for pingPong).
    pub chunk: u64,
    /// Whether the server ran in a child process.
    pub server_in_child: bool,
    /// Measured time; `null` when the row failed.
    pub seconds: Option<f64>,
    /// pingPong only.
    pub round_trips_per_s: Option<f64>,
    /// dataExchange and core.
    pub mib_per_s: Option<f64>,
    /// Core only (GiB/s, what the table shows).
    pub gib_per_s: Option<f64>,
    /// The client's peak RSS, where measured (server in a child process).
    pub peak_rss_kib: Option<u64>,
    /// The server's peak RSS, where measured.
    pub server_peak_rss_kib: Option<u64>,
    /// Memory per connection, where measured.
    pub rss_per_connection: Option<PerConnection>,
    /// User + system CPU seconds of the whole process over the reported run, setup
    /// included (in-process rows only): against `seconds`, how busy both sides were.
    pub cpu_seconds: Option<f64>,
    /// Rounds behind this row (the median is reported).
    pub runs: u32,
    /// Rounds that failed (a row fails only when all did).
    pub failed_runs: u32,
    /// (Highest − lowest) / median of the figure over the successful rounds.
    pub spread: Option<f64>,
    /// The figure of every round, in the order the rounds ran (`None`: that round
    /// failed): ratios pair the rounds of two rows, which ran back to back, each
    /// group of a row in every order over the round's turns.
    pub round_values: Vec<Option<f64>>,
    /// Why the row failed.
    pub error: Option<String>,
    /// Why the row was not run (the transport cannot run it on this machine).
    pub skipped: Option<String>,
}

impl Measurement {
    /// An empty row for `case`/`transport`.
    pub fn new(
        case: Case,
        transport: Name,
        model: Driver,
        connections: usize,
        chunk: usize,
    ) -> Self {
        Measurement {
            case,
            transport,
            model,
            connections: connections as u64,
            chunk: chunk as u64,
            server_in_child: false,
            seconds: None,
            round_trips_per_s: None,
            mib_per_s: None,
            gib_per_s: None,
            peak_rss_kib: None,
            server_peak_rss_kib: None,
            rss_per_connection: None,
            cpu_seconds: None,
            runs: 1,
            failed_runs: 0,
            spread: None,
            round_values: Vec::new(),
            error: None,
            skipped: None,
        }
    }

    /// The figure the table shows and the ratio compares.
    pub fn value(&self) -> Option<f64> {
        match self.case {
            Case::PingPong => self.round_trips_per_s,
            Case::Core => self.gib_per_s,
            // Per cent of one core over the idle window (lower is better).
            Case::Idle => Some(self.cpu_seconds? / self.seconds? * 100.0),
            Case::DataExchange => self.mib_per_s,
        }
    }

    /// The unit of [`Measurement::value`].
    pub fn unit(&self) -> &'static str {
        match self.case {
            Case::PingPong => "round trips/s",
            Case::Core => "GiB/s",
            Case::Idle => "% of a core",
            Case::DataExchange => "MiB/s",
        }
    }

    /// Whether `other` measured the same workload (case, connections, chunk, where the
    /// server ran), whatever its transport or driver.
    pub fn same_row(&self, other: &Measurement) -> bool {
        self.case == other.case
            && self.connections == other.connections
            && self.chunk == other.chunk
            && self.server_in_child == other.server_in_child
    }

    /// `"ringlink-uds (epoll)"`: the transport with its driver.
    pub fn label(&self) -> String {
        format!("{} ({})", self.transport, self.model)
    }
}

/// Folds the rounds of one row into one: the round with the median figure, with the
/// spread of all successful rounds and the count of rounds and failures. `None` for no
/// rounds.
pub fn median_of(mut rounds: Vec<Measurement>) -> Option<Measurement> {
    let runs = rounds.len() as u32;
    let round_values: Vec<Option<f64>> = rounds
        .iter()
        .map(|m| if m.error.is_none() { m.value() } else { None })
        .collect();
    let failed_runs = rounds.iter().filter(|m| m.error.is_some()).count() as u32;
    let mut ok: Vec<Measurement> = rounds
        .iter()
        .filter(|m| m.error.is_none() && m.value().is_some())
        .cloned()
        .collect();
    let mut row = if ok.is_empty() {
        rounds.pop()?
    } else {
        ok.sort_by(|a, b| {
            a.value()
                .unwrap_or(0.0)
                .total_cmp(&b.value().unwrap_or(0.0))
        });
        let values: Vec<f64> = ok.iter().filter_map(Measurement::value).collect();
        let (lo, hi) = (values[0], values[values.len() - 1]);
        let mut row = ok.swap_remove(values.len() / 2);
        let median = row.value().unwrap_or(0.0);
        row.spread = (values.len() > 1 && median > 0.0).then(|| (hi - lo) / median);
        row
    };
    row.runs = runs;
    row.failed_runs = failed_runs;
    row.round_values = round_values;
    Some(row)
}

/// Folds the turns of one row within a round into the round's figure (see
/// [`crate::plan::Job::turns`]): its work over its time, both summed over the turns,
/// CPU time summed, peak memory the highest. A failed or skipped turn is the round's
/// result (the turns after it were not run). `None` for no turns.
pub fn fold_turns(turns: Vec<Measurement>) -> Option<Measurement> {
    let mut turns = turns.into_iter();
    let mut total = turns.next()?;
    for turn in turns {
        if total.error.is_some() || total.skipped.is_some() {
            break;
        }
        if turn.error.is_some() || turn.skipped.is_some() {
            return Some(turn);
        }
        let (Some(a), Some(b)) = (total.seconds, turn.seconds) else {
            continue;
        };
        let seconds = a + b;
        // A rate of each turn, weighted by its time: the work of both over their time.
        let mix = |x: Option<f64>, y: Option<f64>| Some((x? * a + y? * b) / seconds);
        total.round_trips_per_s = mix(total.round_trips_per_s, turn.round_trips_per_s);
        total.mib_per_s = mix(total.mib_per_s, turn.mib_per_s);
        total.gib_per_s = mix(total.gib_per_s, turn.gib_per_s);
        total.cpu_seconds = total.cpu_seconds.zip(turn.cpu_seconds).map(|(x, y)| x + y);
        total.peak_rss_kib = total.peak_rss_kib.max(turn.peak_rss_kib);
        total.server_peak_rss_kib = total.server_peak_rss_kib.max(turn.server_peak_rss_kib);
        total.seconds = Some(seconds);
    }
    Some(total)
}

/// `m`'s figure over `base`'s. Where both rows ran the same rounds, the median of
/// the per-round ratios: the rows of one round ran back to back, so a burst of load
/// or a slow VM minute that hits both cancels out of their ratio, which a ratio of
/// the two medians (taken from different rounds) keeps. Else the medians' ratio.
pub fn paired_ratio(m: &Measurement, base: &Measurement) -> Option<f64> {
    let whole = m.value()? / base.value()?;
    if m.round_values.len() < 2 || m.round_values.len() != base.round_values.len() {
        return Some(whole);
    }
    let mut ratios: Vec<f64> = m
        .round_values
        .iter()
        .zip(&base.round_values)
        .filter_map(|(a, b)| Some(a.as_ref()? / b.filter(|b| *b > 0.0)?))
        .collect();
    if ratios.is_empty() {
        return Some(whole);
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    Some(if ratios.len() % 2 == 1 {
        ratios[mid]
    } else {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    })
}

/// The peers a row of `transport` under `driver` is compared with, nearest first:
/// ringlink's sockets and named pipes against std under threads, std-epoll and Qt under
/// one loop per side, tokio and interprocess under tokio; shared memory against iceoryx2
/// spinning or event-driven as it spins or sleeps, and on Windows (no iceoryx2 rows)
/// against ringlink's own named pipe driven alike. Peers have no like.
pub fn likes(transport: Name, driver: Driver) -> &'static [(Name, DriverKind)] {
    use DriverKind as K;
    match (transport, driver.kind()) {
        (Name::RinglinkUds | Name::RinglinkFramed | Name::RinglinkPipe, K::Threads) => {
            &[(Name::Std, K::Threads)]
        }
        (Name::RinglinkUds | Name::RinglinkFramed, K::Loop) => {
            &[(Name::StdEpoll, K::Loop), (Name::Qt, K::Loop)]
        }
        (Name::RinglinkUds | Name::RinglinkFramed | Name::RinglinkPipe, K::Tokio) => {
            &[(Name::Tokio, K::Tokio), (Name::Interprocess, K::Tokio)]
        }
        (Name::RinglinkShm | Name::RinglinkShmCopy, _) => &[
            (Name::Iceoryx2, K::Spinning),
            (Name::RinglinkPipe, K::Threads),
            (Name::Std, K::Threads),
        ],
        (Name::RinglinkShmTokio, _) => &[
            (Name::Iceoryx2, K::EventDriven),
            (Name::RinglinkPipe, K::Tokio),
            (Name::Tokio, K::Tokio),
        ],
        (Name::RinglinkRing | Name::RinglinkChannel, _) => &[(Name::Rtrb, K::Core)],
        _ => &[],
    }
}

/// The row of `peer` (under a driver of `kind`) that measured what `m` did.
pub fn row_of<'a>(
    results: &'a [Measurement],
    m: &Measurement,
    peer: Name,
    kind: DriverKind,
) -> Option<&'a Measurement> {
    results
        .iter()
        .find(|r| r.transport == peer && r.model.kind() == kind && r.same_row(m))
}

/// `m` against its nearest like that has a figure: the like's name and the ratio.
/// None for idle rows (a baseline near zero makes no ratio) and for peers.
pub fn vs_like(results: &[Measurement], m: &Measurement) -> Option<(Name, f64)> {
    if m.case == Case::Idle {
        return None;
    }
    likes(m.transport, m.model)
        .iter()
        .find_map(|&(peer, kind)| Some((peer, paired_ratio(m, row_of(results, m, peer, kind)?)?)))
}

/// `m` against `peer`'s row of the same workload under any driver of `kind`.
pub fn ratio_to(
    results: &[Measurement],
    m: &Measurement,
    peer: Name,
    kind: DriverKind,
) -> Option<f64> {
    paired_ratio(m, row_of(results, m, peer, kind)?)
}

/// The JSON report.
#[derive(Serialize)]
pub struct Report<'a> {
    /// Where the figures were measured.
    pub machine: &'a Machine,
    /// One object per row.
    pub results: &'a [Measurement],
}

/// Writes the JSON report to `path` (creating its directory).
pub fn write_json(path: &Path, machine: &Machine, results: &[Measurement]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string_pretty(&Report { machine, results })
        .map_err(std::io::Error::other)?;
    std::fs::write(path, json + "\n")
}

/// `1.5M`, `250k`: short figures for axis labels.
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `64K`, `100`: chunk sizes.
pub fn bytes(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}K", n / 1024)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A successful row of `case` with figure `value`, 10 connections, chunk 1.
    pub fn row(case: Case, transport: Name, model: Driver, value: f64) -> Measurement {
        let mut m = Measurement::new(case, transport, model, 10, 1);
        m.seconds = Some(1.0);
        match case {
            Case::PingPong => m.round_trips_per_s = Some(value),
            Case::Core => m.gib_per_s = Some(value),
            _ => m.mib_per_s = Some(value),
        }
        m
    }

    #[test]
    fn each_row_is_compared_with_its_like() {
        use Driver::*;
        let results = vec![
            row(Case::PingPong, Name::Std, Threads, 200.0),
            row(Case::PingPong, Name::StdEpoll, Epoll, 100.0),
            row(Case::PingPong, Name::Tokio, TokioTasks, 50.0),
            row(Case::PingPong, Name::RinglinkUds, Threads, 220.0),
            row(Case::PingPong, Name::RinglinkUds, Epoll, 90.0),
            row(Case::PingPong, Name::RinglinkUds, TokioTasks, 60.0),
            row(Case::Core, Name::Rtrb, TwoThreads, 4.0),
            row(Case::Core, Name::RinglinkRing, TwoThreads, 6.0),
        ];
        let vs = |i: usize| vs_like(&results, &results[i]);
        assert_eq!(vs(3), Some((Name::Std, 1.1)));
        assert_eq!(vs(4), Some((Name::StdEpoll, 0.9)));
        assert_eq!(vs(5), Some((Name::Tokio, 1.2)));
        assert_eq!(vs(7), Some((Name::Rtrb, 1.5)));
        assert_eq!(vs(0), None, "peers have no like");
        let mut other_row = results[0].clone();
        other_row.connections = 100;
        assert_eq!(vs_like(&[other_row, results[3].clone()], &results[3]), None);
    }

    #[test]
    fn ratios_pair_the_rounds_that_ran_back_to_back() {
        let rounds = |name: Name, values: &[f64]| {
            median_of(
                values
                    .iter()
                    .map(|&v| row(Case::PingPong, name, Driver::Threads, v))
                    .collect(),
            )
            .unwrap()
        };
        // Round 2 was slow for both, round 3 fast for the base alone: per round the
        // ratios are 1.0, 0.5 and 2.0, their median 1.0; the medians' ratio is 20/15.
        let ours = rounds(Name::RinglinkUds, &[10.0, 20.0, 30.0]);
        let base = rounds(Name::Std, &[10.0, 40.0, 15.0]);
        assert_eq!(paired_ratio(&ours, &base), Some(1.0));
        // A failed round drops out of the pairs; an even count takes the middle two.
        let mut failed = row(Case::PingPong, Name::Std, Driver::Threads, 0.0);
        failed.round_trips_per_s = None;
        failed.error = Some("timed out".into());
        let base = median_of(vec![
            row(Case::PingPong, Name::Std, Driver::Threads, 10.0),
            row(Case::PingPong, Name::Std, Driver::Threads, 10.0),
            failed,
        ])
        .unwrap();
        let ours = rounds(Name::RinglinkUds, &[20.0, 30.0, 99.0]);
        assert_eq!(paired_ratio(&ours, &base), Some(2.5));
        // Rows of different round counts (a quick run against a full one) fall back.
        let one = rounds(Name::RinglinkUds, &[20.0]);
        assert_eq!(paired_ratio(&one, &base), Some(2.0));
        // Six rounds, ours first in the even ones (1.1x) and second in the odd ones
        // (0.9x): the median sits between the two orders, not on either.
        let ours = rounds(Name::RinglinkUds, &[11.0, 9.0, 11.0, 9.0, 11.0, 9.0]);
        let base = rounds(Name::Std, &[10.0; 6]);
        let ratio = paired_ratio(&ours, &base).unwrap();
        assert!((ratio - 1.0).abs() < 1e-9, "{ratio}");
        assert_eq!(
            crate::plan::Timing::new(false, None).rounds % 2,
            0,
            "the full run makes as many rounds in each order"
        );
        // The JSON carries every round's figure, in the order the rounds ran.
        let json = serde_json::to_value(&ours).unwrap();
        assert_eq!(json["round_values"][1], serde_json::json!(9.0));
    }

    #[test]
    fn turns_fold_into_their_work_over_their_time() {
        let turn = |value: f64, seconds: f64, cpu: f64, rss: u64| {
            let mut m = row(Case::DataExchange, Name::Std, Driver::Threads, value);
            m.seconds = Some(seconds);
            m.cpu_seconds = Some(cpu);
            m.peak_rss_kib = Some(rss);
            m
        };
        // 100 MiB/s for 1 s and 400 MiB/s for 0.5 s: 300 MiB in 1.5 s.
        let m = fold_turns(vec![turn(100.0, 1.0, 0.5, 10), turn(400.0, 0.5, 0.25, 30)]).unwrap();
        assert_eq!(m.value(), Some(200.0));
        assert_eq!(m.seconds, Some(1.5));
        assert_eq!(m.cpu_seconds, Some(0.75));
        assert_eq!(m.peak_rss_kib, Some(30));
        // A failed turn fails the round, whatever the turns around it measured.
        let mut failed = turn(0.0, 1.0, 0.0, 0);
        failed.mib_per_s = None;
        failed.error = Some("timed out while echoing".into());
        let m = fold_turns(vec![turn(100.0, 1.0, 0.5, 10), failed.clone()]).unwrap();
        assert_eq!(m.error, failed.error);
        assert_eq!(m.value(), None);
        let m = fold_turns(vec![failed.clone(), turn(100.0, 1.0, 0.5, 10)]).unwrap();
        assert_eq!(m.error, failed.error);
        assert!(fold_turns(Vec::new()).is_none());
    }

    #[test]
    fn the_median_round_is_kept_with_its_spread_and_failures_counted() {
        let r = |v: f64| row(Case::PingPong, Name::Std, Driver::Threads, v);
        let mut failed = r(0.0);
        failed.round_trips_per_s = None;
        failed.error = Some("timed out".into());
        let m = median_of(vec![
            r(10.0),
            failed.clone(),
            r(30.0),
            r(20.0),
            r(40.0),
            r(25.0),
        ])
        .unwrap();
        assert_eq!(m.value(), Some(25.0));
        assert_eq!((m.runs, m.failed_runs), (6, 1));
        assert_eq!(m.spread, Some(30.0 / 25.0));
        assert!(m.error.is_none());
        let all_failed = median_of(vec![failed.clone(), failed]).unwrap();
        assert!(all_failed.error.is_some());
        assert_eq!((all_failed.runs, all_failed.failed_runs), (2, 2));
        assert_eq!(median_of(vec![r(5.0)]).unwrap().spread, None);
    }

    #[test]
    fn json_keeps_its_field_names_and_strings() {
        let dir =
            std::env::temp_dir().join(format!("ringlink-bench-report-{}", std::process::id()));
        let results = vec![
            row(Case::PingPong, Name::Std, Driver::Threads, 200.0),
            row(Case::DataExchange, Name::Std, Driver::Threads, 900.0),
            row(Case::Core, Name::Rtrb, Driver::TwoThreads, 4.0),
        ];
        let machine = Machine::probe(true);
        write_json(&dir.join("r.json"), &machine, &results).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
        let first = &json["results"][0];
        assert_eq!(first["case"], "pingPong");
        assert_eq!(first["transport"], "std");
        assert_eq!(first["model"], "threads");
        assert_eq!(first["round_trips_per_s"], 200.0);
        assert!(first["mib_per_s"].is_null());
        assert_eq!(json["results"][2]["model"], "2 threads");
        assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
