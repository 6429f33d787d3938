//! Waking over the connection's one socket: what a wake-up carries (which half it
//! is for and its send time), sending one, draining them, and the guard against a
//! peer that wakes this side for nothing.

use super::*;
use parking::{Drained, Readiness, WakeSource};
pub(super) use parking::{Half, MAX_IDLE_WAKES, Park, Parking};

/// Bytes of one wake-up record: a little-endian `u64` whose top two bits say which
/// half of the receiving side it is for ([`FOR_READER`], [`FOR_WRITER`]) and whose
/// other 62 bits are its send time ([`monotonic_ns`], which reaches 2^62 after
/// 146 years of uptime). One record is one `send` of 8 bytes, which a Unix stream
/// socket queues whole, so the drain buffer (a whole number of records) never
/// ends inside one from an honest peer.
pub(super) const RECORD: usize = 8;
/// Tag of a wake-up for the reading half: data (or the close) arrived in its ring.
const FOR_READER: u64 = 0b01 << 62;
/// Tag of a wake-up for the writing half: room was freed in its ring (or the
/// peer's reader closed).
const FOR_WRITER: u64 = 0b10 << 62;
const TAG: u64 = 0b11 << 62;

/// One half's end of the wake-ups: the connection's socket (owned by `Shared`, which
/// the half keeps alive), which carries both halves' wake-ups after the handshake.
///
/// Every send and receive passes `MSG_DONTWAIT` and polls with a deadline, so
/// nothing the peer does to its end or to the buffer between them can block this
/// side: a full buffer means a wake-up is pending already, a closed end means the
/// peer is gone.
pub(super) struct Wake {
    fd: RawFd,
    /// Which half this is: its own wake-ups carry its tag, the ones it sends the
    /// other (a reader that freed room wakes the peer's writer, and the reverse).
    half: Half,
    /// Wake-ups in a row that found nothing to do; see [`MAX_IDLE_WAKES`].
    pub(super) idle: u32,
}

impl Wake {
    pub(super) fn new(fd: RawFd, half: Half) -> Wake {
        Wake { fd, half, idle: 0 }
    }

    /// Wakes the peer's opposite half; never blocks. The wake-up carries the time it
    /// was sent, from which the woken side learns what its park cost (see [`Spin`]).
    pub(super) fn notify(&self) {
        let tag = match self.half {
            Half::Reader => FOR_WRITER,
            Half::Writer => FOR_READER,
        };
        let record = (tag | (monotonic_ns() & !TAG)).to_le_bytes();
        // SAFETY: sends `RECORD` bytes from a valid buffer on a socket `Shared` owns.
        // `MSG_DONTWAIT`: EAGAIN means the buffer is full, so wake-ups are pending
        // anyway (the peer drains all of them at once, whichever half they are
        // for); EPIPE/ECONNRESET mean the peer is gone. Both are fine to ignore.
        unsafe {
            libc::send(
                self.fd,
                record.as_ptr().cast(),
                RECORD,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
    }

    /// Counts a wake-up that found nothing to do, or forgets the count when it did
    /// (`progress`). Too many in a row is the peer waking us for nothing: an error.
    pub(super) fn count(&mut self, progress: bool) -> io::Result<()> {
        if progress {
            self.idle = 0;
            return Ok(());
        }
        self.idle += 1;
        if self.idle > MAX_IDLE_WAKES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared-memory connection failed: the peer keeps waking this side with nothing to do",
            ));
        }
        Ok(())
    }
}

fn bad_wake_up(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the peer sent {what} instead of a wake-up"),
    )
}

/// The connection's socket as the source of both halves' wake-ups.
impl WakeSource for Stream {
    fn wait(&self, deadline: Option<Instant>) -> io::Result<Readiness> {
        let mut fds = [libc::pollfd {
            fd: self.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        }];
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Readiness::TimedOut);
                }
                // Round up so we never wake a hair early and spin on a zero timeout.
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32
            }
        };
        let n = crate::sys::retry(|| {
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
            syscall!(unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout) })
        })?;
        let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        Ok(match n {
            0 => Readiness::TimedOut,
            _ if fds[0].revents & gone != 0 => Readiness::HungUp,
            _ => Readiness::Readable,
        })
    }

    /// Takes the pending records, a bounded amount (a peer that keeps sending cannot
    /// hold us here): stale ones are bounded by the socket buffer (a few hundred
    /// small sends fill it), so one call takes them all from an honest peer.
    fn drain(&self, into: &mut Drained) -> io::Result<()> {
        let mut buf = [0u8; 128 * RECORD];
        for _ in 0..4 {
            match crate::sys::recv(self.as_raw_fd(), &mut buf, true) {
                Ok(0) => {
                    into.gone = true;
                    into.empty = true;
                    return Ok(());
                }
                Ok(n) => {
                    if n % RECORD != 0 {
                        return Err(bad_wake_up("a partial record"));
                    }
                    for record in buf[..n].chunks_exact(RECORD) {
                        let mut bytes = [0u8; RECORD];
                        bytes.copy_from_slice(record);
                        let word = u64::from_le_bytes(bytes);
                        let half = match word & TAG {
                            FOR_READER => 0,
                            FOR_WRITER => 1,
                            _ => return Err(bad_wake_up("a record with a bad tag")),
                        };
                        into.woke[half] = Some(word & !TAG);
                    }
                    if n < buf.len() {
                        into.empty = true;
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    into.empty = true;
                    return Ok(());
                }
                Err(_) => {
                    // ECONNRESET and the like: the peer's end is gone.
                    into.gone = true;
                    into.empty = true;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
