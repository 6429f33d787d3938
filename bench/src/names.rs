//! The names a run is made of: its cases, the transports and rings it measures, and the
//! drivers that move their bytes. Each serializes as the string the JSON report has
//! always carried, so readers of the report see no change.

use std::fmt;

use serde::{Serialize, Serializer};

/// Declares a name enum with its string form, `Display`, `Serialize` and `ALL`.
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The string in tables, JSON and on the command line.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value whose string is `s` (case-insensitive).
            #[allow(dead_code)]
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

names! {
    /// A case of the benchmark.
    Case {
        /// Qt's 1-byte echo, round trips split over the connections.
        PingPong => "pingPong",
        /// Qt's chunk echo for a fixed time.
        DataExchange => "dataExchange",
        /// The in-process rings between two threads.
        Core => "core",
        /// A connected pair with nothing to send.
        Idle => "idle",
    }
}

names! {
    /// A transport (socket cases, idle) or a ring (core case).
    Name {
        /// ringlink's raw Unix-socket stream.
        RinglinkUds => "ringlink-uds",
        /// ringlink's framed mode over a Unix socket.
        RinglinkFramed => "ringlink-framed",
        /// ringlink's shared memory, blocking streams.
        RinglinkShm => "ringlink-shm",
        /// ringlink's shared memory on tokio.
        RinglinkShmTokio => "ringlink-shm-tokio",
        /// ringlink's shared memory through `Read`/`Write` and a buffer.
        RinglinkShmCopy => "ringlink-shm-copy",
        /// ringlink's named-pipe stream (Windows).
        RinglinkPipe => "ringlink-pipe",
        /// std under threads: its `UnixStream`, or on Windows a named pipe through
        /// `std::fs::File` (the server's pipes made with `CreateNamedPipeW`).
        Std => "std",
        /// std's `UnixStream` under one epoll loop per side.
        StdEpoll => "std-epoll",
        /// tokio's `UnixStream`, or on Windows its named pipes.
        Tokio => "tokio",
        /// The `interprocess` crate's local sockets on tokio (named pipes on Windows).
        Interprocess => "interprocess",
        /// iceoryx2's request-response between two processes.
        Iceoryx2 => "iceoryx2",
        /// Qt's `QLocalServer`/`QLocalSocket` in its event loop (a C++ program).
        Qt => "qt",
        /// ringlink's core `Ring`.
        RinglinkRing => "ringlink-ring",
        /// ringlink's core `Channel`.
        RinglinkChannel => "ringlink-channel",
        /// The `rtrb` crate.
        Rtrb => "rtrb",
        /// The `ringbuf` crate.
        Ringbuf => "ringbuf",
        /// `heapless::spsc` with `[u8; chunk]` items.
        Heapless => "heapless",
        /// `heapless::spsc` one byte at a time.
        HeaplessBytes => "heapless-bytes",
    }
}

impl Name {
    /// Whether this is one of ringlink's own transports or rings.
    pub fn is_ringlink(self) -> bool {
        self.as_str().starts_with("ringlink")
    }

    /// Whether this transport moves its bytes through shared memory (ringlink's, iceoryx2's).
    pub fn is_shared_memory(self) -> bool {
        matches!(
            self,
            Name::RinglinkShm | Name::RinglinkShmTokio | Name::RinglinkShmCopy | Name::Iceoryx2
        )
    }
}

names! {
    /// What drives a transport's connections on each side.
    Driver {
        /// One blocking thread per connection.
        Threads => "threads",
        /// One thread per connection, shared memory's ring-to-ring `splice`.
        ThreadsSplice => "threads, splice",
        /// One thread per connection, shared memory through a buffer.
        ThreadsCopy => "threads, copy",
        /// One `epoll` loop per side.
        Epoll => "epoll",
        /// A current-thread tokio runtime per side, a task per connection.
        TokioTasks => "tokio tasks",
        /// A thread per connection that spins on its peer (never sleeps).
        Spinning => "spinning",
        /// One thread per side that polls all its connections in turn, spinning
        /// (never sleeps): a busy-polling event loop.
        SpinLoop => "spin loop",
        /// A thread per connection that sleeps on an event until its peer signals.
        EventDriven => "event-driven",
        /// Qt's event loop (one per side).
        QtEventLoop => "Qt event loop",
        /// The core case: a producer and a consumer thread.
        TwoThreads => "2 threads",
    }
}

/// Drivers that compare with each other: a row is measured against the peers that a
/// user of the same kind of driver would otherwise pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// A blocking thread per connection (std's way).
    Threads,
    /// One readiness loop per side (epoll, Qt's event loop).
    Loop,
    /// tokio tasks.
    Tokio,
    /// A thread per connection that spins (shared memory's hot path).
    Spinning,
    /// Shared memory that sleeps on an event.
    EventDriven,
    /// The core rings.
    Core,
}

impl Driver {
    /// The kind of driver, which decides a row's like.
    pub fn kind(self) -> DriverKind {
        match self {
            Driver::Threads | Driver::ThreadsCopy => DriverKind::Threads,
            // Shared memory's threads spin before they park.
            Driver::ThreadsSplice | Driver::Spinning | Driver::SpinLoop => DriverKind::Spinning,
            Driver::Epoll | Driver::QtEventLoop => DriverKind::Loop,
            Driver::TokioTasks => DriverKind::Tokio,
            Driver::EventDriven => DriverKind::EventDriven,
            Driver::TwoThreads => DriverKind::Core,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_strings() {
        for n in Name::ALL {
            assert_eq!(Name::parse(n.as_str()), Some(*n));
        }
        assert_eq!(Case::parse("PINGPONG"), Some(Case::PingPong));
        assert_eq!(Driver::parse("tokio tasks"), Some(Driver::TokioTasks));
        assert_eq!(
            serde_json::to_string(&Case::DataExchange).unwrap(),
            "\"dataExchange\""
        );
        assert_eq!(format!("{:<6}|", Name::Std), "std   |");
    }
}
