//! The child-process roles of the 10,000-connection row: a `serve` child prints
//! `ready`, a `client` child runs against it, both report `ok {json}` with memory figures.
//! The row is Unix's (on Windows both sides of a row share one process).
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn child(role: &str, addr: &std::path::Path, transport: &str, model: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ringlink-bench"))
        .args([role, "--transport", transport, "--addr"])
        .arg(addr)
        .args([
            "--connections",
            "20",
            "--round-trips",
            "5",
            "--model",
            model,
            "--seconds",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the bench binary")
}

fn result(
    child: &mut std::process::Child,
    lines: &mut impl Iterator<Item = String>,
) -> serde_json::Value {
    let line = lines.next().expect("a result line");
    let json = line
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("child said {line:?}"));
    assert!(child.wait().unwrap().success());
    serde_json::from_str(json).unwrap()
}

#[test]
fn server_and_client_children_run_a_ping_pong_and_report_memory() {
    let dir = std::env::temp_dir().join(format!("ringlink-bench-children-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (transport, model) in [
        ("ringlink-uds", "epoll"),
        ("std", "threads"),
        ("tokio", "tokio tasks"),
    ] {
        let addr = dir.join(format!("{transport}.sock"));
        let mut server = child("serve", &addr, transport, model);
        let mut server_lines = BufReader::new(server.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap);
        assert_eq!(server_lines.next().as_deref(), Some("ready"), "{transport}");
        let mut client = child("client", &addr, transport, model);
        let mut client_lines = BufReader::new(client.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap);
        let c = result(&mut client, &mut client_lines);
        let s = result(&mut server, &mut server_lines);
        assert_eq!(
            c["received"], 100,
            "{transport}: 20 connections x 5 round trips"
        );
        assert!(c["elapsed_ns"].as_u64().unwrap() > 0);
        for side in [&c, &s] {
            assert!(side["peak_kib"].as_u64().unwrap() >= side["base_kib"].as_u64().unwrap());
            assert!(side["base_kib"].as_u64().unwrap() > 0);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_transport_or_model_is_an_error_line() {
    let dir = std::env::temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ringlink-bench"))
        .args(["client", "--transport", "carrier-pigeon", "--addr"])
        .arg(dir.join("none.sock"))
        .args([
            "--connections",
            "1",
            "--round-trips",
            "1",
            "--model",
            "x",
            "--seconds",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error unknown transport"));
}

#[test]
fn a_run_serves_every_row_from_a_child_process_and_counts_its_cpu() {
    let dir = std::env::temp_dir().join(format!("ringlink-bench-two-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("results.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ringlink-bench"))
        .args(["--quick", "--processes", "two", "--cases", "dataExchange"])
        .args(["--connections", "5", "--chunks", "1000"])
        .args(["--transports", "ringlink-uds", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(dir.join("results.svg"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("two processes: every row's server runs in a child process"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    // ringlink-uds under threads, epoll and tokio, and its likes std and std-epoll.
    assert_eq!(rows.len(), 5, "{rows:?}");
    for row in rows {
        assert!(row["error"].is_null(), "{row}");
        assert!(row["mib_per_s"].as_f64().unwrap() > 0.0, "{row}");
        // Both sides were busy echoing: more CPU than one side alone could spend
        // idling, and the server's share arrives only once its child is reaped.
        let cpu = row["cpu_seconds"].as_f64().unwrap();
        assert!(cpu > 0.05, "{row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
