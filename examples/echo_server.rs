//! A blocking echo server on the portable API: one thread per connection, at most
//! [`MAX_CONNECTIONS`] at once, each peer logged as it connects and leaves.
//!
//! The same source builds for Linux, macOS, FreeBSD and Windows (a Unix socket in the
//! user's private directory there, a named pipe here). Run it, then the client in a
//! second terminal:
//!
//! ```text
//! cargo run --example echo_server [NAME]
//! cargo run --example echo_client [NAME] hello there
//! ```
//!
//! `NAME` defaults to `ringlink-echo-example`. The server prints `listening on <where>`
//! once clients can connect, and runs until it is stopped (Ctrl-C).

use std::io::{Read, Write};
use std::process::ExitCode;

use ringlink::{ErrorKind, Listener, ListenerOptions, Stream};

/// The name used when none is given.
const DEFAULT_NAME: &str = "ringlink-echo-example";

/// The most clients served at once; one over it is closed as soon as it is accepted.
const MAX_CONNECTIONS: usize = 64;

fn main() -> ExitCode {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    let options = ListenerOptions::new().max_connections(MAX_CONNECTIONS);
    let listener = match Listener::bind(name.as_str(), options) {
        Ok(listener) => listener,
        Err(e) if e.kind() == ErrorKind::AddressInUse => {
            eprintln!("echo_server: another server already serves {name}: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("echo_server: cannot listen on {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("echo_server: listening on {}", listener.name());
    // Whoever started the server (a script, a test) may wait for that line.
    let _ = std::io::stdout().flush();

    for (id, accepted) in (1u64..).zip(listener.incoming()) {
        match accepted {
            Ok(stream) => {
                std::thread::spawn(move || serve(id, stream));
            }
            // One failed accept (a peer the policy refused, a client over the limit, a
            // short moment without descriptors) ends nothing but that connection.
            Err(e) => eprintln!("echo_server: accept: {e}"),
        }
    }
    ExitCode::SUCCESS
}

/// Echoes everything `stream` sends until it closes.
fn serve(id: u64, mut stream: Stream) {
    match stream.peer_credentials() {
        Ok(peer) => println!("echo_server: client {id} connected: {peer:?}"),
        Err(e) => println!("echo_server: client {id} connected (peer unknown: {e})"),
    }
    let mut buf = [0u8; 4096];
    let mut echoed = 0u64;
    let outcome = loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(ringlink::Error::from(e)),
        };
        if let Err(e) = stream.write_all(&buf[..n]) {
            break Err(ringlink::Error::from(e));
        }
        echoed += n as u64;
    };
    match outcome {
        // A client that goes away without a goodbye is the normal end of an echo session.
        Ok(()) => println!("echo_server: client {id} left after {echoed} bytes"),
        Err(e) if e.kind() == ErrorKind::PeerClosed => {
            println!("echo_server: client {id} left after {echoed} bytes")
        }
        Err(e) => eprintln!("echo_server: client {id}: {e} (after {echoed} bytes)"),
    }
}
