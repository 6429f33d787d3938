//! The terminal table: one section per case, every row naming its driver, the `vs`
//! column comparing it with its like (see [`super::likes`]) and the spread of its rounds.

use std::fmt::Write as _;

use super::{Measurement, bytes, vs_like};
use crate::names::Case;

fn human(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The notes column: busy cores, memory per connection, failure or skip reason.
fn notes(m: &Measurement) -> String {
    let mut notes = String::new();
    // Over a fixed-time row, CPU time / wall time: how many cores both sides kept busy.
    if let (Case::DataExchange, Some(cpu), Some(secs)) = (m.case, m.cpu_seconds, m.seconds) {
        let _ = write!(notes, "{:.2} cores busy", cpu / secs);
    }
    if let (Case::Idle, Some(cpu)) = (m.case, m.cpu_seconds) {
        let _ = write!(notes, "{:.0} us CPU in all", cpu * 1e6);
    }
    if let Some(p) = m.rss_per_connection {
        let _ = write!(
            notes,
            "{:.1} / {:.1} KiB per conn",
            p.client_kib, p.server_kib
        );
    }
    if m.failed_runs > 0 && m.error.is_none() {
        let _ = write!(notes, " ({} of {} rounds failed)", m.failed_runs, m.runs);
    }
    if let Some(e) = &m.error {
        notes = format!("FAILED: {e}");
    }
    if let Some(why) = &m.skipped {
        notes = format!("not run: {why}");
    }
    notes
}

const SECTIONS: [(Case, &str); 4] = [
    (
        Case::PingPong,
        "pingPong: 1-byte echo, round trips split over the connections",
    ),
    (
        Case::DataExchange,
        "dataExchange: chunk echoed back on every receive, fixed time",
    ),
    (Case::Core, "core: in-process ring, two threads, GiB/s"),
    (
        Case::Idle,
        "idle: a connected pair after 10,000 round trips, then nothing sent",
    ),
];

/// The table of `results`.
pub fn table(results: &[Measurement]) -> String {
    let mut out = String::new();
    for (case, title) in SECTIONS {
        let rows: Vec<&Measurement> = results.iter().filter(|m| m.case == case).collect();
        let Some(first) = rows.first() else { continue };
        let _ = writeln!(out, "\n{title}");
        let _ = writeln!(
            out,
            "{:>6} {:>6}  {:<19} {:<15} {:>8} {:>14} {:>7} {:>20}  notes",
            "conns",
            "chunk",
            "transport",
            "driven by",
            "seconds",
            first.unit(),
            "spread",
            "vs like",
        );
        for m in rows {
            let conns = if m.server_in_child {
                format!("{}*", m.connections)
            } else {
                m.connections.to_string()
            };
            let seconds = m.seconds.map_or("-".into(), |s| format!("{s:.3}"));
            let value = m.value().map_or("-".into(), human);
            let spread = m
                .spread
                .map_or("-".into(), |s| format!("{:.0}%", s * 100.0));
            let vs = vs_like(results, m).map_or("-".into(), |(peer, r)| format!("{r:.2}x {peer}"));
            let _ = writeln!(
                out,
                "{conns:>6} {:>6}  {:<19} {:<15} {seconds:>8} {value:>14} {spread:>7} {vs:>20}  {}",
                bytes(m.chunk),
                m.transport,
                m.model,
                notes(m),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Driver, Name};
    use crate::report::tests::row;

    #[test]
    fn the_table_names_drivers_likes_and_spreads() {
        let mut uds = row(Case::PingPong, Name::RinglinkUds, Driver::Epoll, 150.0);
        uds.spread = Some(0.12);
        let results = vec![
            row(Case::PingPong, Name::StdEpoll, Driver::Epoll, 100.0),
            uds,
            row(Case::Core, Name::Rtrb, Driver::TwoThreads, 4.0),
            row(Case::Core, Name::RinglinkRing, Driver::TwoThreads, 6.0),
        ];
        let table = table(&results);
        assert!(table.contains("1.50x std-epoll"), "{table}");
        assert!(table.contains("1.50x rtrb"), "{table}");
        assert!(table.contains("12%"), "{table}");
        assert!(table.contains("epoll"), "{table}");
    }
}
