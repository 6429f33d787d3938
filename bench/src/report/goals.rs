//! The goals block: each goal of the benchmark read against its like (ringlink-uds, or
//! ringlink-pipe on Windows, under threads against std, under epoll against std-epoll,
//! under tokio against tokio and interprocess), then the best driver of each transport against the best of each
//! peer, Qt's own rows, shared memory and the core rings.

use std::fmt::Write as _;

use super::{Measurement, likes, paired_ratio, ratio_to};
use crate::names::{Case, Driver, DriverKind, Name};

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

const SOCKETS: [Case; 2] = [Case::PingPong, Case::DataExchange];

/// `pingPong 10 conns, chunk 1`.
fn where_(m: &Measurement) -> String {
    format!(
        "{} {} conns{}, chunk {}",
        m.case,
        m.connections,
        if m.server_in_child { " (child)" } else { "" },
        m.chunk
    )
}

/// The smallest ratio of `a` over `b`, among the rows where both have a figure.
fn worst<'a>(
    pairs: impl Iterator<Item = (f64, &'a Measurement)>,
) -> Option<(f64, &'a Measurement)> {
    pairs.min_by(|x, y| x.0.total_cmp(&y.0))
}

/// What a transport is, whatever drives it: `ringlink-shm-tokio` is `ringlink-shm`,
/// `std-epoll` is `std`.
pub fn family(name: Name) -> Name {
    match name {
        Name::RinglinkShmTokio | Name::RinglinkShmCopy => Name::RinglinkShm,
        Name::StdEpoll => Name::Std,
        other => other,
    }
}

/// The best figure of `family` on the workload of `m` (any driver).
fn best_of<'a>(results: &'a [Measurement], m: &Measurement, fam: Name) -> Option<&'a Measurement> {
    results
        .iter()
        .filter(|r| family(r.transport) == fam && r.same_row(m) && r.value().is_some())
        .max_by(|a, b| {
            a.value()
                .unwrap_or(0.0)
                .total_cmp(&b.value().unwrap_or(0.0))
        })
}

/// Each ringlink socket transport under each driver against each of its likes.
fn like_for_like(results: &[Measurement], out: &mut String) {
    let mut keys = Vec::new();
    for m in results
        .iter()
        .filter(|m| SOCKETS.contains(&m.case) && m.transport.is_ringlink())
    {
        if !keys.contains(&(m.transport, m.model)) {
            keys.push((m.transport, m.model));
        }
    }
    for (t, driver) in keys {
        for &(peer, kind) in likes(t, driver) {
            let rows = results
                .iter()
                .filter(|m| SOCKETS.contains(&m.case) && m.transport == t && m.model == driver);
            let Some((r, m)) =
                worst(rows.filter_map(|m| Some((ratio_to(results, m, peer, kind)?, m))))
            else {
                continue;
            };
            let goal = match t {
                Name::RinglinkUds | Name::RinglinkPipe => {
                    format!("; goal >= 0.98x: {}", verdict(r >= 0.98))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {t} ({driver}) vs {peer}: worst row {r:.2}x ({}){goal}",
                where_(m)
            );
        }
    }
}

/// The best driver of each ringlink transport against the best driver of each peer.
fn best_against_best(results: &[Measurement], out: &mut String) {
    let mut ours = Vec::new();
    let mut peers = Vec::new();
    for m in results.iter().filter(|m| SOCKETS.contains(&m.case)) {
        let f = family(m.transport);
        let list = if f.is_ringlink() {
            &mut ours
        } else {
            &mut peers
        };
        if !list.contains(&f) {
            list.push(f);
        }
    }
    for &t in &ours {
        let mut parts = Vec::new();
        for &p in &peers {
            let pairs = results
                .iter()
                .filter(|m| SOCKETS.contains(&m.case) && family(m.transport) == t)
                .filter(|m| best_of(results, m, t).is_some_and(|b| std::ptr::eq(b, *m)))
                .filter_map(|m| Some((paired_ratio(m, best_of(results, m, p)?)?, m)));
            if let Some((r, m)) = worst(pairs) {
                parts.push(format!("{p} {r:.2}x ({})", where_(m)));
            }
        }
        if !parts.is_empty() {
            let _ = writeln!(
                out,
                "  best {t} vs best of, worst row: {}",
                parts.join("; ")
            );
        }
    }
}

/// Qt's goals: ringlink's best transport at least 10x Qt on pingPong with 1 and 10
/// connections, and ringlink-uds (its best driver) at least Qt on every row.
fn against_qt(results: &[Measurement], out: &mut String) {
    let qt_rows: Vec<&Measurement> = results
        .iter()
        .filter(|m| m.transport == Name::Qt && m.value().is_some())
        .collect();
    if qt_rows.is_empty() {
        return;
    }
    let mut ping = Vec::new();
    let mut met = true;
    for q in qt_rows.iter().filter(|q| {
        q.case == Case::PingPong && [1, 10].contains(&q.connections) && !q.server_in_child
    }) {
        let best = results
            .iter()
            .filter(|m| m.transport.is_ringlink() && m.same_row(q) && m.value().is_some())
            .max_by(|a, b| {
                a.value()
                    .unwrap_or(0.0)
                    .total_cmp(&b.value().unwrap_or(0.0))
            });
        if let (Some(b), Some(qv)) = (best, q.value()) {
            let r = b.value().unwrap_or(0.0) / qv;
            met &= r >= 10.0;
            ping.push(format!("{} conns {r:.1}x ({})", q.connections, b.label()));
        }
    }
    if !ping.is_empty() {
        let _ = writeln!(
            out,
            "  best ringlink vs Qt, pingPong: {}; goal >= 10x: {}",
            ping.join(", "),
            verdict(met)
        );
    }
    let pairs = qt_rows.iter().filter_map(|q| {
        let b = best_of(results, q, Name::RinglinkUds)?;
        Some((paired_ratio(b, q)?, *q))
    });
    if let Some((r, m)) = worst(pairs) {
        let _ = writeln!(
            out,
            "  best ringlink-uds vs Qt: worst row {r:.2}x ({}); goal >= 1x: {}",
            where_(m),
            verdict(r >= 1.0)
        );
    }
}

/// The row of `t` on `case` with `conns` connections and `chunk`-byte chunks, under
/// `driver` (any driver: `None`).
fn row_at(
    results: &[Measurement],
    t: Name,
    case: Case,
    conns: u64,
    chunk: u64,
    driver: Option<Driver>,
) -> Option<&Measurement> {
    results.iter().find(|m| {
        m.case == case
            && m.transport == t
            && m.connections == conns
            && m.chunk == chunk
            && driver.is_none_or(|d| m.model == d)
    })
}

/// Shared memory's goals: pingPong with 1 connection at least iceoryx2's spinning
/// pair and 10x std, its tokio stream at least 2x tokio, dataExchange with
/// 100,000-byte chunks at least 2x std (each connection count, ringlink-shm's best
/// driver), the 5000- and 10,000-connection pingPong rows ahead of ringlink-uds, an
/// idle pair under 1% of a core; then every ringlink-shm row against iceoryx2 driven
/// alike.
fn shared_memory(results: &[Measurement], out: &mut String) {
    let row = |t, case, conns, chunk, driver| row_at(results, t, case, conns, chunk, driver);
    let value_of = |m: Option<&Measurement>| m.and_then(Measurement::value);
    let ratio =
        |a: Option<&Measurement>, b: Option<&Measurement>| Some(value_of(a)? / value_of(b)?);
    let threads = row(
        Name::RinglinkShm,
        Case::PingPong,
        1,
        1,
        Some(Driver::ThreadsSplice),
    );
    let std_threads = row(Name::Std, Case::PingPong, 1, 1, Some(Driver::Threads));
    let ice_spin = row(Name::Iceoryx2, Case::PingPong, 1, 1, Some(Driver::Spinning));
    if let (Some(r_ice), Some(r_std)) = (ratio(threads, ice_spin), ratio(threads, std_threads)) {
        let _ = writeln!(
            out,
            "  ringlink-shm pingPong 1 conn: {r_ice:.2}x iceoryx2 (spinning), {r_std:.2}x std; goal >= 1x and >= 10x: {}",
            verdict(r_ice >= 1.0 && r_std >= 10.0)
        );
    }
    let shm_tokio = row(Name::RinglinkShmTokio, Case::PingPong, 1, 1, None);
    let tokio = row(Name::Tokio, Case::PingPong, 1, 1, None);
    if let Some(r) = ratio(shm_tokio, tokio) {
        let _ = writeln!(
            out,
            "  ringlink-shm-tokio vs tokio, pingPong 1 conn: {r:.2}x; goal >= 2x: {}",
            verdict(r >= 2.0)
        );
    }
    let mut exchange = Vec::new();
    for conns in crate::plan::EXCHANGE_CONNECTIONS {
        let conns = conns as u64;
        let Some(shm) = row(Name::RinglinkShm, Case::DataExchange, conns, 100_000, None) else {
            continue;
        };
        let best = best_of(results, shm, Name::RinglinkShm);
        let std = row(
            Name::Std,
            Case::DataExchange,
            conns,
            100_000,
            Some(Driver::Threads),
        );
        if let (Some(b), Some(r)) = (best, ratio(best, std)) {
            exchange.push((r, format!("{conns} conns {r:.2}x ({})", b.model)));
        }
    }
    if !exchange.is_empty() {
        let met = exchange.iter().all(|(r, _)| *r >= 2.0);
        let rows: Vec<String> = exchange.into_iter().map(|(_, s)| s).collect();
        let _ = writeln!(
            out,
            "  ringlink-shm vs std, dataExchange 100000-byte chunks: {}; goal >= 2x: {}",
            rows.join(", "),
            verdict(met)
        );
    }
    let mut wide = Vec::new();
    let mut wide_met = true;
    // The widest pingPong rows (10,000: the child-process row, on Unix).
    for conns in [5000, 10_000] {
        let Some(any) = results
            .iter()
            .find(|m| m.case == Case::PingPong && m.connections == conns)
        else {
            continue;
        };
        let shm = best_of(results, any, Name::RinglinkShm);
        let uds = best_of(results, any, Name::RinglinkUds);
        match ratio(shm, uds) {
            Some(r) => {
                wide_met &= r > 1.0;
                wide.push(format!("{conns} conns {r:.2}x"));
            }
            None => {
                wide_met = false;
                wide.push(format!("{conns} conns not run"));
            }
        }
    }
    if !wide.is_empty() {
        let _ = writeln!(
            out,
            "  best ringlink-shm vs best ringlink-uds, pingPong: {}; goal > 1x: {}",
            wide.join(", "),
            verdict(wide_met)
        );
    }
    for (t, kind) in [
        (Name::RinglinkShm, DriverKind::Spinning),
        (Name::RinglinkShmTokio, DriverKind::EventDriven),
    ] {
        let rows: Vec<String> = results
            .iter()
            .filter(|m| m.transport == t && SOCKETS.contains(&m.case))
            .filter_map(|m| {
                let r = ratio_to(results, m, Name::Iceoryx2, kind)?;
                Some(format!(
                    "{} {}x{} ({}) {r:.2}x",
                    m.case, m.connections, m.chunk, m.model
                ))
            })
            .collect();
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "  {t} vs iceoryx2 ({}): {}",
                kind_name(kind),
                rows.join(", ")
            );
        }
    }
    let idle: Vec<&Measurement> = results
        .iter()
        .filter(|m| m.case == Case::Idle && family(m.transport) == Name::RinglinkShm)
        .collect();
    if !idle.is_empty() {
        let w = idle.iter().filter_map(|m| m.value()).max_by(f64::total_cmp);
        let rows: Vec<String> = idle
            .iter()
            .map(|m| {
                m.value().map_or_else(
                    || format!("{} failed", m.transport),
                    |v| format!("{} {v:.3}%", m.transport),
                )
            })
            .collect();
        let met = idle.iter().all(|m| m.value().is_some()) && w.is_some_and(|w| w < 1.0);
        let _ = writeln!(
            out,
            "  idle pair, CPU over the window: {}; goal < 1% of a core: {}",
            rows.join(", "),
            verdict(met)
        );
    }
}

/// Shared memory's goals on Windows, against ringlink's own named pipe (the rows of a
/// run under Wine): pingPong with 1 connection at least 10x the pipe (each under
/// threads), dataExchange with 100,000-byte chunks at least 2x the pipe (the best
/// driver of each, every connection count). The idle goal is read with Linux's.
fn shared_memory_over_pipes(results: &[Measurement], out: &mut String) {
    // A row without a figure gives no ratio (`paired_ratio`).
    let find = |t, case, conns, chunk, driver| row_at(results, t, case, conns, chunk, Some(driver));
    let shm = find(
        Name::RinglinkShm,
        Case::PingPong,
        1,
        1,
        Driver::ThreadsSplice,
    );
    let pipe = find(Name::RinglinkPipe, Case::PingPong, 1, 1, Driver::Threads);
    if let Some(r) = shm
        .zip(pipe)
        .and_then(|(shm, pipe)| paired_ratio(shm, pipe))
    {
        let tokio = find(
            Name::RinglinkShmTokio,
            Case::PingPong,
            1,
            1,
            Driver::TokioTasks,
        )
        .zip(find(
            Name::RinglinkPipe,
            Case::PingPong,
            1,
            1,
            Driver::TokioTasks,
        ))
        .and_then(|(a, b)| paired_ratio(a, b))
        .map_or_else(String::new, |t| format!(" (tokio: {t:.2}x)"));
        let _ = writeln!(
            out,
            "  ringlink-shm vs ringlink-pipe, pingPong 1 conn, threads: {r:.2}x{tokio}; goal >= 10x: {}",
            verdict(r >= 10.0)
        );
    }
    let mut exchange = Vec::new();
    for conns in crate::plan::EXCHANGE_CONNECTIONS {
        let Some(any) = results.iter().find(|m| {
            (m.case, m.connections, m.chunk) == (Case::DataExchange, conns as u64, 100_000)
        }) else {
            continue;
        };
        let best_shm = best_of(results, any, Name::RinglinkShm);
        let best_pipe = best_of(results, any, Name::RinglinkPipe);
        let Some((a, b)) = best_shm.zip(best_pipe) else {
            continue;
        };
        if let Some(r) = paired_ratio(a, b) {
            exchange.push((
                r,
                format!("{conns} conns {r:.2}x ({} vs {})", a.label(), b.label()),
            ));
        }
    }
    if !exchange.is_empty() {
        let met = exchange.iter().all(|(r, _)| *r >= 2.0);
        let rows: Vec<String> = exchange.into_iter().map(|(_, s)| s).collect();
        let _ = writeln!(
            out,
            "  best ringlink-shm vs best ringlink-pipe, dataExchange 100000-byte chunks: {}; goal >= 2x: {}",
            rows.join(", "),
            verdict(met)
        );
    }
}

fn kind_name(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Spinning => "spinning",
        _ => "event-driven",
    }
}

/// pingPong seconds at 5,000 connections over seconds at 100 (in one process).
pub fn scaling(results: &[Measurement], m: &Measurement) -> Option<f64> {
    let secs = |n: u64| {
        results
            .iter()
            .find(|r| {
                r.case == Case::PingPong
                    && (r.transport, r.model) == (m.transport, m.model)
                    && r.connections == n
                    && !r.server_in_child
            })?
            .seconds
    };
    Some(secs(5000)? / secs(100)?)
}

fn core_rings(results: &[Measurement], out: &mut String) {
    let core = |t: Name| {
        results
            .iter()
            .filter(move |m| m.case == Case::Core && m.transport == t)
    };
    let ratio = |m: &Measurement, peer: Name| ratio_to(results, m, peer, DriverKind::Core);
    if let Some((r, m)) =
        worst(core(Name::RinglinkRing).filter_map(|m| Some((ratio(m, Name::Rtrb)?, m))))
    {
        let _ = writeln!(
            out,
            "  ringlink-ring vs rtrb: worst chunk {} at {r:.2}x; goal >= 1.00x: {}",
            m.chunk,
            verdict(r >= 1.0)
        );
    }
    // heapless moves bytes one `enqueue` at a time; the ring moves the same chunks as slices.
    let chunked = core(Name::RinglinkRing).filter(|m| m.chunk > 1);
    if let Some((r, m)) = worst(chunked.filter_map(|m| Some((ratio(m, Name::HeaplessBytes)?, m)))) {
        let _ = writeln!(
            out,
            "  ringlink-ring vs heapless byte by byte, same chunks: worst chunk {} at {r:.2}x; goal >= 2.00x: {}",
            m.chunk,
            verdict(r >= 2.0)
        );
    }
    let single = |t: Name| core(t).find(|m| m.chunk == 1).and_then(Measurement::value);
    if let (Some(ring), Some(heapless)) = (single(Name::RinglinkRing), single(Name::HeaplessBytes))
    {
        let _ = writeln!(
            out,
            "  single-byte operations (push/pop): ringlink-ring {ring:.3} GiB/s, heapless {heapless:.3} GiB/s ({:.2}x); goal >= 2.00x: {}",
            ring / heapless,
            verdict(ring / heapless >= 2.0)
        );
    }
}

/// The goals of the benchmark, checked against this run.
pub fn goals(results: &[Measurement]) -> String {
    let mut out = String::from("\ngoals (each against its like)\n");
    like_for_like(results, &mut out);
    best_against_best(results, &mut out);
    against_qt(results, &mut out);
    shared_memory(results, &mut out);
    shared_memory_over_pipes(results, &mut out);
    let mut keys = Vec::new();
    for m in results.iter().filter(|m| m.case == Case::PingPong) {
        if !keys
            .iter()
            .any(|k: &&Measurement| (k.transport, k.model) == (m.transport, m.model))
        {
            keys.push(m);
        }
    }
    let scal: Vec<String> = keys
        .into_iter()
        .filter_map(|m| Some(format!("{} {:.2}x", m.label(), scaling(results, m)?)))
        .collect();
    if !scal.is_empty() {
        let _ = writeln!(
            out,
            "  pingPong time, 5000 vs 100 connections (goal <= 1.5x for ringlink): {}",
            scal.join(", ")
        );
    }
    core_rings(results, &mut out);
    let spreads: Vec<f64> = results.iter().filter_map(|m| m.spread).collect();
    if !spreads.is_empty() {
        let mut sorted = spreads.clone();
        sorted.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "  spread of the rounds (highest - lowest) / median: median {:.0}%, widest {:.0}% over {} rows",
            sorted[sorted.len() / 2] * 100.0,
            sorted[sorted.len() - 1] * 100.0,
            sorted.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Driver;
    use crate::report::tests::row;

    #[test]
    fn goals_read_each_driver_against_its_like_and_best_against_best() {
        use Driver::*;
        let results = vec![
            row(Case::PingPong, Name::Std, Threads, 200.0),
            row(Case::PingPong, Name::StdEpoll, Epoll, 100.0),
            row(Case::PingPong, Name::Tokio, TokioTasks, 50.0),
            row(Case::PingPong, Name::RinglinkUds, Threads, 190.0),
            row(Case::PingPong, Name::RinglinkUds, Epoll, 120.0),
            row(Case::PingPong, Name::RinglinkUds, TokioTasks, 60.0),
            row(Case::PingPong, Name::Qt, QtEventLoop, 80.0),
        ];
        let g = goals(&results);
        assert!(
            g.contains("ringlink-uds (threads) vs std: worst row 0.95x"),
            "{g}"
        );
        assert!(
            g.contains("ringlink-uds (epoll) vs std-epoll: worst row 1.20x"),
            "{g}"
        );
        assert!(
            g.contains("ringlink-uds (epoll) vs qt: worst row 1.50x"),
            "{g}"
        );
        assert!(
            g.contains("ringlink-uds (tokio tasks) vs tokio: worst row 1.20x"),
            "{g}"
        );
        assert!(
            g.contains("best ringlink-uds vs best of, worst row: std 0.95x"),
            "{g}"
        );
        assert!(
            g.contains("best ringlink-uds vs Qt: worst row 2.38x"),
            "{g}"
        );
        assert!(g.contains("MISSED") && g.contains("met"), "{g}");
    }

    #[test]
    fn windows_shared_memory_is_read_against_the_named_pipe() {
        use Driver::*;
        let at = |mut m: Measurement, conns: u64, chunk: u64| {
            (m.connections, m.chunk) = (conns, chunk);
            m
        };
        let results = vec![
            at(
                row(Case::PingPong, Name::RinglinkPipe, Threads, 1000.0),
                1,
                1,
            ),
            at(
                row(Case::PingPong, Name::RinglinkPipe, TokioTasks, 800.0),
                1,
                1,
            ),
            at(
                row(Case::PingPong, Name::RinglinkShm, ThreadsSplice, 12_000.0),
                1,
                1,
            ),
            at(
                row(Case::PingPong, Name::RinglinkShmTokio, TokioTasks, 4000.0),
                1,
                1,
            ),
            at(
                row(Case::DataExchange, Name::RinglinkPipe, Threads, 100.0),
                1,
                100_000,
            ),
            at(
                row(Case::DataExchange, Name::RinglinkPipe, TokioTasks, 120.0),
                1,
                100_000,
            ),
            at(
                row(Case::DataExchange, Name::RinglinkShm, ThreadsSplice, 300.0),
                1,
                100_000,
            ),
            at(
                row(Case::DataExchange, Name::RinglinkPipe, Threads, 100.0),
                5,
                100_000,
            ),
            at(
                row(
                    Case::DataExchange,
                    Name::RinglinkShmTokio,
                    TokioTasks,
                    150.0,
                ),
                5,
                100_000,
            ),
        ];
        let g = goals(&results);
        assert!(
            g.contains("ringlink-shm vs ringlink-pipe, pingPong 1 conn, threads: 12.00x (tokio: 5.00x); goal >= 10x: met"),
            "{g}"
        );
        // The best of each: 300 over tokio's 120 with one connection; 150 over 100 with five.
        assert!(g.contains("1 conns 2.50x"), "{g}");
        assert!(g.contains("5 conns 1.50x"), "{g}");
        assert!(
            g.contains("dataExchange 100000-byte chunks: ") && g.contains("goal >= 2x: MISSED"),
            "{g}"
        );
    }
}
