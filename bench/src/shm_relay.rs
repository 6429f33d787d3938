//! A shared-memory connection in the thread-per-connection rows, the same on Linux
//! (`ringlink_unix::shm`) and on Windows (`ringlink_windows::shm`): a server's starts as
//! an accepted handshake, completed on the connection's own thread at first use (not
//! in the accept loop), and every connection echoes ring to ring with `splice`, or
//! (`copy`) through `Read`/`Write` and a buffer, the way socket code moves bytes.

use std::io::{self, Write};
use std::time::Duration;

#[cfg(target_os = "linux")]
use ringlink_unix::shm::{ShmHandshake, ShmStream};
#[cfg(windows)]
use ringlink_windows::shm::{ShmHandshake, ShmStream};

use crate::threaded::{Copying, Relay};
use crate::workload::Limit;

/// A `ShmStream` (or its handshake still to run) with timeouts at the end of the limit.
pub struct ShmRelay {
    stream: Option<ShmStream>,
    handshake: Option<ShmHandshake>,
    timeout: Option<Duration>,
    copy: bool,
}

impl ShmRelay {
    /// A connected `stream` (a client's) or a server's `handshake`; `copy` relays
    /// through a buffer instead of `splice`.
    pub fn new(
        stream: Option<ShmStream>,
        handshake: Option<ShmHandshake>,
        limit: Limit<'_>,
        copy: bool,
    ) -> Self {
        let timeout = Some(limit.remaining().max(Duration::from_millis(1)));
        let mut relay = ShmRelay {
            stream,
            handshake,
            timeout,
            copy,
        };
        if let Some(s) = relay.stream.as_mut() {
            s.set_read_timeout(timeout);
            s.set_write_timeout(timeout);
        }
        relay
    }

    fn stream(&mut self) -> io::Result<&mut ShmStream> {
        if let Some(handshake) = self.handshake.take() {
            let mut stream = handshake.complete()?;
            stream.set_read_timeout(self.timeout);
            stream.set_write_timeout(self.timeout);
            self.stream = Some(stream);
        }
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::other("the shared-memory handshake failed before"))
    }
}

impl Relay for ShmRelay {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream()?.write_all(data)
    }

    fn relay(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let copy = self.copy;
        let stream = self.stream()?;
        if copy {
            return Copying(stream).relay(buf);
        }
        let (rx, tx) = stream.split();
        #[allow(clippy::useless_conversion, clippy::needless_question_mark)]
        // Linux: ringlink's `Error`; Windows: `io::Error`
        Ok(rx.splice(tx)?)
    }
}
