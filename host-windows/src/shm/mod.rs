//! The shared-memory fast path: two core rings in an unnamed, pagefile-backed section
//! mapped by both processes, with event wake-ups, behind a byte-stream API (the same
//! one `ringlink-unix` has on Linux).
//!
//! A connection is set up over an already connected named pipe: the offering side
//! creates a section with no name (nothing can find it or squat it) and an owner-only
//! access list, maps it, initialises the two rings, creates four unnamed auto-reset
//! events (one per half and side, each with a single waiter) and sends the values of
//! these handles over the pipe. The accepting side opens the offering process (its id
//! comes from the pipe: `GetNamedPipeServerProcessId`) and duplicates each value out
//! of *that* process's handle table into a new handle of its own, with only the
//! access it needs. So a value that names some other object of the offerer, or none,
//! can never alias a handle of the accepting process. It then validates everything
//! before it acknowledges: the kernel's type of each object (`NtQueryObject`: one
//! `Section`, four `Event`s), that the whole view maps read-write, is committed, is
//! backed by the pagefile (not by a file) and is exactly as long as two rings of the
//! capacity the first header states plus the control page, and every ring header (by
//! `ringlink-core`). The section's handle is closed once mapped; the pipe stays open.
//!
//! From then on bytes move through the rings without a system call while both sides
//! are busy. A side that finds its ring empty (or full) spins about as long as parking
//! costs (the policy is `ringlink_host::spin`, shared with Linux), then parks in
//! `WaitForMultipleObjects` on its event *and* the peer's process, so an idle
//! connection sleeps and a killed peer wakes it with an error at once instead of a hang.
//! A wake-up leaves its send time in the mapping's control page, from which the woken
//! side learns what its park cost.
//!
//! **The peer is not trusted.** Every index read from the mapping is validated by
//! `ringlink-core`, and no Rust reference covers the mapping (bytes move through
//! volatile copies, grants lend [`VolatileSlice`] views): a peer that writes garbage
//! into the mapping makes this connection fail with
//! [`std::io::ErrorKind::InvalidData`], never an out-of-bounds access. `SetEvent` never
//! blocks, an auto-reset event holds at most one pending wake-up, and a peer that
//! keeps signalling this side with nothing to do is an `InvalidData` error after a
//! few such wake-ups, not a spinning core. (A process of the same user can open this
//! one and write its memory outright; Windows offers no isolation between them. What
//! is defended here is everything a peer can do through the connection.)
//!
//! On the accepting side of a listener, [`ShmStream::accept`] returns before the
//! handshake ([`ShmHandshake`]): complete it on the connection's own thread, so a
//! silent client costs the accept loop nothing.
//!
//! [`tokio::AsyncShmStream`] (feature `tokio`) is the same stream for tokio, parking in a
//! wait registered with the system thread pool instead of a blocked thread.
//!
//! Besides `Read`/`Write`, bytes can be used where they lie: [`ShmReadHalf::read_grant`]
//! lends what arrived, [`ShmWriteHalf::write_grant`] lends free ring space to fill, and
//! [`ShmReadHalf::splice`] moves what arrived into another ring with one copy (an echo
//! or a relay without a buffer in between).
//!
//! ```
//! use std::io::{Read, Write};
//! use ringlink_windows::Stream;
//! use ringlink_windows::shm::{ShmOptions, ShmStream};
//!
//! let (client, server) = Stream::pair()?;
//! let peer = std::thread::spawn(move || ShmStream::accept_offer(client, &ShmOptions::new()));
//! let mut server = ShmStream::offer(server, &ShmOptions::new())?;
//! let mut client = peer.join().unwrap()?;
//! server.write_all(b"through shared memory")?;
//! let mut buf = [0u8; 21];
//! client.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"through shared memory");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::mem::ManuallyDrop;
use std::os::windows::io::OwnedHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringlink_core::ring::{
    Consumer, GrantError, HEADER_SIZE, Producer, RawRing, ReadGrant, RingError, Untrusted,
    WriteGrant,
};
pub use ringlink_core::volatile::{VolatileSlice, VolatileSliceMut};
use ringlink_host::spin::Spin;

use crate::{ConnectOptions, Error, IntoName, Listener, PeerCredentials, Stream};

mod handshake;
mod park;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use handshake::ShmHandshake;
use park::{Park, Wake};
use sys::*;

/// Default capacity of each of the two rings.
pub const DEFAULT_CAPACITY: usize = 256 * 1024;
/// Largest ring capacity a peer may offer (bounds the mapping an accepting side maps).
pub const MAX_CAPACITY: usize = 64 * 1024 * 1024;
/// Default longest time a side spins on an empty or full ring before it parks.
/// Within it, a side spins about as long as its parks measurably cost (see
/// [`ShmOptions::spin`]).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

const PAGE: usize = 4096;
/// The control page after the two rings: one wake-up stamp per event, each on its own
/// 128-byte line.
const CONTROL: usize = PAGE;
const STAMP_LINE: usize = 128;

/// Options of a shared-memory connection.
#[derive(Debug, Clone)]
pub struct ShmOptions {
    capacity: usize,
    spin: Duration,
    handshake_timeout: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ShmOptions {
    /// Rings of [`DEFAULT_CAPACITY`], [`DEFAULT_SPIN`], a 5 s handshake timeout.
    pub fn new() -> Self {
        ShmOptions {
            capacity: DEFAULT_CAPACITY,
            spin: DEFAULT_SPIN,
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// Capacity of each ring (offering side); rounded up to a power of two,
    /// clamped to `4096..=MAX_CAPACITY`.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.clamp(PAGE, MAX_CAPACITY).next_power_of_two();
        self
    }

    /// The longest a side spins on an empty or full ring before parking (zero:
    /// park at once). Within this bound a side spins about as long as a park costs
    /// it, as measured on its own recent wake-ups (the time from the peer's wake-up
    /// to running again): where waking a thread is cheap it parks soon, where it is
    /// slow (a VM waking another vCPU) it spins longer, as that is where spinning pays.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// How long the handshake may take before it fails with `TimedOut`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// What both halves of a connection share: the mapping, the pipe and the peer's process.
struct Shared {
    /// Kept alive (and unmapped on drop) for the rings and stamps that point into it.
    map: Mapping,
    /// Carries nothing after the handshake; kept open (with the listener slot it holds).
    pipe: Stream,
    /// The peer's process (`SYNCHRONIZE` only): a parked half wakes when it exits.
    peer: OwnedHandle,
}

/// Bytes lent by [`ShmReadHalf::read_grant`]: read them in place, then
/// [`release`](Self::release) what was used. Dropping the grant frees nothing.
///
/// The bytes lie in memory the peer can write at any moment, so they are lent as
/// a [`VolatileSlice`] ([`bytes`](Self::bytes)), never as a `&[u8]`: copy out what
/// you need, and validate it after the copy.
#[must_use = "a read grant frees nothing until released"]
pub struct ShmReadGrant<'a> {
    grant: ReadGrant<'a, 'static, Untrusted>,
    wake: &'a Wake,
}

impl ShmReadGrant<'_> {
    /// Number of bytes lent.
    pub fn len(&self) -> usize {
        self.grant.len()
    }

    /// Whether no bytes are lent (never, for a grant that was given).
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty()
    }

    /// The bytes, as a view that says the peer may change them under you.
    pub fn bytes(&self) -> VolatileSlice<'_> {
        self.grant.bytes()
    }

    /// Copies the first `out.len()` bytes (fewer if the grant is shorter) into
    /// `out`; returns how many.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        self.grant.bytes().copy_to(out)
    }

    /// Frees the first `used` bytes (clamped to the grant) for the peer's writer,
    /// waking it if it sleeps for room.
    pub fn release(self, used: usize) {
        if self.grant.release_wakes(used) && used > 0 {
            self.wake.notify();
        }
    }
}

/// Ring space lent by [`ShmWriteHalf::write_grant`]: fill it in place, then
/// [`commit`](Self::commit) what was written. Dropping the grant sends nothing.
///
/// The space lies in memory the peer can write too, so it is lent as a
/// [`VolatileSliceMut`] ([`bytes`](Self::bytes)), never as a `&mut [u8]`.
#[must_use = "a write grant sends nothing until committed"]
pub struct ShmWriteGrant<'a> {
    grant: WriteGrant<'a, 'static, Untrusted>,
    wake: &'a Wake,
}

impl ShmWriteGrant<'_> {
    /// Number of bytes lent.
    pub fn len(&self) -> usize {
        self.grant.len()
    }

    /// Whether no bytes are lent (never, for a grant that was given).
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty()
    }

    /// The space, as a view that says the peer may write it too.
    pub fn bytes(&mut self) -> VolatileSliceMut<'_> {
        self.grant.bytes()
    }

    /// Copies `data` (as much as fits) to the start of the grant; returns how many bytes.
    pub fn copy_from(&mut self, data: &[u8]) -> usize {
        self.grant.bytes().copy_from(data)
    }

    /// Sends the first `used` bytes (clamped to the grant), waking the peer's
    /// reader if it sleeps for data.
    pub fn commit(self, used: usize) {
        if self.grant.commit_wakes(used) && used > 0 {
            self.wake.notify();
        }
    }
}

/// A grant failed right after its side saw bytes (or room): only a peer writing
/// into the ring's indices can cause that.
fn grant_failed(e: GrantError) -> io::Error {
    match e {
        GrantError::Corrupted(e) => corrupted(e),
        _ => moved_back(),
    }
}

fn moved_back() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "shared-memory connection failed: the peer moved a ring index backwards",
    )
}

fn corrupted(e: RingError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("shared-memory connection failed: {e}"),
    )
}

fn peer_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "shared-memory peer went away (its process exited) without closing the connection",
    )
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid shared-memory offer: {e}"),
    )
}

fn invalid_msg(msg: &str) -> io::Error {
    invalid(msg)
}

/// The reading half of a shared-memory connection.
pub struct ShmReadHalf {
    /// Points into `shared.map`; dropped by hand in `Drop`, before the notify and
    /// before the last reference to the mapping goes.
    rx: ManuallyDrop<Consumer<'static, Untrusted>>,
    /// Where this half sleeps for data and wakes the peer's writer after freeing room.
    wake: Wake,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    nonblocking: bool,
    spin: Spin,
    /// Waits that ended in a park (for tests and diagnostics).
    parks: u64,
    peer_gone: bool,
}

/// The halves given back by [`ShmReadHalf::reunite`]: they belong to different streams.
#[derive(Debug)]
pub struct ShmReuniteError(pub ShmReadHalf, pub ShmWriteHalf);

impl std::fmt::Display for ShmReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves of different shared-memory streams")
    }
}

impl std::error::Error for ShmReuniteError {}

impl ShmReadHalf {
    /// Joins this half with the writing half of the same stream again (as
    /// `OwnedReadHalf::reunite` does for a [`Stream`]); gives both back if they
    /// belong to different streams.
    #[allow(clippy::result_large_err)] // giving the halves back is the point
    pub fn reunite(self, write: ShmWriteHalf) -> Result<ShmStream, ShmReuniteError> {
        if Arc::ptr_eq(&self.shared, &write.shared) {
            Ok(ShmStream { read: self, write })
        } else {
            Err(ShmReuniteError(self, write))
        }
    }
}

/// The writing half of a shared-memory connection.
pub struct ShmWriteHalf {
    /// Points into `shared.map`; dropped by hand in `Drop`, before the notify and
    /// before the last reference to the mapping goes.
    tx: ManuallyDrop<Producer<'static, Untrusted>>,
    /// Where this half sleeps for room and wakes the peer's reader after publishing.
    wake: Wake,
    /// Set by [`ShmWriteHalf::close`]: nothing may be written any more.
    closed: bool,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    nonblocking: bool,
    spin: Spin,
    /// Waits that ended in a park (for tests and diagnostics).
    parks: u64,
}

/// A byte stream over two rings in memory shared with the peer process.
///
/// Implements `std::io::{Read, Write}` and the `embedded_io` traits; reads and
/// writes honour timeouts and nonblocking mode like a pipe's.
pub struct ShmStream {
    read: ShmReadHalf,
    write: ShmWriteHalf,
}

/// The most bytes copied between two index updates. A large read or write moves
/// in pieces of this size, each published at once, so the peer (spinning on another
/// core) copies the first piece while this side copies the next, and a writer
/// waiting for space resumes before a long read ends.
const PIECE: usize = 16 * 1024;

/// Moves up to `len` bytes in pieces of at most [`PIECE`]: `step` moves the bytes
/// of one range and says how many it moved, stopping at the first short piece.
/// `wake` looks for a parked peer after the first piece (to wake it early) and
/// after the last (so no wake-up is lost: the peer cannot park unseen once the last
/// piece is published), with no fence between pieces.
fn in_pieces<H>(
    half: &mut H,
    len: usize,
    mut step: impl FnMut(&mut H, std::ops::Range<usize>) -> io::Result<usize>,
    wake: fn(&H),
) -> io::Result<usize> {
    let mut done = 0;
    while done < len {
        let end = len.min(done + PIECE);
        let n = step(half, done..end)?;
        let first = done == 0;
        done += n;
        if done < end {
            break;
        }
        if first && done < len {
            wake(half);
        }
    }
    if done > 0 {
        wake(half);
    }
    Ok(done)
}

impl ShmReadHalf {
    /// Copies out what the ring holds now (up to `buf.len()`), freeing it piece by
    /// piece (see [`in_pieces`]); `Ok(0)` when the ring is empty.
    fn take(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        in_pieces(
            self,
            buf.len(),
            |half, piece| half.rx.read(&mut buf[piece]).map_err(corrupted),
            ShmReadHalf::wake_writer,
        )
    }

    /// Notifies the peer's writer if it is parked waiting for room.
    fn wake_writer(&self) {
        if self.rx.producer_parked() {
            self.wake.notify();
        }
    }

    /// Waits (spin, then park) until the ring holds bytes and returns how many,
    /// or `Ok(0)` once the peer has closed its side and every byte has been read.
    fn wait_readable(&mut self) -> io::Result<usize> {
        let mut deadline = None;
        loop {
            let available = self.rx.available().map_err(corrupted)?;
            if available > 0 {
                self.wake.idle = 0;
                return Ok(available);
            }
            if self.rx.is_producer_closed() {
                // `closed` is stored after the last byte: one more look sees them all.
                return self.rx.available().map_err(corrupted);
            }
            if self.peer_gone {
                return Err(peer_gone());
            }
            if self.nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let rx = &mut *self.rx;
            if self
                .spin
                .run(|| rx.available().map(|a| a > 0).unwrap_or(true) || rx.is_producer_closed())
            {
                continue;
            }
            if deadline.is_none() {
                deadline = self.timeout.map(|t| Instant::now() + t);
            }
            let parked_at = monotonic_ns();
            if self.rx.prepare_park().map_err(corrupted)? {
                self.parks += 1;
                let parked = self.wake.park(&self.shared.peer, deadline);
                self.rx.unpark();
                match parked? {
                    Park::Woken(stamp) => {
                        self.spin.learn(parked_at, stamp, monotonic_ns());
                        let progress = self.rx.available().map_err(corrupted)? > 0
                            || self.rx.is_producer_closed();
                        self.wake.count(progress)?;
                    }
                    Park::TimedOut => return Err(timed_out("shared-memory read")),
                    Park::PeerGone => self.peer_gone = true,
                }
            }
        }
    }

    /// Reads at least one byte, blocking (spin, then park) until data, end of
    /// stream (`Ok(0)`), the timeout, or an error.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.wait_readable()? == 0 {
            return Ok(0);
        }
        match self.take(buf)? {
            0 => Err(moved_back()),
            n => Ok(n),
        }
    }

    /// Zero-copy read: waits like [`read`](Self::read), then lends the bytes
    /// that lie contiguously in the ring; `Ok(None)` at the end of the stream.
    /// Bytes stay in the ring until [`ShmReadGrant::release`] frees them.
    ///
    /// ```
    /// use std::io::Write;
    /// use ringlink_windows::shm::{ShmOptions, ShmStream};
    ///
    /// let (a, b) = ringlink_windows::Stream::pair()?;
    /// let peer = std::thread::spawn(move || ShmStream::accept_offer(b, &ShmOptions::new()));
    /// let mut writer = ShmStream::offer(a, &ShmOptions::new())?;
    /// let mut reader = peer.join().unwrap()?;
    /// writer.write_all(b"in place")?;
    /// let grant = reader.read_grant()?.expect("the writer is still open");
    /// // The peer may change the bytes while they are lent: copy, then use the copy.
    /// let mut copy = [0u8; 8];
    /// let n = grant.copy_to(&mut copy);
    /// assert_eq!(&copy[..n], b"in place");
    /// grant.release(n);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_grant(&mut self) -> io::Result<Option<ShmReadGrant<'_>>> {
        if self.wait_readable()? == 0 {
            return Ok(None);
        }
        let wake = &self.wake;
        match self.rx.read_grant() {
            Ok(grant) => Ok(Some(ShmReadGrant { grant, wake })),
            Err(e) => Err(grant_failed(e)),
        }
    }

    /// Moves the bytes readable now into `to`, ring to ring with a single copy
    /// (no buffer in between): what a relay or an echo does with [`read`](Self::read)
    /// and [`write`](ShmWriteHalf::write), for half the copying. Waits like `read`
    /// for the first byte and like `write` for room; moves at most one ring's
    /// capacity. Returns the bytes moved, `0` at the end of the stream.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use ringlink_windows::shm::{ShmOptions, ShmStream};
    ///
    /// let (a, b) = ringlink_windows::Stream::pair()?;
    /// let peer = std::thread::spawn(move || ShmStream::accept_offer(b, &ShmOptions::new()));
    /// let mut client = ShmStream::offer(a, &ShmOptions::new())?;
    /// let mut server = peer.join().unwrap()?;
    /// client.write_all(b"echo")?;
    /// let (rx, tx) = server.split();
    /// assert_eq!(rx.splice(tx)?, 4); // the server echoes without a buffer
    /// let mut back = [0u8; 4];
    /// client.read_exact(&mut back)?;
    /// assert_eq!(&back, b"echo");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn splice(&mut self, to: &mut ShmWriteHalf) -> io::Result<usize> {
        // Move what is there now, no more: a relay that kept chasing a busy peer
        // would never return, and a last look at an empty ring costs a cache miss.
        let available = self.wait_readable()?;
        if available == 0 {
            return Ok(0);
        }
        to.check_open()?;
        let mut moved = 0;
        let mut waited = false;
        while moved < available {
            let src = match self.rx.read_grant() {
                Ok(g) => g,
                Err(GrantError::Corrupted(e)) => return Err(corrupted(e)),
                Err(_) => break,
            };
            let mut dst = match to.tx.grant_max(src.len().min(PIECE).min(available - moved)) {
                Ok(g) => g,
                Err(GrantError::Corrupted(e)) => return Err(corrupted(e)),
                Err(_) if moved == 0 && !waited => {
                    // Nothing moved yet: wait for room, as `write` would.
                    drop(src);
                    to.wait_writable()?;
                    waited = true;
                    continue;
                }
                Err(_) => break,
            };
            let n = dst.bytes().copy_from_volatile(&src.bytes());
            dst.commit(n);
            src.release(n);
            moved += n;
            if moved == n && moved < available {
                // After the first piece: wake a parked peer early (as `publish` does).
                to.wake_reader();
                self.wake_writer();
            }
        }
        if moved == 0 {
            // Bytes were readable and room was made, and only the peer can take either away.
            return Err(moved_back());
        }
        // After the last piece: no wake-up is lost.
        to.wake_reader();
        self.wake_writer();
        Ok(moved)
    }

    /// Sets the read timeout (`None`: wait forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Nonblocking mode: reads fail with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.nonblocking = nonblocking;
    }
}

impl Drop for ShmReadHalf {
    fn drop(&mut self) {
        // SAFETY: `rx` is not used after this; dropping it marks the ring closed for
        // reading, which the peer's writer must see when the notify wakes it.
        unsafe { ManuallyDrop::drop(&mut self.rx) };
        self.wake.notify();
    }
}

impl ShmWriteHalf {
    /// Copies in what fits now (up to `buf.len()`), publishing it piece by piece
    /// (see [`in_pieces`]); `Ok(0)` when the ring is full.
    fn publish(&mut self, buf: &[u8]) -> io::Result<usize> {
        in_pieces(
            self,
            buf.len(),
            |half, piece| half.tx.write(&buf[piece]).map_err(corrupted),
            ShmWriteHalf::wake_reader,
        )
    }

    /// Notifies the peer's reader if it is parked waiting for data.
    fn wake_reader(&self) {
        if self.tx.consumer_parked() {
            self.wake.notify();
        }
    }

    /// `BrokenPipe` once either side has closed this direction.
    fn check_open(&self) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after this side closed the stream",
            ));
        }
        if self.tx.is_consumer_closed() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the shared-memory peer closed its reading side",
            ));
        }
        Ok(())
    }

    /// Waits (spin, then park) until the ring has room for at least one byte.
    /// Callers try their write first: this re-reads the peer's index, which costs
    /// a cache miss the write's cached view of the free space often avoids.
    fn wait_writable(&mut self) -> io::Result<()> {
        let mut deadline = None;
        loop {
            self.check_open()?;
            if self.tx.free().map_err(corrupted)? > 0 {
                self.wake.idle = 0;
                return Ok(());
            }
            if self.nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let tx = &mut *self.tx;
            if self
                .spin
                .run(|| tx.free().map(|f| f > 0).unwrap_or(true) || tx.is_consumer_closed())
            {
                continue;
            }
            if deadline.is_none() {
                deadline = self.timeout.map(|t| Instant::now() + t);
            }
            let parked_at = monotonic_ns();
            if self.tx.prepare_park().map_err(corrupted)? {
                self.parks += 1;
                let parked = self.wake.park(&self.shared.peer, deadline);
                self.tx.unpark();
                match parked? {
                    Park::Woken(stamp) => {
                        self.spin.learn(parked_at, stamp, monotonic_ns());
                        let progress =
                            self.tx.free().map_err(corrupted)? > 0 || self.tx.is_consumer_closed();
                        self.wake.count(progress)?;
                    }
                    Park::TimedOut => return Err(timed_out("shared-memory write")),
                    Park::PeerGone => return Err(peer_gone()),
                }
            }
        }
    }

    /// Writes at least one byte, blocking (spin, then park) until space, the
    /// timeout, or an error (`BrokenPipe` once the peer stopped reading).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.check_open()?;
        if let n @ 1.. = self.publish(buf)? {
            return Ok(n);
        }
        self.wait_writable()?;
        match self.publish(buf)? {
            0 => Err(moved_back()),
            n => Ok(n),
        }
    }

    /// Zero-copy write: waits like [`write`](Self::write) for room, then lends up
    /// to `max` contiguous bytes of the ring to fill in place (fewer when less is
    /// free or the free space wraps). Nothing is sent until
    /// [`ShmWriteGrant::commit`]. `max` must not be zero.
    pub fn write_grant(&mut self, max: usize) -> io::Result<ShmWriteGrant<'_>> {
        if max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a write grant needs at least one byte",
            ));
        }
        self.wait_writable()?;
        let wake = &self.wake;
        match self.tx.grant_max(max) {
            Ok(grant) => Ok(ShmWriteGrant { grant, wake }),
            Err(e) => Err(grant_failed(e)),
        }
    }

    /// Sets the write timeout (`None`: wait forever).
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Ends this direction of the stream: the peer reads what is left, then `0`.
    /// Later writes fail with `BrokenPipe`.
    pub fn close(&mut self) {
        self.closed = true;
        self.tx.close();
        self.wake.notify();
    }

    /// Nonblocking mode: writes fail with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.nonblocking = nonblocking;
    }
}

impl Drop for ShmWriteHalf {
    fn drop(&mut self) {
        // SAFETY: `tx` is not used after this; dropping it marks the ring closed for
        // writing (after its last byte), which the peer's reader must see when woken.
        unsafe { ManuallyDrop::drop(&mut self.tx) };
        self.wake.notify();
    }
}

impl ShmStream {
    /// `wakes`: the reader's, then the writer's.
    fn assemble(
        tx: Producer<'_, Untrusted>,
        rx: Consumer<'_, Untrusted>,
        map: Mapping,
        pipe: Stream,
        peer: OwnedHandle,
        wakes: [Wake; 2],
        options: &ShmOptions,
    ) -> ShmStream {
        // SAFETY: the handles point into `map`, which moves into `shared`; each half
        // keeps an `Arc<Shared>` and drops its handle first thing in its `Drop`, so no
        // handle outlives the mapping.
        let (tx, rx) = unsafe {
            (
                std::mem::transmute::<Producer<'_, Untrusted>, Producer<'static, Untrusted>>(tx),
                std::mem::transmute::<Consumer<'_, Untrusted>, Consumer<'static, Untrusted>>(rx),
            )
        };
        let shared = Arc::new(Shared { map, pipe, peer });
        let [read_wake, write_wake] = wakes;
        ShmStream {
            read: ShmReadHalf {
                rx: ManuallyDrop::new(rx),
                wake: read_wake,
                shared: shared.clone(),
                timeout: None,
                nonblocking: false,
                spin: Spin::new(options.spin),
                parks: 0,
                peer_gone: false,
            },
            write: ShmWriteHalf {
                tx: ManuallyDrop::new(tx),
                wake: write_wake,
                closed: false,
                shared,
                timeout: None,
                nonblocking: false,
                spin: Spin::new(options.spin),
                parks: 0,
            },
        }
    }

    /// Connects to the server at `name` (which accepts with [`ShmStream::accept`])
    /// with the pipe's security and deadlines, then takes its shared-memory offer.
    ///
    /// ```
    /// # let name = format!("ringlink-shm-doc-{}", std::process::id());
    /// # let name = name.as_str();
    /// use std::io::{Read, Write};
    /// use ringlink_windows::shm::{ShmOptions, ShmStream};
    /// use ringlink_windows::{ConnectOptions, Listener, ListenerOptions};
    ///
    /// let listener = Listener::bind(name, ListenerOptions::new())?;
    /// let server = std::thread::spawn(move || -> Result<(), ringlink_windows::Error> {
    ///     let handshake = ShmStream::accept(&listener, &ShmOptions::new())?;
    ///     // The offer runs on the connection's own thread, with its own deadline.
    ///     let conn = std::thread::spawn(move || -> std::io::Result<()> {
    ///         let mut s = handshake.complete()?;
    ///         let mut buf = [0u8; 4];
    ///         s.read_exact(&mut buf)?;
    ///         s.write_all(&buf)
    ///     });
    ///     conn.join().unwrap()?;
    ///     Ok(())
    /// });
    /// let mut c = ShmStream::connect(name, ConnectOptions::new(), &ShmOptions::new())?;
    /// c.write_all(b"fast")?;
    /// let mut back = [0u8; 4];
    /// c.read_exact(&mut back)?;
    /// assert_eq!(&back, b"fast");
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(
        name: impl IntoName,
        connect: ConnectOptions,
        options: &ShmOptions,
    ) -> Result<ShmStream, Error> {
        let stream = Stream::connect(name, connect)?;
        ShmStream::accept_offer(stream, options)
    }

    /// Accepts the next connection on `listener` (with its peer policy and limits),
    /// and returns at once with the shared-memory handshake still to run: call
    /// [`ShmHandshake::complete`] on the connection's own thread or task, so a
    /// silent or slow client holds up only itself (up to its `handshake_timeout`),
    /// never the accept loop or the clients behind it. See [`ShmStream::connect`].
    pub fn accept(listener: &Listener, options: &ShmOptions) -> Result<ShmHandshake, Error> {
        Ok(ShmHandshake::new(listener.accept()?, options))
    }

    /// The peer's process and user, from the pipe beside the mapping.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        self.read.shared.pipe.peer_credentials()
    }

    /// Both halves at once, borrowed: for [`ShmReadHalf::splice`] back into the
    /// same stream (an echo) or grants on both directions.
    pub fn split(&mut self) -> (&mut ShmReadHalf, &mut ShmWriteHalf) {
        (&mut self.read, &mut self.write)
    }

    /// Zero-copy read; see [`ShmReadHalf::read_grant`].
    pub fn read_grant(&mut self) -> io::Result<Option<ShmReadGrant<'_>>> {
        self.read.read_grant()
    }

    /// Zero-copy write; see [`ShmWriteHalf::write_grant`].
    pub fn write_grant(&mut self, max: usize) -> io::Result<ShmWriteGrant<'_>> {
        self.write.write_grant(max)
    }

    /// Splits into halves that can move to different threads.
    pub fn into_split(self) -> (ShmReadHalf, ShmWriteHalf) {
        (self.read, self.write)
    }

    /// Sets the read timeout (`None`: wait forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read.set_read_timeout(timeout);
    }

    /// Sets the write timeout (`None`: wait forever).
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write.set_write_timeout(timeout);
    }

    /// Nonblocking mode for both directions.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.read.set_nonblocking(nonblocking);
        self.write.set_nonblocking(nonblocking);
    }

    /// Capacity of each ring in bytes.
    pub fn capacity(&self) -> usize {
        self.write.tx.capacity()
    }

    /// The mapping's address and length: for tests that play a hostile peer.
    #[doc(hidden)]
    pub fn raw_mapping(&self) -> (*mut u8, usize) {
        (self.read.shared.map.ptr, self.read.shared.map.len)
    }

    /// The events of the reading and the writing half: each half's own (it sleeps on
    /// it), then the peer's it signals. For tests that play a hostile peer.
    #[doc(hidden)]
    pub fn raw_events(&self) -> [std::os::windows::io::RawHandle; 4] {
        use std::os::windows::io::AsRawHandle;
        let [a, b] = self.read.wake.events();
        let [c, d] = self.write.wake.events();
        [a, b, c, d].map(|h| h.as_raw_handle())
    }

    /// The spin budgets of the reading and the writing half now, and how many of
    /// their waits ended in a park: for tests and diagnostics of the spin policy.
    #[doc(hidden)]
    pub fn spin_stats(&self) -> ([Duration; 2], u64) {
        (
            [self.read.spin.budget(), self.write.spin.budget()],
            self.read.parks + self.write.parks,
        )
    }

    /// The pipe kept open beside the mapping (it carries nothing after the handshake).
    pub fn pipe(&self) -> &Stream {
        &self.read.shared.pipe
    }
}

impl std::fmt::Debug for ShmReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmReadHalf")
            .field("capacity", &self.rx.capacity())
            .field("pipe", &self.shared.pipe)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShmWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmWriteHalf")
            .field("capacity", &self.tx.capacity())
            .field("pipe", &self.shared.pipe)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmStream")
            .field("capacity", &self.capacity())
            .field("pipe", &self.read.shared.pipe)
            .finish_non_exhaustive()
    }
}

impl io::Read for ShmStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl io::Write for ShmStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for ShmReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        ShmReadHalf::read(self, buf)
    }
}

impl io::Write for ShmWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ShmWriteHalf::write(self, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl embedded_io::ErrorType for ShmStream {
    type Error = io::Error;
}

impl embedded_io::Read for ShmStream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        self.read.read(buf)
    }
}

impl embedded_io::Write for ShmStream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        self.write.write(buf)
    }
    fn flush(&mut self) -> Result<(), io::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn pair(options: ShmOptions) -> (ShmStream, ShmStream) {
        let (a, b) = Stream::pair().unwrap();
        let opts = options.clone();
        let t = std::thread::spawn(move || ShmStream::accept_offer(b, &opts));
        let server = ShmStream::offer(a, &options).unwrap();
        (server, t.join().unwrap().unwrap())
    }

    /// Waits (bounded) until `state` holds: a test never sleeps hoping for it.
    fn wait_until(what: &str, mut state: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !state() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            std::thread::yield_now();
        }
    }

    #[test]
    fn halves_are_send() {
        fn send<T: Send>() {}
        send::<ShmReadHalf>();
        send::<ShmWriteHalf>();
        send::<ShmStream>();
    }

    #[test]
    fn echo_both_ways_and_eof() {
        let (mut s, mut c) = pair(ShmOptions::new().capacity(4096));
        s.write_all(b"ping").unwrap();
        let mut b = [0; 4];
        c.read_exact(&mut b).unwrap();
        c.write_all(b"pong").unwrap();
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"pong");
        drop(c);
        assert_eq!(
            s.read(&mut b).unwrap(),
            0,
            "end of stream after the peer closed"
        );
        assert_eq!(s.write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn grants_lend_ring_bytes_in_place() {
        let (mut s, mut c) = pair(ShmOptions::new().capacity(4096));
        assert_eq!(
            s.write_grant(0).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        let mut g = s.write_grant(5).unwrap();
        assert_eq!(g.len(), 5);
        assert_eq!(g.copy_from(b"hello"), 5);
        g.commit(5);
        let g = c.read_grant().unwrap().unwrap();
        let mut out = [0u8; 8];
        assert_eq!(g.copy_to(&mut out), 5);
        assert_eq!(&out[..5], b"hello");
        g.release(2);
        // An unreleased grant leaves its bytes readable.
        let g = c.read_grant().unwrap().unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.bytes().get(0), Some(b'l'));
        drop(g);
        let mut b = [0; 3];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"llo");
        // A write grant dropped without commit sends nothing.
        drop(s.write_grant(3).unwrap());
        c.set_nonblocking(true);
        assert_eq!(
            c.read_grant().err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        drop(s);
        c.set_nonblocking(false);
        assert!(c.read_grant().unwrap().is_none(), "end of stream");
    }

    #[test]
    fn a_parked_reader_wakes_on_a_committed_grant() {
        let (mut s, mut c) = pair(ShmOptions::new().spin(Duration::ZERO));
        c.set_read_timeout(Some(Duration::from_secs(10)));
        let reader = std::thread::spawn(move || {
            let g = c.read_grant().unwrap().unwrap();
            let mut out = vec![0u8; g.len()];
            g.copy_to(&mut out);
            out
        });
        wait_until("the reader parks", || s.write.tx.consumer_parked());
        let mut g = s.write_grant(2).unwrap();
        g.copy_from(b"up");
        g.commit(2);
        assert_eq!(reader.join().unwrap(), b"up");
    }

    #[test]
    fn splice_echoes_more_than_a_ring_and_ends_with_the_stream() {
        let (mut server, client) = pair(ShmOptions::new().capacity(4096));
        server.set_read_timeout(Some(Duration::from_secs(10)));
        server.set_write_timeout(Some(Duration::from_secs(10)));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let expected = data.clone();
        let (mut rx, mut tx) = client.into_split();
        rx.set_read_timeout(Some(Duration::from_secs(10)));
        let writer = std::thread::spawn(move || {
            tx.write_all(&data).unwrap();
            tx.close();
        });
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            rx.read_to_end(&mut back).unwrap();
            back
        });
        let mut moved = 0;
        loop {
            let (r, w) = server.split();
            match r.splice(w).unwrap() {
                0 => break,
                n => moved += n,
            }
        }
        assert_eq!(moved, expected.len());
        server.write.close();
        writer.join().unwrap();
        assert!(reader.join().unwrap() == expected, "echoed bytes differ");
    }

    /// Without spinning, a reader with a small buffer drains a piece and parks
    /// again while a large write is still moving its next pieces in. The writer
    /// then waits for an answer, so only its own check after the last piece can
    /// wake that reader: a lost wake-up shows as a read timeout here.
    #[test]
    fn readers_parking_between_the_pieces_of_a_large_write_are_woken() {
        let options = ShmOptions::new().capacity(64 * 1024).spin(Duration::ZERO);
        let (mut a, mut b) = pair(options);
        for s in [&mut a, &mut b] {
            s.set_read_timeout(Some(Duration::from_secs(10)));
            s.set_write_timeout(Some(Duration::from_secs(10)));
        }
        const MESSAGE: usize = 40_000; // three pieces and a bit
        const ROUNDS: usize = 300;
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 3000];
            for round in 0..ROUNDS {
                let mut got = 0;
                while got < MESSAGE {
                    let n = b
                        .read(&mut buf[..(MESSAGE - got).min(3000)])
                        .expect("woken");
                    assert_eq!(buf[0], round as u8);
                    got += n;
                }
                b.write_all(&[1]).unwrap();
            }
        });
        for round in 0..ROUNDS {
            a.write_all(&[round as u8; MESSAGE]).unwrap();
            let mut ack = [0u8; 1];
            a.read_exact(&mut ack)
                .expect("the reader answers every message");
        }
        reader.join().unwrap();
    }

    #[test]
    fn splice_into_a_closed_reader_is_a_broken_pipe() {
        let (mut a, mut b) = pair(ShmOptions::new());
        let (mut c, d) = pair(ShmOptions::new());
        drop(d);
        b.write_all(b"x").unwrap();
        let (rx, _) = a.split();
        let (_, tx) = c.split();
        assert_eq!(rx.splice(tx).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn read_timeout_and_nonblocking() {
        let (mut s, _c) = pair(ShmOptions::new());
        s.set_read_timeout(Some(Duration::from_millis(50)));
        let t = Instant::now();
        let mut b = [0; 1];
        assert_eq!(s.read(&mut b).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(45));
        s.set_nonblocking(true);
        assert_eq!(
            s.read(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn parked_writer_wakes_when_reader_drains() {
        let (mut s, mut c) = pair(ShmOptions::new().capacity(4096).spin(Duration::ZERO));
        let writer = std::thread::spawn(move || {
            let data = vec![7u8; 64 * 1024];
            s.write_all(&data).unwrap();
            s
        });
        let mut got = vec![0u8; 64 * 1024];
        wait_until("the writer parks on a full ring", || {
            c.read.rx.producer_parked()
        });
        c.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 7));
        writer.join().unwrap();
    }

    #[test]
    fn a_pipe_message_that_is_not_an_offer_is_rejected() {
        let (a, b) = Stream::pair().unwrap();
        ringlink_host::ByteStream::send_all(&a, &[b'x'; 48]).unwrap();
        let err = ShmStream::accept_offer(b, &ShmOptions::new())
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidData, "{err}");
    }

    /// Handle values that name the wrong kind of object in the offerer, or nothing:
    /// refused before any acknowledgement, and nothing of ours is touched.
    #[test]
    fn handles_that_are_not_what_they_claim_are_rejected() {
        use std::os::windows::io::AsRawHandle;
        let event = create_event().unwrap();
        let section = create_section(64 * 1024).unwrap();
        let value = |h: &OwnedHandle| h.as_raw_handle() as usize as u64;
        let cases: [(&str, [u64; 5]); 4] = [
            ("an event as the section", [value(&event); 5]),
            (
                "a section as an event",
                [
                    value(&section),
                    value(&event),
                    value(&section),
                    value(&event),
                    value(&event),
                ],
            ),
            (
                "values that are no handles",
                [
                    0x7fff_fff0,
                    0x7fff_fff4,
                    0x7fff_fff8,
                    0x7fff_fffc,
                    0x7fff_ffe0,
                ],
            ),
            ("null values", [0; 5]),
        ];
        for (what, values) in cases {
            let (a, b) = Stream::pair().unwrap();
            handshake::send_raw_offer(&a, b'S', values);
            let err = ShmStream::accept_offer(b, &ShmOptions::new())
                .err()
                .unwrap();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidData, "{what}: {err}");
        }
        // A section too small for the rings its header would need.
        let (a, b) = Stream::pair().unwrap();
        let events: Vec<OwnedHandle> = (0..4).map(|_| create_event().unwrap()).collect();
        let mut values = [value(&section), 0, 0, 0, 0];
        for (v, e) in values[1..].iter_mut().zip(&events) {
            *v = value(e);
        }
        handshake::send_raw_offer(&a, b'S', values);
        let err = ShmStream::accept_offer(b, &ShmOptions::new())
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidData, "{err}");
        // Our own handles are still ours: the event still works.
        set_event(&event);
    }

    /// A section backed by a file (whose pages could fail to read in) is refused.
    #[test]
    fn a_file_backed_section_is_rejected() {
        use std::os::windows::io::{AsRawHandle, FromRawHandle};
        let path = std::env::temp_dir().join(format!("ringlink-shm-file-{}", std::process::id()));
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(3 * 64 * 1024).unwrap();
        // SAFETY: `file` is an open read-write file; no security attributes, no name.
        let h = unsafe {
            windows_sys::Win32::System::Memory::CreateFileMappingW(
                file.as_raw_handle() as _,
                std::ptr::null(),
                windows_sys::Win32::System::Memory::PAGE_READWRITE,
                0,
                0,
                std::ptr::null(),
            )
        };
        assert!(!h.is_null(), "{}", io::Error::last_os_error());
        // SAFETY: a new handle that nothing else owns.
        let section = unsafe { OwnedHandle::from_raw_handle(h as _) };
        let events: Vec<OwnedHandle> = (0..4).map(|_| create_event().unwrap()).collect();
        let value = |h: &OwnedHandle| h.as_raw_handle() as usize as u64;
        let mut values = [value(&section), 0, 0, 0, 0];
        for (v, e) in values[1..].iter_mut().zip(&events) {
            *v = value(e);
        }
        let (a, b) = Stream::pair().unwrap();
        handshake::send_raw_offer(&a, b'S', values);
        let err = ShmStream::accept_offer(b, &ShmOptions::new())
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("file"), "{err}");
        drop((section, file));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn handshake_times_out_on_a_silent_peer() {
        let (_a, b) = Stream::pair().unwrap();
        let t = Instant::now();
        let err = ShmStream::accept_offer(
            b,
            &ShmOptions::new().handshake_timeout(Duration::from_millis(100)),
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::TimedOut, "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// CPU time this thread has used.
    fn thread_cpu() -> Duration {
        use windows_sys::Win32::Foundation::FILETIME;
        use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};
        let mut t = [FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        }; 4];
        let [created, exited, kernel, user] = &mut t;
        // SAFETY: the pseudo-handle of this thread is always valid; four valid out pointers.
        let ok = unsafe { GetThreadTimes(GetCurrentThread(), created, exited, kernel, user) };
        assert_ne!(ok, 0, "{}", io::Error::last_os_error());
        let ticks = |f: &FILETIME| (u64::from(f.dwHighDateTime) << 32) | u64::from(f.dwLowDateTime);
        Duration::from_nanos((ticks(kernel) + ticks(user)) * 100)
    }

    /// A reader waiting on an idle peer spins at most its budget, then sleeps: a second
    /// of waiting costs (almost) no CPU.
    #[test]
    fn an_idle_reader_sleeps_instead_of_spinning() {
        let (mut s, _c) = pair(ShmOptions::new());
        s.set_read_timeout(Some(Duration::from_secs(1)));
        let before = thread_cpu();
        let t = Instant::now();
        let err = s.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let (waited, used) = (t.elapsed(), thread_cpu() - before);
        assert!(waited >= Duration::from_millis(900), "{waited:?}");
        assert!(
            used < Duration::from_millis(100),
            "{used:?} of CPU in {waited:?}"
        );
        assert!(s.spin_stats().1 >= 1, "the reader parked");
    }

    #[test]
    fn a_wake_up_storm_is_invalid_data_not_a_spin() {
        let (mut s, c) = pair(ShmOptions::new().spin(Duration::ZERO));
        s.set_read_timeout(Some(Duration::from_secs(20)));
        // Play a hostile peer: signal the reader's event over and over, sending nothing.
        let [own, ..] = s.raw_events();
        let own = own as usize;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let storm = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: the handle is the stream's event, alive until `stop` is set
                    // (the stream outlives this thread, joined below).
                    unsafe { windows_sys::Win32::System::Threading::SetEvent(own as _) };
                    std::thread::yield_now();
                }
            })
        };
        let t = Instant::now();
        let err = s.read(&mut [0u8; 1]).unwrap_err();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        storm.join().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        drop(c);
    }
}
