//! The client of `echo_server`: sends its arguments (joined by spaces, with a newline),
//! or all of standard input when there are none, and prints what the server sends back.
//!
//! ```text
//! cargo run --example echo_server [NAME]
//! cargo run --example echo_client [NAME] hello there
//! printf 'one\ntwo\n' | cargo run --example echo_client [NAME]
//! ```
//!
//! `NAME` defaults to `ringlink-echo-example` (a plain name, private to the user on every
//! OS). The client reads back exactly as many bytes as it sent: named pipes have no
//! half-close, so "I am done writing" cannot be told to the server on every OS, and an
//! echo returns what it got.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use ringlink::{ConnectOptions, Stream};

/// The name used when none is given.
const DEFAULT_NAME: &str = "ringlink-echo-example";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| DEFAULT_NAME.to_string());
    let words: Vec<String> = args.collect();
    let message = if words.is_empty() {
        let mut input = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut input) {
            eprintln!("echo_client: cannot read standard input: {e}");
            return ExitCode::FAILURE;
        }
        input
    } else {
        format!("{}\n", words.join(" ")).into_bytes()
    };

    match echo(&name, &message) {
        Ok(reply) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&reply)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_client: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `message` and reads its echo. A write timeout and a read timeout keep a server
/// that stops answering from holding the client forever.
fn echo(name: &str, message: &[u8]) -> Result<Vec<u8>, ringlink::Error> {
    let options = ConnectOptions::new()
        .timeout(Duration::from_secs(5))
        .read_timeout(Some(Duration::from_secs(10)))
        .write_timeout(Some(Duration::from_secs(10)));
    let stream = Stream::connect(name, options)?;
    // The server echoes while the client writes: writing and reading on two threads keeps
    // a message larger than the socket buffers from filling both directions at once.
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| (&stream).write_all(message));
        let mut reply = vec![0u8; message.len()];
        let read = (&stream).read_exact(&mut reply);
        let written = writer.join().expect("the writer thread does not panic");
        written?;
        read?;
        Ok(reply)
    })
}
