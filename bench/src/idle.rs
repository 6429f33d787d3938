//! The idle case: the CPU time a connected pair uses while nothing is sent. Both
//! sides first make [`WARM_UP`] round trips (so shared memory's adaptive spin is at
//! its largest budget), then each blocks in a read for [`IDLE`]; the process's CPU
//! time over that window (both sides, every thread) is the figure. The same on Linux
//! (shared memory against std's `UnixStream`) and on Windows (shared memory against
//! ringlink's named pipe), where both sides are this process's threads too.

use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::machine::cpu_time;
use crate::names::{Case, Driver, Name};
use crate::report::Measurement;

/// How long the pair stays idle.
pub const IDLE: Duration = Duration::from_secs(2);
/// Round trips before the idle window.
pub const WARM_UP: usize = 10_000;
/// The client's read outlasts the window by this much.
const MARGIN: Duration = Duration::from_millis(300);
/// Pause between the warm-up and the window, for the sides to settle into their read.
const SETTLE: Duration = Duration::from_millis(20);

/// The transports measured idle, in table order.
pub fn transports() -> &'static [Name] {
    &[
        #[cfg(any(target_os = "linux", windows))]
        Name::RinglinkShm,
        #[cfg(any(target_os = "linux", windows))]
        Name::RinglinkShmTokio,
        #[cfg(unix)]
        Name::Std,
        #[cfg(windows)]
        Name::RinglinkPipe,
    ]
}

/// Measures `transport` idle for `idle`.
pub fn measure(transport: Name, idle: Duration) -> Measurement {
    let model = if transport == Name::RinglinkShmTokio {
        Driver::TokioTasks
    } else {
        Driver::Threads
    };
    let mut m = Measurement::new(Case::Idle, transport, model, 1, 1);
    let run = match transport {
        #[cfg(unix)]
        Name::Std => UnixStream::pair()
            .map_err(|e| format!("socket pair: {e}"))
            .and_then(|(a, b)| blocking_pair(a, b, idle)),
        #[cfg(windows)]
        Name::RinglinkPipe => ringlink_windows::Stream::pair()
            .map_err(|e| format!("pipe pair: {e}"))
            .and_then(|(a, b)| blocking_pair(a, b, idle)),
        #[cfg(any(target_os = "linux", windows))]
        Name::RinglinkShm => shm::pair().and_then(|(a, b)| blocking_pair(a, b, idle)),
        #[cfg(any(target_os = "linux", windows))]
        Name::RinglinkShmTokio => shm::pair().and_then(|(a, b)| shm::tokio_pair(a, b, idle)),
        other => Err(format!("no idle measurement for {other}")),
    };
    match run {
        Ok((window, cpu)) => {
            m.seconds = Some(window.as_secs_f64());
            m.cpu_seconds = Some(cpu.as_secs_f64());
        }
        Err(e) => m.error = Some(e),
    }
    m
}

/// A blocking stream with a read timeout.
trait Blocking: Read + Write + Send {
    fn read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

#[cfg(unix)]
impl Blocking for UnixStream {
    fn read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

#[cfg(windows)]
impl Blocking for ringlink_windows::Stream {
    fn read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        Ok(self.set_read_timeout(Some(timeout))?)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Warms up, then times the process's CPU while the client waits `idle + MARGIN`
/// in a read and the server in its echo loop. Returns the window and its CPU time.
fn measure_window(
    warmed: &mpsc::Receiver<Result<(), String>>,
    idle: Duration,
) -> Result<(Duration, Duration), String> {
    warmed
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the warm-up did not finish in 30 s".to_string())??;
    thread::sleep(SETTLE);
    let cpu0 = cpu_time().ok_or("the process's CPU time cannot be read")?;
    let t0 = Instant::now();
    thread::sleep(idle);
    let cpu1 = cpu_time().ok_or("the process's CPU time cannot be read")?;
    Ok((t0.elapsed(), cpu1.saturating_sub(cpu0)))
}

/// Times the window once the client has warmed up, then waits for both sides
/// and reports the first failure (the window's, the client's, the server's).
fn window_of(
    warmed: &mpsc::Receiver<Result<(), String>>,
    idle: Duration,
    client: thread::ScopedJoinHandle<'_, io::Result<()>>,
    server: thread::ScopedJoinHandle<'_, io::Result<()>>,
) -> Result<(Duration, Duration), String> {
    let window = measure_window(warmed, idle);
    let client = client.join().map_err(|_| "the client panicked")?;
    let server = server.join().map_err(|_| "the server panicked")?;
    let window = window?;
    client.map_err(|e| format!("client: {e}"))?;
    server.map_err(|e| format!("server: {e}"))?;
    Ok(window)
}

fn echo_until_closed(mut s: impl Read + Write) -> io::Result<()> {
    let mut b = [0_u8; 64];
    loop {
        match s.read(&mut b)? {
            0 => return Ok(()),
            n => s.write_all(&b[..n])?,
        }
    }
}

fn warm_up(c: &mut impl Blocking) -> io::Result<()> {
    let mut b = [0_u8; 1];
    for _ in 0..WARM_UP {
        c.write_all(b"x")?;
        c.read_exact(&mut b)?;
    }
    Ok(())
}

fn blocking_pair<S: Blocking>(
    mut server: S,
    mut client: S,
    idle: Duration,
) -> Result<(Duration, Duration), String> {
    let (tx, warmed) = mpsc::channel();
    thread::scope(|scope| {
        server
            .read_timeout(idle + MARGIN * 4)
            .map_err(|e| format!("server timeout: {e}"))?;
        let server = scope.spawn(move || echo_until_closed(server));
        let client = scope.spawn(move || -> io::Result<()> {
            let warm = warm_up(&mut client).map_err(|e| format!("warm-up: {e}"));
            let _ = tx.send(warm.clone());
            warm.map_err(io::Error::other)?;
            client.read_timeout(idle + MARGIN)?;
            match client.read(&mut [0_u8; 1]) {
                Err(e) if is_timeout(&e) => Ok(()),
                Err(e) => Err(e),
                Ok(_) => Err(io::Error::other("bytes came while idle")),
            }
            // Dropping the client ends the server's echo loop.
        });
        window_of(&warmed, idle, client, server)
    })
}

#[cfg(any(target_os = "linux", windows))]
mod shm {
    use std::io;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    #[cfg(target_os = "linux")]
    use ringlink_unix::shm::{ShmOptions, ShmStream, tokio::AsyncShmStream};
    #[cfg(windows)]
    use ringlink_windows::shm::{ShmOptions, ShmStream, tokio::AsyncShmStream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Blocking, MARGIN, WARM_UP, window_of};

    impl Blocking for ShmStream {
        fn read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
            self.set_read_timeout(Some(timeout));
            Ok(())
        }
    }

    /// A connected shared-memory pair with the default options.
    pub fn pair() -> Result<(ShmStream, ShmStream), String> {
        #[cfg(target_os = "linux")]
        let (a, b) =
            std::os::unix::net::UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
        #[cfg(windows)]
        let (a, b) = ringlink_windows::Stream::pair().map_err(|e| format!("pipe pair: {e}"))?;
        let peer = thread::spawn(move || ShmStream::accept_offer(b, &ShmOptions::new()));
        let offered = ShmStream::offer(a, &ShmOptions::new());
        let accepted = peer.join().map_err(|_| "the accepting side panicked")?;
        let a = offered.map_err(|e| format!("offer: {e}"))?;
        let b = accepted.map_err(|e| format!("accept: {e}"))?;
        Ok((a, b))
    }

    fn runtime() -> io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }

    /// Each side on its own current-thread runtime, as in the tokio rows.
    pub fn tokio_pair(
        server: ShmStream,
        client: ShmStream,
        idle: Duration,
    ) -> Result<(Duration, Duration), String> {
        let (tx, warmed) = mpsc::channel();
        thread::scope(|scope| {
            let server = scope.spawn(move || -> io::Result<()> {
                runtime()?.block_on(async move {
                    let mut s = AsyncShmStream::from_std(server)?;
                    let mut b = [0_u8; 64];
                    loop {
                        match s.read(&mut b).await? {
                            0 => return Ok(()),
                            n => s.write_all(&b[..n]).await?,
                        }
                    }
                })
            });
            let client = scope.spawn(move || -> io::Result<()> {
                runtime()?.block_on(async move {
                    let mut c = AsyncShmStream::from_std(client)?;
                    let mut b = [0_u8; 1];
                    let mut warm = Ok(());
                    for _ in 0..WARM_UP {
                        warm = async {
                            c.write_all(b"x").await?;
                            c.read_exact(&mut b).await.map(|_| ())
                        }
                        .await;
                        if warm.is_err() {
                            break;
                        }
                    }
                    let _ = tx.send(warm.as_ref().map_err(|e| format!("warm-up: {e}")).copied());
                    warm?;
                    match tokio::time::timeout(idle + MARGIN, c.read(&mut b)).await {
                        Err(_elapsed) => Ok(()),
                        Ok(Err(e)) => Err(e),
                        Ok(Ok(_)) => Err(io::Error::other("bytes came while idle")),
                    }
                })
            });
            window_of(&warmed, idle, client, server)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn an_idle_std_pair_is_measured() {
        let m = measure(Name::Std, Duration::from_millis(100));
        assert_eq!(m.error, None);
        let (secs, cpu) = (m.seconds.unwrap(), m.cpu_seconds.unwrap());
        assert!(secs >= 0.1, "the window lasted {secs} s");
        assert!(cpu < secs * 2.0, "cpu {cpu} s over {secs} s on two sides");
    }

    #[cfg(any(target_os = "linux", windows))]
    #[test]
    fn idle_shared_memory_pairs_are_measured() {
        for t in [Name::RinglinkShm, Name::RinglinkShmTokio] {
            let m = measure(t, Duration::from_millis(100));
            assert_eq!(m.error, None, "{t}");
            assert!(m.seconds.unwrap() >= 0.1);
            assert!(m.cpu_seconds.is_some());
        }
    }

    #[test]
    fn an_unknown_transport_is_an_error_row() {
        assert!(measure(Name::Tokio, IDLE).error.is_some());
    }
}
