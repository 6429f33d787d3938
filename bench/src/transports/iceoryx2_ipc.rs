//! iceoryx2 (0.10), the strongest shared-memory peer: per connection, two
//! publish-subscribe services of `[u8]` slices between the two sides (`up` from the
//! client, `down` back), each sample a chunk of the workload. Its inter-process
//! services (`ipc::Service`) put samples in shared memory whichever process the two
//! sides are in. Two drivers, a thread per connection on each side as its examples do:
//! - spinning: a side polls its subscriber until a sample is there, yielding the CPU
//!   every 32 polls as ringlink's spin does;
//! - event-driven: after each send the sender notifies an event service of the same
//!   connection, and a side with nothing to receive sleeps in its listener.
//!
//! A connection is opened in its own thread (iceoryx2's ports stay in the thread that
//! made them). The server side of connection `i` waits for the client's publisher, and
//! the client waits for the server's subscriber before it sends, so nothing is lost.

use std::hint::spin_loop;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use crate::names::{Driver, Name};
use crate::readiness::TICK;
use crate::threaded::{self, Relay};
use crate::workload::{BenchError, ClientOutcome, ClientPlan, EchoPlan, Limit, Transport};

/// iceoryx2 publish-subscribe.
pub struct Iceoryx2;

/// Stack of a connection's thread: iceoryx2 builds its ports in large values on
/// the stack.
const STACK: usize = 8 << 20;

/// Each side's ports of one connection.
pub struct Connection {
    // Field order is drop order: ports before their services and the node.
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    events: Option<(Notifier<ipc::Service>, Listener<ipc::Service>)>,
    /// The service this side receives on (its publisher count says the peer is there).
    incoming: PubSub<ipc::Service, [u8], ()>,
    _outgoing: PubSub<ipc::Service, [u8], ()>,
    _node: Node<ipc::Service>,
    /// When a wait gives up (the run's limit).
    deadline: Instant,
}

fn ice<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError::Io(what, io::Error::other(format!("{e:?}")))
}

fn io_err<E: std::fmt::Debug>(e: E) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

/// The service names of a run at `addr`, the same in the server's and the client's
/// process: the scratch directory (one per run, named after the harness's pid) and
/// the row's socket name.
fn base_name(addr: &Path) -> String {
    let name = |p: Option<&Path>| {
        p.and_then(|p| p.file_stem())
            .and_then(|s| s.to_str())
            .unwrap_or("row")
            .to_string()
    };
    format!(
        "ringlink-bench/{}/{}",
        name(addr.parent()),
        name(Some(addr))
    )
}

/// Which side opens a connection.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Server,
    Client,
}

fn open(
    base: &str,
    index: usize,
    side: Side,
    plan_chunk: usize,
    events: bool,
    limit: Limit<'_>,
) -> Result<Connection, BenchError> {
    // iceoryx2 reports its default configuration on first use; the table says enough.
    set_log_level(LogLevel::Error);
    let node = NodeBuilder::new()
        .create::<ipc::Service>()
        .map_err(ice("creating an iceoryx2 node"))?;
    let service = |dir: &str| -> Result<PubSub<ipc::Service, [u8], ()>, BenchError> {
        let name: ServiceName = format!("{base}/{index}/{dir}")
            .as_str()
            .try_into()
            .map_err(ice("service name"))?;
        node.service_builder(&name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(2)
            .open_or_create()
            .map_err(ice("opening an iceoryx2 service"))
    };
    let (up, down) = (service("up")?, service("down")?);
    let (incoming, outgoing) = match side {
        Side::Server => (up, down),
        Side::Client => (down, up),
    };
    let subscriber = incoming
        .subscriber_builder()
        .buffer_size(2)
        .create()
        .map_err(ice("creating a subscriber"))?;
    let publisher = outgoing
        .publisher_builder()
        .initial_max_slice_len(plan_chunk.max(1))
        .max_loaned_samples(2)
        .create()
        .map_err(ice("creating a publisher"))?;
    let events = if events {
        let event = |dir: &str| -> Result<_, BenchError> {
            let name: ServiceName = format!("{base}/{index}/{dir}-event")
                .as_str()
                .try_into()
                .map_err(ice("service name"))?;
            node.service_builder(&name)
                .event()
                .open_or_create()
                .map_err(ice("opening an iceoryx2 event"))
        };
        let (up, down) = (event("up")?, event("down")?);
        let (listen, notify) = match side {
            Side::Server => (up, down),
            Side::Client => (down, up),
        };
        Some((
            notify
                .notifier_builder()
                .create()
                .map_err(ice("creating a notifier"))?,
            listen
                .listener_builder()
                .create()
                .map_err(ice("creating a listener"))?,
        ))
    } else {
        None
    };
    // Wait for the other side's ports: the server for the client's publisher (made
    // after its subscriber), the client for both of the server's, so that no sample
    // goes to nobody and a side never takes a peer still setting up for one gone.
    loop {
        let peer_ready = incoming.dynamic_config().number_of_publishers() > 0
            && (side == Side::Server || outgoing.dynamic_config().number_of_subscribers() > 0);
        if peer_ready {
            break;
        }
        limit.check("waiting for the iceoryx2 peer")?;
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(Connection {
        publisher,
        subscriber,
        events,
        incoming,
        _outgoing: outgoing,
        _node: node,
        deadline: limit.deadline,
    })
}

impl Connection {
    fn publish(&self, data: &[u8]) -> io::Result<()> {
        let sample = self
            .publisher
            .loan_slice_uninit(data.len())
            .map_err(io_err)?;
        sample.write_from_slice(data).send().map_err(io_err)?;
        if let Some((notifier, _)) = &self.events {
            notifier.notify().map_err(io_err)?;
        }
        Ok(())
    }
}

impl Relay for Connection {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.publish(data)
    }

    fn relay(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        let mut polls = 0_u32;
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(io_err)? {
                // Zero-copy in: the echo is written straight from the received sample.
                let n = sample.payload().len();
                self.publish(sample.payload())?;
                return Ok(n);
            }
            polls = polls.wrapping_add(1);
            match &self.events {
                Some((_, listener)) => {
                    listener.timed_wait(|_| {}, TICK).map_err(io_err)?;
                }
                // Spinning as ringlink's spin does: 32 probes, then the CPU goes to
                // the OS, so with more spinning threads than cores (10 connections
                // a side on 2 cores) the thread a sample waits for gets to run.
                None if !polls.is_multiple_of(32) => {
                    spin_loop();
                    continue;
                }
                None if !polls.is_multiple_of(4096) => {
                    std::thread::yield_now();
                    continue;
                }
                None => std::thread::yield_now(),
            }
            // Now and then: has the peer gone, or the run's time run out?
            if self.incoming.dynamic_config().number_of_publishers() == 0 {
                return Ok(0);
            }
            if Instant::now() >= self.deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}

impl Transport for Iceoryx2 {
    fn name(&self) -> Name {
        Name::Iceoryx2
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Spinning, Driver::EventDriven]
    }

    fn drivers(&self, connections: usize) -> Vec<Driver> {
        super::iceoryx2_drivers(self.models(), connections)
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        threaded::threads_short(connections)
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        let base = base_name(addr);
        let events = plan.model == Driver::EventDriven;
        ready();
        let mut next = 0;
        threaded::serve_opening(
            STACK,
            || {
                next += 1;
                Ok(Some(next - 1))
            },
            |index| open(&base, index, Side::Server, plan.chunk, events, limit),
            plan,
            limit,
        )
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let base = base_name(addr);
        let events = plan.model == Driver::EventDriven;
        let next = AtomicUsize::new(0);
        threaded::run_client_with_stack(
            STACK,
            || {
                let index = next.fetch_add(1, Ordering::Relaxed);
                open(&base, index, Side::Client, plan.chunk, events, limit)
            },
            plan,
            limit,
        )
    }
}
