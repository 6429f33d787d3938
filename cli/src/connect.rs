//! `ringlink connect`: stdin to the server, what it sends to stdout, raw or one frame a line.

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringlink::{ConnectOptions, Error, ErrorKind, FrameOptions, FramedStream, Stream};

use crate::args::NameArgs;
use crate::names::resolve;
use crate::seconds;

/// `ringlink connect`: `keep_open_idle` is `Some` when the connection must not half-close.
pub fn connect(
    args: &NameArgs,
    framed: bool,
    wait: bool,
    timeout: f64,
    keep_open_idle: Option<f64>,
    any_server: bool,
) -> Result<i32, Error> {
    let name = resolve(args)?;
    let timeout = seconds("--timeout", timeout)?;
    let idle = keep_open_idle.map(|i| seconds("--idle", i)).transpose()?;
    let options = ConnectOptions::new()
        .timeout(timeout)
        .wait_for_server(wait)
        .verify_server_user(!any_server);
    let stream = Stream::connect(&name, options)?;
    if framed {
        connect_framed(stream, idle)
    } else {
        connect_raw(stream, idle)
    }
}

/// stdin → socket, socket → stdout. Without `idle`, half-closes at the end of stdin
/// and runs until the server closes; with it, keeps the connection open and also stops
/// once stdin has ended and nothing arrived for `idle`.
fn connect_raw(stream: Stream, idle: Option<Duration>) -> Result<i32, Error> {
    let (mut reader, mut writer) = stream.into_split();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut writer);
        if idle.is_none() {
            drop(writer); // shuts down writing: the server sees end of stream
        } else {
            // Hand the write half over, so dropping it does not half-close.
            let _ = done_tx.send(writer);
        }
    });
    if let Some(idle) = idle {
        reader.stream().set_read_timeout(Some(idle))?;
    }
    let mut stdin_done = None;
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stdin_done.is_none() {
            stdin_done = done_rx.try_recv().ok();
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if idle.is_some() && e.kind() == io::ErrorKind::TimedOut => {
                if stdin_done.is_some() || done_rx.try_recv().is_ok() {
                    return Ok(0);
                }
                continue;
            }
            Err(e) => return Err(Error::from(e)),
        };
        if n == 0 {
            return Ok(0);
        }
        out.write_all(&buf[..n])
            .and_then(|()| out.flush())
            .map_err(Error::from)?;
    }
}

/// Like [`connect_raw`] with one frame per line (its bytes as they are, UTF-8 or
/// not; without the `\n` or `\r\n`); with `idle`, also stops once stdin has ended and
/// no frame arrived for `idle`. A line over the server's frame limit is not sent, and
/// that, or a failure to read stdin, makes the exit status 1.
fn connect_framed(stream: Stream, idle: Option<Duration>) -> Result<i32, Error> {
    let mut framed = FramedStream::new(stream, FrameOptions::new())?;
    let peer_max = framed.peer_hello().max_frame;
    if let Some(idle) = idle {
        framed.set_timeouts(Some(idle), None)?;
    }
    // Frames go out from the stdin thread while this one receives, over shared memory
    // (the default between ringlink peers on Linux) or the socket.
    let (mut framed, mut sender) = framed.into_split();
    let stdin_done = std::sync::Arc::new(AtomicBool::new(false));
    let stdin_failed = std::sync::Arc::new(AtomicBool::new(false));
    let (done, failed) = (stdin_done.clone(), stdin_failed.clone());
    std::thread::spawn(move || {
        let mut input = io::stdin().lock();
        let mut line = Vec::new();
        loop {
            match read_frame_line(&mut input, &mut line, peer_max) {
                Ok(Line::End) => break,
                Ok(Line::Frame) => {}
                Ok(Line::TooLong(len)) => {
                    say!(
                        "ringlink: error: a line of {len} bytes is over the server's frame limit of {peer_max}; not sent"
                    );
                    failed.store(true, Ordering::SeqCst);
                    continue;
                }
                Err(e) => {
                    say!("ringlink: error: cannot read stdin: {e}; stopped sending");
                    failed.store(true, Ordering::SeqCst);
                    break;
                }
            }
            // `read_frame_line` checked the length against the peer's `u32` limit.
            let Ok(len) = u32::try_from(line.len()) else {
                unreachable!("a line over the frame limit is TooLong");
            };
            debug_assert!(len <= peer_max);
            if sender.send_frame(&line).is_err() {
                return;
            }
        }
        done.store(true, Ordering::SeqCst);
        if idle.is_none() {
            // The end of what we send: over shared memory, dropping the sender.
            if !sender.is_shared_memory() {
                let _ = sender.get_ref().shutdown(Shutdown::Write);
            }
            drop(sender);
        }
    });
    let status = || i32::from(stdin_failed.load(Ordering::SeqCst));
    let mut out = io::stdout().lock();
    loop {
        let frame = match framed.recv_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(status()),
            Err(e) if idle.is_some() && e.kind() == ErrorKind::TimedOut => {
                if stdin_done.load(Ordering::SeqCst) {
                    return Ok(status());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        out.write_all(frame)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(Error::from)?;
    }
}

/// What [`read_frame_line`] found.
enum Line {
    /// A line is in the buffer, its end of line removed.
    Frame,
    /// A line of this many bytes was over the limit and skipped.
    TooLong(u64),
    /// End of input.
    End,
}

/// Reads one line of raw bytes into `line`, holding at most `max` bytes (plus its end
/// of line) however long the line is.
fn read_frame_line(input: &mut impl BufRead, line: &mut Vec<u8>, max: u32) -> io::Result<Line> {
    line.clear();
    let limit = u64::from(max) + 2; // the line and "\r\n"
    let n = input.by_ref().take(limit).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() != Some(&b'\n') && n as u64 == limit {
        // Longer than any frame the server takes: skip the rest of it.
        let mut skipped = limit;
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (used, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            input.consume(used);
            skipped += used as u64;
            if end {
                break;
            }
        }
        line.clear();
        return Ok(Line::TooLong(skipped));
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() as u64 > u64::from(max) {
        return Ok(Line::TooLong(line.len() as u64));
    }
    Ok(Line::Frame)
}
