//! The results of a run: one [`Measurement`] per row, printed as a table with a ratio
//! column, written as JSON and drawn as an SVG chart.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::machine::Machine;

/// `"pingPong"`.
pub const PING_PONG: &str = "pingPong";
/// `"dataExchange"`.
pub const DATA_EXCHANGE: &str = "dataExchange";
/// `"core"`.
pub const CORE: &str = "core";
/// `"idle"`: a connected pair with nothing to send.
pub const IDLE: &str = "idle";

/// Per-connection memory of the client and the server process.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PerConnection {
    /// (Client peak RSS − its RSS before connecting) / connections, KiB.
    pub client_kib: f64,
    /// (Server peak RSS − its RSS before listening) / connections, KiB.
    pub server_kib: f64,
}

/// One row of the report (the JSON object of the issue, plus a few fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measurement {
    /// `"pingPong"`, `"dataExchange"` or `"core"`.
    pub case: &'static str,
    /// The transport or ring.
    pub transport: &'static str,
    /// How its connections were driven (`"epoll"`, `"threads"`, `"tokio tasks"`, `"spin"`).
    pub model: &'static str,
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
    /// User + system CPU seconds of the whole process over the row's best run, setup
    /// included (in-process rows only): against `seconds`, how busy both sides were.
    pub cpu_seconds: Option<f64>,
    /// Runs behind this row (the best is reported).
    pub runs: u32,
    /// Runs that failed (a row fails only when all did).
    pub failed_runs: u32,
    /// Why the row failed.
    pub error: Option<String>,
    /// Why the row was not run (the transport cannot run it on this machine).
    pub skipped: Option<String>,
}

impl Measurement {
    /// An empty row for `case`/`transport`.
    pub fn new(
        case: &'static str,
        transport: &'static str,
        model: &'static str,
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
            error: None,
            skipped: None,
        }
    }

    /// Of two runs of one row, the one with the higher figure (a success over a
    /// failure), counting both.
    pub fn better_of(self, other: Measurement) -> Measurement {
        let runs = self.runs + other.runs;
        let failures = |m: &Measurement| m.failed_runs.max(u32::from(m.error.is_some()));
        let failed_runs = failures(&self) + failures(&other);
        let keep_self = match (self.value(), other.value()) {
            (Some(a), Some(b)) if self.case == IDLE => a <= b,
            (Some(a), Some(b)) => a >= b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => true,
        };
        let mut best = if keep_self { self } else { other };
        best.runs = runs;
        best.failed_runs = failed_runs;
        best
    }

    /// The figure the table shows and the ratio compares.
    pub fn value(&self) -> Option<f64> {
        match self.case {
            PING_PONG => self.round_trips_per_s,
            CORE => self.gib_per_s,
            // Per cent of one core over the idle window (lower is better).
            IDLE => Some(self.cpu_seconds? / self.seconds? * 100.0),
            _ => self.mib_per_s,
        }
    }

    fn unit(&self) -> &'static str {
        match self.case {
            PING_PONG => "round trips/s",
            CORE => "GiB/s",
            IDLE => "% of a core",
            _ => "MiB/s",
        }
    }

    fn same_row(&self, other: &Measurement) -> bool {
        self.case == other.case
            && self.connections == other.connections
            && self.chunk == other.chunk
            && self.server_in_child == other.server_in_child
    }
}

/// The row each row is compared with: std for sockets, rtrb for the core rings.
pub fn baseline_of(case: &str) -> &'static str {
    if case == CORE { "rtrb" } else { "std" }
}

/// `value / baseline value` for `m`, when both exist (none for idle rows: a
/// baseline near zero makes no ratio).
pub fn ratio(results: &[Measurement], m: &Measurement) -> Option<f64> {
    if m.case == IDLE {
        return None;
    }
    let base = baseline_of(m.case);
    let b = results
        .iter()
        .find(|r| r.transport == base && r.same_row(m))?
        .value()?;
    Some(m.value()? / b)
}

/// `250k`, `1.5M`: axis labels.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn human(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn bytes(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}K", n / 1024)
    } else {
        n.to_string()
    }
}

/// The terminal table: one section per case, a ratio column against the baseline.
pub fn table(results: &[Measurement]) -> String {
    let mut out = String::new();
    for (case, title) in [
        (
            PING_PONG,
            "pingPong: 1-byte echo, round trips split over the connections",
        ),
        (
            DATA_EXCHANGE,
            "dataExchange: chunk echoed back on every receive, fixed time",
        ),
        (CORE, "core: in-process ring, two threads, GiB/s"),
        (
            IDLE,
            "idle: a connected pair after 10,000 round trips, then nothing sent",
        ),
    ] {
        let rows: Vec<&Measurement> = results.iter().filter(|m| m.case == case).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        let _ = writeln!(
            out,
            "{:>6} {:>6}  {:<20} {:<15} {:>8} {:>14} {:>9}  notes",
            "conns",
            "chunk",
            "transport",
            "driven by",
            "seconds",
            rows[0].unit(),
            format!("vs {}", baseline_of(case)),
        );
        for m in rows {
            let conns = if m.server_in_child {
                format!("{}*", m.connections)
            } else {
                m.connections.to_string()
            };
            let seconds = m.seconds.map_or("-".into(), |s| format!("{s:.3}"));
            let value = m.value().map_or("-".into(), human);
            let ratio = ratio(results, m).map_or("-".into(), |r| format!("{r:.2}x"));
            let mut memory = String::new();
            // Over a fixed-time row, CPU time / wall time: how many cores both sides kept busy.
            if let (DATA_EXCHANGE, Some(cpu), Some(secs)) = (m.case, m.cpu_seconds, m.seconds) {
                let _ = write!(memory, "{:.2} cores busy", cpu / secs);
            }
            if let (IDLE, Some(cpu)) = (m.case, m.cpu_seconds) {
                let _ = write!(memory, "{:.0} us CPU in all", cpu * 1e6);
            }
            if let Some(p) = m.rss_per_connection {
                let _ = write!(
                    memory,
                    "{:.1} / {:.1} KiB per conn",
                    p.client_kib, p.server_kib
                );
            }
            if let Some(e) = &m.error {
                memory = format!("FAILED: {e}");
            }
            if let Some(why) = &m.skipped {
                memory = format!("not run: {why}");
            }
            let _ = writeln!(
                out,
                "{conns:>6} {:>6}  {:<20} {:<15} {seconds:>8} {value:>14} {ratio:>9}  {memory}",
                bytes(m.chunk),
                m.transport,
                m.model,
            );
        }
    }
    if results.iter().any(|m| m.server_in_child) {
        out.push_str(
            "\n* server in a child process; notes: client / server peak RSS growth per connection\n",
        );
    }
    out
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

const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// Draws the three cases as an SVG chart at `path`.
pub fn write_svg(path: &Path, results: &[Measurement]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    // One panel per case that has rows.
    let present: Vec<&str> = [PING_PONG, DATA_EXCHANGE, CORE]
        .into_iter()
        .filter(|case| results.iter().any(|m| m.case == *case))
        .collect();
    let height = 500 * present.len().max(1) as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((present.len().max(1), 1));
    let panel = |case: &str| present.iter().position(|c| *c == case).map(|i| &panels[i]);
    let transports = |case: &str| -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for m in results.iter().filter(|m| m.case == case) {
            if !names.contains(&m.transport) {
                names.push(m.transport);
            }
        }
        names
    };
    let max_of = |case: &str| {
        results
            .iter()
            .filter(|m| m.case == case)
            .filter_map(Measurement::value)
            .fold(1.0_f64, f64::max)
    };

    // pingPong: round trips/s against connections (log scale).
    if let Some(area) = panel(PING_PONG) {
        let mut chart = ChartBuilder::on(area)
            .caption(
                "pingPong: round trips/s (higher is better)",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0.8f64..15000f64).log_scale(),
                0f64..max_of(PING_PONG) * 1.1,
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| si(*y))
            .x_desc("connections (10000: server in a child process)")
            .y_desc("round trips/s")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, t) in transports(PING_PONG).into_iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = results
                .iter()
                .filter(|m| m.case == PING_PONG && m.transport == t)
                .filter_map(|m| Some((m.connections as f64, m.value()?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(t)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }

    // dataExchange: MiB/s for each (connections, chunk) pair.
    if let Some(area) = panel(DATA_EXCHANGE) {
        let mut pairs: Vec<(u64, u64)> = Vec::new();
        for m in results.iter().filter(|m| m.case == DATA_EXCHANGE) {
            if !pairs.contains(&(m.connections, m.chunk)) {
                pairs.push((m.connections, m.chunk));
            }
        }
        let labels = pairs.clone();
        let mut chart = ChartBuilder::on(area)
            .caption(
                "dataExchange: MiB/s received (higher is better)",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                -0.5f64..(pairs.len().max(1) as f64 - 0.5),
                (1f64..max_of(DATA_EXCHANGE) * 2.0).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(pairs.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 0.01 || i < 0.0 {
                    return String::new();
                }
                labels
                    .get(i as usize)
                    .map_or(String::new(), |(c, k)| format!("{c}x{}", bytes(*k)))
            })
            .y_label_formatter(&|y| si(*y))
            .x_desc("connections x chunk bytes")
            .y_desc("MiB/s")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, t) in transports(DATA_EXCHANGE).into_iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(u64, f64, f64)> = results
                .iter()
                .filter(|m| m.case == DATA_EXCHANGE && m.transport == t)
                .filter_map(|m| {
                    let x = pairs.iter().position(|p| *p == (m.connections, m.chunk))?;
                    Some((m.connections, x as f64, m.value()?))
                })
                .collect();
            // One line per connection count, one legend entry per transport.
            let mut groups: Vec<u64> = points.iter().map(|p| p.0).collect();
            groups.dedup();
            for (g, connections) in groups.into_iter().enumerate() {
                let line: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.0 == connections)
                    .map(|p| (p.1, p.2))
                    .collect();
                let series = chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if g == 0 {
                    series.label(t).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            let points: Vec<(f64, f64)> = points.into_iter().map(|p| (p.1, p.2)).collect();
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }

    // core: GiB/s against chunk size (log-log).
    if let Some(area) = panel(CORE) {
        let mut chart = ChartBuilder::on(area)
            .caption(
                "core rings between two threads: GiB/s (higher is better)",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0.8f64..90000f64).log_scale(),
                (0.001f64..max_of(CORE) * 2.0).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("chunk bytes")
            .y_desc("GiB/s")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, t) in transports(CORE).into_iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = results
                .iter()
                .filter(|m| m.case == CORE && m.transport == t)
                .filter_map(|m| Some((m.chunk as f64, m.value()?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(t)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// The smallest `a / b` over the rows of `cases` where both transports have a figure.
fn worst_ratio<'a>(
    results: &'a [Measurement],
    cases: &[&str],
    a: &str,
    b: &str,
) -> Option<(f64, &'a Measurement)> {
    results
        .iter()
        .filter(|m| cases.contains(&m.case) && m.transport == a)
        .filter_map(|m| {
            let other = results.iter().find(|o| o.transport == b && o.same_row(m))?;
            Some((m.value()? / other.value()?, m))
        })
        .min_by(|x, y| x.0.total_cmp(&y.0))
}

/// pingPong seconds at 5,000 connections over seconds at 100 (in one process).
pub fn scaling(results: &[Measurement], transport: &str) -> Option<f64> {
    let secs = |n: u64| {
        results
            .iter()
            .find(|m| {
                m.case == PING_PONG
                    && m.transport == transport
                    && m.connections == n
                    && !m.server_in_child
            })?
            .seconds
    };
    Some(secs(5000)? / secs(100)?)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The shared-memory transport's goals: pingPong with 1 connection at least 10x
/// std, dataExchange with 100,000-byte chunks at least 2x std, an idle pair under
/// 1% of a core.
fn shared_memory_goals(results: &[Measurement], out: &mut String) {
    const SHM: &str = "ringlink-shm";
    let find = |case: &str, t: &str, conns: u64, chunk: u64| {
        results.iter().find(|m| {
            m.case == case
                && m.transport == t
                && m.connections == conns
                && m.chunk == chunk
                && !m.server_in_child
        })
    };
    if let Some(r) = find(PING_PONG, SHM, 1, 1).and_then(|m| ratio(results, m)) {
        let _ = writeln!(
            out,
            "  {SHM} vs std, pingPong 1 conn: {r:.2}x; goal >= 10x: {}",
            verdict(r >= 10.0)
        );
    }
    let exchange: Vec<(u64, f64)> = results
        .iter()
        .filter(|m| m.case == DATA_EXCHANGE && m.transport == SHM && m.chunk == 100_000)
        .filter_map(|m| Some((m.connections, ratio(results, m)?)))
        .collect();
    if let Some(worst) = exchange.iter().map(|e| e.1).min_by(f64::total_cmp) {
        let rows: Vec<String> = exchange
            .iter()
            .map(|(c, r)| format!("{c} conns {r:.2}x"))
            .collect();
        let _ = writeln!(
            out,
            "  {SHM} vs std, dataExchange 100000-byte chunks: {}; goal >= 2x: {}",
            rows.join(", "),
            verdict(worst >= 2.0)
        );
    }
    let idle: Vec<&Measurement> = results
        .iter()
        .filter(|m| m.case == IDLE && m.transport.starts_with(SHM))
        .collect();
    if !idle.is_empty() {
        let worst = idle.iter().filter_map(|m| m.value()).max_by(f64::total_cmp);
        let rows: Vec<String> = idle
            .iter()
            .map(|m| {
                m.value().map_or_else(
                    || format!("{} failed", m.transport),
                    |v| format!("{} {v:.3}%", m.transport),
                )
            })
            .collect();
        let met = idle.iter().all(|m| m.value().is_some()) && worst.is_some_and(|w| w < 1.0);
        let _ = writeln!(
            out,
            "  idle pair, CPU over the window: {}; goal < 1% of a core: {}",
            rows.join(", "),
            verdict(met)
        );
    }
}

/// The goals of the benchmark issue, checked against this run.
pub fn goals(results: &[Measurement]) -> String {
    let mut out = String::from("\ngoals\n");
    let sockets = [PING_PONG, DATA_EXCHANGE];
    let mut ringlink: Vec<&'static str> = Vec::new();
    for m in results
        .iter()
        .filter(|m| m.case != CORE && m.transport.starts_with("ringlink"))
    {
        if !ringlink.contains(&m.transport) {
            ringlink.push(m.transport);
        }
    }
    for t in &ringlink {
        for (peer, floor) in [("std", 0.95), ("tokio", 1.0), ("interprocess", 1.0)] {
            if let Some((r, m)) = worst_ratio(results, &sockets, t, peer) {
                let _ = writeln!(
                    out,
                    "  {t} vs {peer}: worst row {r:.2}x ({} {} conns, chunk {}); goal >= {floor:.2}x: {}",
                    m.case,
                    m.connections,
                    m.chunk,
                    verdict(r >= floor)
                );
            }
        }
    }
    shared_memory_goals(results, &mut out);
    let mut scal = Vec::new();
    let mut names: Vec<&'static str> = Vec::new();
    for m in results.iter().filter(|m| m.case == PING_PONG) {
        if !names.contains(&m.transport) {
            names.push(m.transport);
        }
    }
    for t in names {
        if let Some(s) = scaling(results, t) {
            scal.push(format!("{t} {s:.2}x"));
        }
    }
    if !scal.is_empty() {
        let _ = writeln!(
            out,
            "  pingPong time, 5000 vs 100 connections (goal <= 1.5x for ringlink): {}",
            scal.join(", ")
        );
    }
    if let Some((r, m)) = worst_ratio(results, &[CORE], "ringlink-ring", "rtrb") {
        let _ = writeln!(
            out,
            "  ringlink-ring vs rtrb: worst chunk {} at {r:.2}x; goal >= 1.00x: {}",
            m.chunk,
            verdict(r >= 1.0)
        );
    }
    // heapless moves bytes one `enqueue` at a time; the ring moves the same chunks as slices.
    let chunked: Vec<Measurement> = results
        .iter()
        .filter(|m| m.case == CORE && m.chunk > 1)
        .cloned()
        .collect();
    if let Some((r, m)) = worst_ratio(&chunked, &[CORE], "ringlink-ring", "heapless-bytes") {
        let _ = writeln!(
            out,
            "  ringlink-ring vs heapless byte by byte, same chunks: worst chunk {} at {r:.2}x; goal >= 2.00x: {}",
            m.chunk,
            verdict(r >= 2.0)
        );
    }
    let single = |t: &str| {
        results
            .iter()
            .find(|m| m.case == CORE && m.chunk == 1 && m.transport == t)
            .and_then(Measurement::value)
    };
    if let (Some(ring), Some(heapless)) = (single("ringlink-ring"), single("heapless-bytes")) {
        let _ = writeln!(
            out,
            "  single-byte operations: ringlink-ring {:.3} GiB/s, heapless {:.3} GiB/s ({:.2}x)",
            ring,
            heapless,
            ring / heapless
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &'static str, transport: &'static str, value: f64) -> Measurement {
        let mut m = Measurement::new(case, transport, "x", 10, 1);
        m.seconds = Some(1.0);
        match case {
            PING_PONG => m.round_trips_per_s = Some(value),
            CORE => m.gib_per_s = Some(value),
            _ => m.mib_per_s = Some(value),
        }
        m
    }

    #[test]
    fn ratios_compare_with_the_baseline_of_the_same_row() {
        let mut other_row = row(PING_PONG, "std", 1.0);
        other_row.connections = 100;
        let results = vec![
            other_row,
            row(PING_PONG, "std", 200.0),
            row(PING_PONG, "tokio", 100.0),
            row(CORE, "rtrb", 4.0),
            row(CORE, "ringlink-ring", 6.0),
        ];
        assert_eq!(ratio(&results, &results[2]), Some(0.5));
        assert_eq!(ratio(&results, &results[1]), Some(1.0));
        assert_eq!(ratio(&results, &results[4]), Some(1.5));
        let table = table(&results);
        assert!(table.contains("0.50x"), "{table}");
        assert!(table.contains("1.50x"), "{table}");
    }

    #[test]
    fn the_best_run_of_a_row_is_kept_and_failures_counted() {
        let mut failed = row(PING_PONG, "std", 0.0);
        failed.round_trips_per_s = None;
        failed.error = Some("timed out".into());
        let best = row(PING_PONG, "std", 10.0)
            .better_of(failed.clone())
            .better_of(row(PING_PONG, "std", 30.0))
            .better_of(row(PING_PONG, "std", 20.0));
        assert_eq!(best.value(), Some(30.0));
        assert_eq!((best.runs, best.failed_runs), (4, 1));
        assert!(best.error.is_none());
        let all_failed = failed.clone().better_of(failed);
        assert!(all_failed.error.is_some());
        assert_eq!((all_failed.runs, all_failed.failed_runs), (2, 2));
    }

    #[test]
    fn json_and_svg_are_written() {
        let dir =
            std::env::temp_dir().join(format!("ringlink-bench-report-{}", std::process::id()));
        let results = vec![
            row(PING_PONG, "std", 200.0),
            row(DATA_EXCHANGE, "std", 900.0),
            row(CORE, "rtrb", 4.0),
        ];
        let machine = Machine::probe(true);
        write_json(&dir.join("r.json"), &machine, &results).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
        assert_eq!(json["results"][0]["case"], "pingPong");
        assert_eq!(json["results"][0]["round_trips_per_s"], 200.0);
        assert!(json["results"][0]["mib_per_s"].is_null());
        assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
        write_svg(&dir.join("r.svg"), &results).unwrap();
        let svg = std::fs::read_to_string(dir.join("r.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("pingPong"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
