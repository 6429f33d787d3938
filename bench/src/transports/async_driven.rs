//! Transports driven the way a tokio user drives them: a current-thread runtime per side
//! and one task per connection. [`AsyncSockets`] says how to bind, accept and connect;
//! [`AsyncDriven`] turns that into a [`Transport`].

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::names::{Driver, Name};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Stop, Transport,
    is_disconnect,
};

/// Binding, accepting and connecting with one async socket API.
pub trait AsyncSockets {
    /// The transport's name in tables and JSON.
    const NAME: Name;
    /// A connected stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A listening socket.
    type Listener;
    /// Why `connections` connections cannot run on this machine (see [`Transport::unsupported`]).
    fn unsupported(connections: usize) -> Option<String> {
        let _ = connections;
        None
    }
    /// Binds `addr` (called inside the runtime).
    fn bind(addr: &Path) -> io::Result<Self::Listener>;
    /// Accepts one connection.
    fn accept(listener: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Connects to `addr`.
    fn connect(addr: &Path) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Called on a stream whose exchange is over, just before it is dropped: its peer
    /// has answered (or will not be read from again) everything written on it that the
    /// row counts. Nothing by default.
    fn finished(stream: &Self::Stream) {
        let _ = stream;
    }
}

/// A [`Transport`] from an [`AsyncSockets`].
pub struct AsyncDriven<A>(PhantomData<fn() -> A>);

impl<A> AsyncDriven<A> {
    /// The transport.
    pub const fn new() -> Self {
        AsyncDriven(PhantomData)
    }
}

const TICK: Duration = Duration::from_millis(50);

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .during("building a tokio runtime")
}

/// Awaits `fut`, waking every tick to honour the limit.
async fn bounded<T>(
    limit: Limit<'_>,
    what: &'static str,
    fut: impl Future<Output = T>,
) -> Result<T, BenchError> {
    let mut fut = std::pin::pin!(fut);
    loop {
        limit.check(what)?;
        if let Ok(v) = tokio::time::timeout(TICK.min(limit.remaining()), &mut fut).await {
            return Ok(v);
        }
    }
}

impl<A: AsyncSockets> Transport for AsyncDriven<A> {
    fn name(&self) -> Name {
        A::NAME
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::TokioTasks]
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        A::unsupported(connections)
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        runtime()?.block_on(async {
            let listener = A::bind(addr).during("bind")?;
            ready();
            let mut tasks: Vec<JoinHandle<Result<(), BenchError>>> =
                Vec::with_capacity(plan.connections);
            while tasks.len() < plan.connections {
                match bounded(limit, "accepting", A::accept(&listener)).await? {
                    Ok(stream) => tasks.push(tokio::spawn(echo(
                        Finishing(stream, A::finished),
                        plan.chunk,
                    ))),
                    Err(e) if is_disconnect(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(BenchError::Io("accept", e)),
                }
            }
            for task in tasks {
                bounded(limit, "echoing", task)
                    .await?
                    .map_err(|_| BenchError::Setup("a server task panicked".into()))??;
            }
            Ok(())
        })
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        runtime()?.block_on(async {
            let mut streams = Vec::with_capacity(plan.connections);
            while streams.len() < plan.connections {
                match bounded(limit, "connecting", A::connect(addr)).await? {
                    Ok(stream) => streams.push(stream),
                    // A full backlog on a nonblocking connect: the server has not caught up.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    Err(e) => return Err(BenchError::Io("connect", e)),
                }
            }
            let counters: Arc<Vec<AtomicU64>> =
                Arc::new((0..plan.connections).map(|_| AtomicU64::new(0)).collect());
            let stop = Arc::new(AtomicBool::new(false));
            let target = match plan.stop {
                Stop::RoundTrips(n) => n * plan.chunk as u64,
                Stop::After(_) => u64::MAX,
            };
            let started = Instant::now();
            let tasks: Vec<_> = streams
                .into_iter()
                .enumerate()
                .map(|(i, stream)| {
                    tokio::spawn(exchange(
                        Finishing(stream, A::finished),
                        plan.chunk,
                        target,
                        counters.clone(),
                        i,
                        stop.clone(),
                    ))
                })
                .collect();
            let mut elapsed = Duration::ZERO;
            let mut received = 0;
            if let Stop::After(d) = plan.stop {
                tokio::time::sleep(d).await;
                elapsed = started.elapsed();
                received = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
                stop.store(true, Ordering::Relaxed);
            }
            for task in tasks {
                let finished = bounded(limit, "exchanging", task)
                    .await?
                    .map_err(|_| BenchError::Setup("a client task panicked".into()))??;
                if let Stop::RoundTrips(_) = plan.stop {
                    elapsed = elapsed.max(finished.duration_since(started));
                }
            }
            if let Stop::RoundTrips(_) = plan.stop {
                received = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            }
            Ok(ClientOutcome { elapsed, received })
        })
    }
}

/// Echoes on one connection until the client closes it.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: Finishing<S>,
    chunk: usize,
) -> Result<(), BenchError> {
    let mut buf = vec![0_u8; chunk + 1];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if is_disconnect(&e) => return Ok(()),
            Err(e) => return Err(BenchError::Io("server read", e)),
        };
        match stream.write_all(&buf[..n]).await {
            Ok(()) => {}
            Err(e) if is_disconnect(&e) => return Ok(()),
            Err(e) => return Err(BenchError::Io("server write", e)),
        }
    }
}

/// One client connection: write the chunk, write back what comes, until `target` bytes
/// have come back or `stop` is set. Returns when it finished.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: Finishing<S>,
    chunk: usize,
    target: u64,
    counters: Arc<Vec<AtomicU64>>,
    index: usize,
    stop: Arc<AtomicBool>,
) -> Result<Instant, BenchError> {
    let outgoing = vec![0x5a_u8; chunk];
    let mut buf = vec![0_u8; chunk + 1];
    stream.write_all(&outgoing).await.during("client write")?;
    let mut received = 0_u64;
    loop {
        let n = stream.read(&mut buf).await.during("client read")?;
        if n == 0 {
            return Err(BenchError::Protocol(
                "server closed a connection early".into(),
            ));
        }
        received += n as u64;
        counters[index].store(received, Ordering::Relaxed);
        if received >= target {
            return if received == target {
                Ok(Instant::now())
            } else {
                Err(BenchError::Protocol(
                    "server echoed more than it got".into(),
                ))
            };
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Instant::now());
        }
        stream
            .write_all(&outgoing[..n])
            .await
            .during("client write")?;
    }
}

/// A stream that calls its [`AsyncSockets::finished`] when the task holding it ends,
/// by any return.
struct Finishing<S>(S, fn(&S));

impl<S> Drop for Finishing<S> {
    fn drop(&mut self) {
        (self.1)(&self.0);
    }
}

impl<S> std::ops::Deref for Finishing<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> std::ops::DerefMut for Finishing<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0
    }
}
