//! Parking and waking: each half's wake-up socket, what a wake-up carries (its send
//! time), and the guard against a peer that wakes this side for nothing.

use super::*;

/// Outcome of parking.
pub(super) enum Park {
    /// Something was signalled (or spurious): check the ring again. Carries the
    /// stamp of the newest wake-up taken, if it had one.
    Woken(Option<u64>),
    /// The deadline passed.
    TimedOut,
    /// The peer's socket hung up or misbehaved: it is gone.
    PeerGone,
}

/// How many wake-ups in a row may find nothing to do (no byte, no room, no close)
/// before the peer counts as hostile. An honest peer causes at most a few: a
/// wake-up it decided to send before this side took the bytes it announced.
pub(super) const MAX_IDLE_WAKES: u32 = 32;

/// Bytes of one wake-up: its send time, little-endian nanoseconds.
pub(super) const STAMP: usize = 8;

/// One half's wake-up channel: its end of a Unix stream socket pair whose other
/// end the peer's opposite half holds (the reader's pairs with the peer's writer).
///
/// Each end is its own open file description, and every operation passes
/// `MSG_DONTWAIT` and polls with a deadline, so nothing the peer does to its end,
/// to the flags of ours, or to the buffer between them can block this side: a
/// full buffer means a wake-up is pending already, a closed end means the peer
/// is gone.
pub(super) struct Wake {
    pub(super) fd: WakeFd,
    /// Wake-ups in a row that found nothing to do; see [`MAX_IDLE_WAKES`].
    pub(super) idle: u32,
}

/// Where a half's wake-ups travel.
pub(super) enum WakeFd {
    /// The wake-up socket pair's end, owned by the half.
    Pair(OwnedFd),
    /// The connection's socket, owned by `Shared` (which the half keeps alive):
    /// after the handshake it carries nothing but these wake-ups.
    Connection(RawFd),
}

impl Wake {
    pub(super) fn new(fd: WakeFd) -> Wake {
        Wake { fd, idle: 0 }
    }

    pub(super) fn raw(&self) -> RawFd {
        match &self.fd {
            WakeFd::Pair(fd) => fd.as_raw_fd(),
            WakeFd::Connection(fd) => *fd,
        }
    }

    /// Wakes the peer's half at the other end; never blocks. The wake-up is the
    /// time it was sent ([`monotonic_ns`], [`STAMP`] bytes), from which the woken
    /// side learns what its park cost (see [`Spin`]).
    pub(super) fn notify(&self) {
        let stamp = monotonic_ns().to_le_bytes();
        // SAFETY: sends `STAMP` bytes from a valid buffer on a socket we own.
        // `MSG_DONTWAIT`: EAGAIN means the buffer is full, so a wake-up is pending
        // anyway; EPIPE/ECONNRESET mean the peer is gone. Both are fine to ignore.
        unsafe {
            libc::send(
                self.raw(),
                stamp.as_ptr().cast(),
                STAMP,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
    }

    /// Takes the pending wake-up bytes, a bounded amount (a peer that keeps
    /// sending cannot hold us here). `None` when the peer's end is closed, else
    /// the newest wake-up's stamp if the bytes end with a whole one.
    pub(super) fn drain(&self) -> Option<Option<u64>> {
        // Stale wake-ups are bounded by the socket buffer (a few hundred small
        // sends fill it), so one call takes them all from an honest peer.
        let mut buf = [0u8; 1024];
        let mut total = 0usize;
        let mut stamp = None;
        for _ in 0..4 {
            // SAFETY: receives into a valid buffer of `buf.len()` bytes from a
            // socket we own; `MSG_DONTWAIT` never blocks, whatever the fd's flags.
            let n = unsafe {
                libc::recv(
                    self.raw(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match n {
                0 => return None,
                n if n > 0 => {
                    let n = n as usize;
                    total += n;
                    stamp = (n >= STAMP && total % STAMP == 0).then(|| {
                        let mut last = [0u8; STAMP];
                        last.copy_from_slice(&buf[n - STAMP..n]);
                        u64::from_le_bytes(last)
                    });
                    if n < buf.len() {
                        return Some(stamp);
                    }
                }
                _ => {
                    let e = io::Error::last_os_error();
                    let open = matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    );
                    return open.then_some(stamp);
                }
            }
        }
        Some(stamp)
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

    /// Sleeps until woken, the peer is gone (either socket hangs up), or `deadline`.
    pub(super) fn park(&self, sock: &Stream, deadline: Option<Instant>) -> io::Result<Park> {
        let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        let mut fds = [
            libc::pollfd {
                fd: self.raw(),
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            },
            // Only for a hang-up: its bytes, if any, are the other half's wake-ups.
            libc::pollfd {
                fd: sock.as_raw_fd(),
                events: libc::POLLRDHUP,
                revents: 0,
            },
        ];
        let count = if matches!(self.fd, WakeFd::Connection(_)) {
            1
        } else {
            2
        };
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Park::TimedOut);
                }
                // Round up so we never wake a hair early and spin on a zero timeout.
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32
            }
        };
        let n = crate::sys::retry(|| {
            // SAFETY: `fds` is a valid array of two pollfds for the duration of the call.
            syscall!(unsafe { libc::poll(fds.as_mut_ptr(), count, timeout) })
        })?;
        if n == 0 {
            return Ok(Park::TimedOut);
        }
        if fds[1].revents & gone != 0 || fds[0].revents & gone != 0 {
            return Ok(Park::PeerGone);
        }
        if fds[0].revents & libc::POLLIN == 0 {
            return Ok(Park::Woken(None));
        }
        match self.drain() {
            None => Ok(Park::PeerGone),
            Some(stamp) => Ok(Park::Woken(stamp)),
        }
    }
}
