//! A tokio server with typed request/response messages, serving many clients at once, and
//! its client, in one program (feature `tokio`).
//!
//! Messages are serde types sent as postcard-encoded frames over
//! [`ringlink::tokio::FramedStream`]: the framed mode's hello first, then one frame per
//! message, so a peer that speaks something else gets `ProtocolMismatch`, not a hang.
//!
//! ```text
//! cargo run --features tokio --example typed_tokio -- server [NAME]
//! cargo run --features tokio --example typed_tokio -- client [NAME] [CLIENTS]
//! cargo run --features tokio --example typed_tokio -- demo [NAME] [CLIENTS]
//! ```
//!
//! `server` serves until stopped; `client` runs `CLIENTS` (default 8) concurrent clients,
//! each checking the answers to its requests, and exits nonzero if any is wrong; `demo`
//! runs both in one process. `NAME` defaults to `ringlink-typed-example`.

use std::process::ExitCode;
use std::time::Duration;

use ringlink::tokio::{FramedStream, Listener, Stream};
use ringlink::{ConnectOptions, Error, ErrorKind, FrameOptions, ListenerOptions};
use serde::{Deserialize, Serialize};

/// The name used when none is given.
const DEFAULT_NAME: &str = "ringlink-typed-example";

/// Clients the `client` and `demo` modes run at once, when not told.
const DEFAULT_CLIENTS: usize = 8;

/// Requests each client sends.
const REQUESTS_PER_CLIENT: u32 = 50;

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Add two numbers.
    Add { a: i64, b: i64 },
    /// Upper-case a text.
    Shout(String),
    /// Tell how many requests this connection has made so far.
    Count,
}

/// What the server answers, one per request.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Response {
    /// The sum asked for.
    Sum(i64),
    /// The upper-cased text.
    Shouted(String),
    /// Requests served on this connection, this one included.
    Count(u64),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("demo", String::as_str);
    let name = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    let clients = match args.get(2).map(|s| s.parse::<usize>()) {
        None => DEFAULT_CLIENTS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };
    let result = match mode {
        "server" => match bind(&name) {
            Ok(listener) => serve(listener).await,
            Err(e) => Err(e),
        },
        "client" => run_clients(&name, clients).await,
        "demo" => match bind(&name) {
            Ok(listener) => {
                let server = tokio::spawn(serve(listener));
                let result = run_clients(&name, clients).await;
                server.abort();
                result
            }
            Err(e) => Err(e),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("typed_tokio {mode}: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: typed_tokio [server|client|demo] [NAME] [CLIENTS]");
    ExitCode::from(64)
}

/// Binds `name` and says so on standard output (a script may wait for the line).
fn bind(name: &str) -> Result<Listener, Error> {
    let listener = Listener::bind(name, ListenerOptions::new().max_connections(1024))?;
    println!("typed_tokio: listening on {}", listener.name());
    Ok(listener)
}

/// Accepts forever; each connection is a task of its own, so a slow or silent client
/// holds up only itself (the hello is read in that task, not in the accept loop).
async fn serve(listener: Listener) -> Result<(), Error> {
    let mut id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("typed_tokio server: accept: {e}");
                continue;
            }
        };
        id += 1;
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream).await {
                eprintln!("typed_tokio server: client {id}: {e}");
            }
        });
    }
}

/// Answers one client's requests until it closes.
async fn serve_one(stream: Stream) -> Result<(), Error> {
    let mut framed = FramedStream::new(stream, FrameOptions::new()).await?;
    let mut served = 0u64;
    // `Ok(None)`: the client closed between two messages, the normal end.
    while let Some(request) = framed.recv::<Request>().await? {
        served += 1;
        let response = match request {
            Request::Add { a, b } => Response::Sum(a.wrapping_add(b)),
            Request::Shout(text) => Response::Shouted(text.to_uppercase()),
            Request::Count => Response::Count(served),
        };
        framed.send(&response).await?;
    }
    Ok(())
}

/// Runs `clients` clients at once and checks every answer.
async fn run_clients(name: &str, clients: usize) -> Result<(), Error> {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let name = name.to_string();
        tasks.spawn(async move { run_client(&name, client as i64).await });
    }
    let mut failed = 0usize;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("typed_tokio client: {e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("typed_tokio client: task failed: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::new(
            ErrorKind::Other,
            format!("{failed} of {clients} clients failed"),
        ));
    }
    println!(
        "typed_tokio: {clients} clients, {} requests, every answer right",
        clients as u64 * u64::from(REQUESTS_PER_CLIENT)
    );
    Ok(())
}

/// One client: waits up to 10 s for the server, then asks and checks.
async fn run_client(name: &str, client: i64) -> Result<(), Error> {
    let connect = ConnectOptions::new()
        .timeout(Duration::from_secs(10))
        .wait_for_server(true);
    let mut framed = FramedStream::connect(name, connect, FrameOptions::new()).await?;
    for i in 0..REQUESTS_PER_CLIENT {
        let (request, expected) = match i % 3 {
            0 => (
                Request::Add {
                    a: client,
                    b: i64::from(i),
                },
                Response::Sum(client + i64::from(i)),
            ),
            1 => (
                Request::Shout(format!("client {client} says {i}")),
                Response::Shouted(format!("CLIENT {client} SAYS {i}")),
            ),
            _ => (Request::Count, Response::Count(u64::from(i) + 1)),
        };
        framed.send(&request).await?;
        let answer: Response = framed.recv().await?.ok_or_else(|| {
            Error::new(ErrorKind::PeerClosed, "the server closed before answering")
        })?;
        if answer != expected {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "client {client}: asked {request:?}, got {answer:?}, expected {expected:?}"
                ),
            ));
        }
    }
    Ok(())
}
