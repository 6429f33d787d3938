//! Lock-free single-producer single-consumer byte ring with zero-copy grants.
//!
//! A [`Ring<N>`] holds `N` bytes (a power of two, all `N` usable) behind a
//! `#[repr(C)]`, pointer-free header, so the same layout works in a `static`, on
//! the heap, or in memory shared between two processes ([`RawRing`]).
//!
//! Ownership is explicit: [`Ring::split`] hands out exactly one [`Producer`] and
//! one [`Consumer`]. **The producer owns `tail`, the consumer owns `head`**; each
//! keeps its own index in a private field (never re-reading it from memory a peer
//! could scribble on) and caches the other side's index, re-reading it only when
//! the ring looks full or empty. Only atomic loads and stores are used, so the ring
//! works on targets without compare-and-swap (`thumbv6m`).
//!
//! Memory another process can write is never behind a Rust reference: a [`RawRing`]
//! reads its header through raw pointers and hands out the [`Untrusted`] flavour of
//! [`Producer`] and [`Consumer`], whose grants lend
//! [`VolatileSlice`] views instead of slices. A
//! [`Ring`] in this program's own memory hands out the [`Local`] flavour (the
//! default type parameter), whose grants are plain slices.
//!
//! ```
//! use ringlink_core::ring::Ring;
//!
//! let mut ring = Ring::<16>::new();
//! let (mut tx, mut rx) = ring.split();
//!
//! // Copying API.
//! assert_eq!(tx.write(b"hello").unwrap(), 5);
//! let mut out = [0u8; 8];
//! assert_eq!(rx.read(&mut out).unwrap(), 5);
//! assert_eq!(&out[..5], b"hello");
//!
//! // Zero-copy API: write straight into the ring, read straight out of it.
//! let mut grant = tx.grant_exact(3).unwrap();
//! grant.copy_from_slice(b"abc");
//! grant.commit(3);
//! let grant = rx.read_grant().unwrap();
//! assert_eq!(&grant[..], b"abc");
//! grant.release(3);
//! ```

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use crate::sync::{AtomicU32, Ordering, fence};
use crate::volatile::{VolatileSlice, VolatileSliceMut, copy_in, copy_out};

mod bytes;
pub use bytes::{PopError, PushError};

/// Magic number at the start of every ring header (`"RLNK"` little-endian).
pub const MAGIC: u32 = u32::from_le_bytes(*b"RLNK");
/// Version of the header layout; bumped on any incompatible change.
pub const LAYOUT_VERSION: u16 = 1;
/// Largest supported capacity (indices are wrapping `u32` counters).
pub const MAX_CAPACITY: usize = 1 << 31;
/// Size in bytes of [`RingHeader`]; the data of a ring starts this far from its header.
pub const HEADER_SIZE: usize = core::mem::size_of::<RingHeader>();

/// Header fields that never change after initialisation.
#[repr(C, align(128))]
struct Meta {
    magic: u32,
    version: u16,
    header_size: u16,
    capacity: u32,
    /// Set once the ring has been split (local rings only; not part of the shared contract).
    taken: AtomicU32,
}

/// The producer's cache line: the producer owns `tail` and `closed`.
#[repr(C, align(128))]
struct ProducerLine {
    /// Total bytes ever committed (wrapping). Written only by the producer.
    tail: AtomicU32,
    /// Non-zero once the producer is gone.
    closed: AtomicU32,
    /// Non-zero while this side is (about to be) asleep waiting for its peer;
    /// see the parking protocol on [`Consumer::prepare_park`].
    parked: AtomicU32,
}

/// The consumer's cache line: the consumer owns `head` and `closed`.
#[repr(C, align(128))]
struct ConsumerLine {
    /// Total bytes ever released (wrapping). Written only by the consumer.
    head: AtomicU32,
    /// Non-zero once the consumer is gone.
    closed: AtomicU32,
    /// Non-zero while this side is (about to be) asleep waiting for its peer;
    /// see the parking protocol on [`Consumer::prepare_park`].
    parked: AtomicU32,
}

/// The `#[repr(C)]`, pointer-free header in front of a ring's data.
///
/// Layout (each part on its own 128-byte line): magic, version, header size and
/// capacity; the producer's `tail`; the consumer's `head`.
#[repr(C)]
pub struct RingHeader {
    meta: Meta,
    producer: ProducerLine,
    consumer: ConsumerLine,
}

/// The identifying fields of a header.
#[derive(Clone, Copy)]
struct MetaFields {
    magic: u32,
    version: u16,
    header_size: u16,
    capacity: u32,
}

impl MetaFields {
    /// What a shared ring ([`RawRing`]) carries, for the attaching side to check.
    #[cfg_attr(loom, allow(dead_code))] // loom models use local rings only
    const fn shared(capacity: u32) -> Self {
        MetaFields {
            magic: MAGIC,
            version: LAYOUT_VERSION,
            // The header is 384 bytes; checked by a const assertion below.
            header_size: HEADER_SIZE as u16,
            capacity,
        }
    }

    /// What a local [`Ring`] carries: nothing. No one attaches to it, and an
    /// all-zero ring is placed in `.bss`, so a `static` one costs no flash.
    const LOCAL: Self = MetaFields {
        magic: 0,
        version: 0,
        header_size: 0,
        capacity: 0,
    };
}

impl RingHeader {
    #[cfg(not(loom))]
    const fn new(meta: MetaFields) -> Self {
        RingHeader {
            meta: Meta {
                magic: meta.magic,
                version: meta.version,
                header_size: meta.header_size,
                capacity: meta.capacity,
                taken: AtomicU32::new(0),
            },
            producer: ProducerLine {
                tail: AtomicU32::new(0),
                closed: AtomicU32::new(0),
                parked: AtomicU32::new(0),
            },
            consumer: ConsumerLine {
                head: AtomicU32::new(0),
                closed: AtomicU32::new(0),
                parked: AtomicU32::new(0),
            },
        }
    }

    #[cfg(loom)]
    fn new(meta: MetaFields) -> Self {
        RingHeader {
            meta: Meta {
                magic: meta.magic,
                version: meta.version,
                header_size: meta.header_size,
                capacity: meta.capacity,
                taken: AtomicU32::new(0),
            },
            producer: ProducerLine {
                tail: AtomicU32::new(0),
                closed: AtomicU32::new(0),
                parked: AtomicU32::new(0),
            },
            consumer: ConsumerLine {
                head: AtomicU32::new(0),
                closed: AtomicU32::new(0),
                parked: AtomicU32::new(0),
            },
        }
    }
}

#[cfg(not(loom))]
const _: () = assert!(HEADER_SIZE == 384 && HEADER_SIZE < u16::MAX as usize);

/// Errors of ring operations.
///
/// Only a ring attached to memory shared with another process ([`RawRing`]) can
/// report them: a ring in local memory is never corrupted by its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RingError {
    /// The peer published an index that is impossible (`tail - head > capacity`):
    /// the shared memory was corrupted. The ring cannot be used any more.
    Corrupted {
        /// The consumer's index as seen by this side.
        head: u32,
        /// The producer's index as seen by this side.
        tail: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Corrupted { head, tail } => write!(
                f,
                "ring indices corrupted by the peer (head {head}, tail {tail})"
            ),
        }
    }
}

impl core::error::Error for RingError {}

/// Why a grant could not be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GrantError {
    /// Not enough contiguous space (producer) or nothing to read (consumer) right now.
    InsufficientSize {
        /// Bytes asked for.
        requested: usize,
        /// Contiguous bytes available now.
        available: usize,
    },
    /// More than the ring's capacity was asked for: this can never succeed.
    TooLarge {
        /// Bytes asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// The ring's shared indices were corrupted; see [`RingError::Corrupted`].
    Corrupted(RingError),
}

impl From<RingError> for GrantError {
    fn from(e: RingError) -> Self {
        GrantError::Corrupted(e)
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantError::InsufficientSize {
                requested,
                available,
            } => write!(
                f,
                "asked for {requested} contiguous bytes, {available} available"
            ),
            GrantError::TooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "asked for {requested} bytes from a ring of {capacity} bytes"
            ),
            GrantError::Corrupted(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for GrantError {}

/// A byte ring of `N` bytes with its header, ready to be placed in a `static`.
///
/// ```
/// use ringlink_core::ring::Ring;
/// static RING: Ring<1024> = Ring::new();
/// let (mut tx, mut rx) = RING.split_static().expect("first split");
/// assert!(RING.split_static().is_none(), "only one producer and one consumer");
/// tx.write(b"x").unwrap();
/// let mut b = [0u8; 1];
/// assert_eq!(rx.read(&mut b).unwrap(), 1);
/// ```
#[repr(C)]
pub struct Ring<const N: usize> {
    header: RingHeader,
    data: UnsafeCell<[u8; N]>,
    #[cfg(loom)]
    shadow: [crate::sync::shadow::Cell; N],
}

// SAFETY: the data bytes are only reached through a `Producer` and a `Consumer`,
// of which at most one each exists (`split` takes `&mut self`, `split_static`
// hands them out once); they touch disjoint byte ranges delimited by the atomic
// indices with Release/Acquire ordering.
unsafe impl<const N: usize> Sync for Ring<N> {}

impl<const N: usize> Ring<N> {
    const CAPACITY_OK: () = assert!(
        N.is_power_of_two() && N <= MAX_CAPACITY,
        "Ring capacity must be a power of two no larger than 2^31"
    );

    /// An empty ring. Usable in `const` and `static` items.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        Ring {
            header: RingHeader::new(MetaFields::LOCAL),
            data: UnsafeCell::new([0; N]),
        }
    }

    /// An empty ring (loom models).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        Ring {
            header: RingHeader::new(MetaFields::LOCAL),
            data: UnsafeCell::new([0; N]),
            shadow: core::array::from_fn(|_| crate::sync::shadow::Cell::new(())),
        }
    }

    /// Capacity in bytes.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Splits the ring into its one producer and one consumer, borrowing it.
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        // Exclusive borrow: no other handle exists; start from a clean state so
        // a ring can be split again after the previous halves were dropped.
        self.reset();
        self.header.meta.taken.store(1, Ordering::Relaxed);
        let raw = self.raw_ref();
        // SAFETY: `&mut self` guarantees these are the only producer and consumer.
        unsafe { (Producer::new(raw), Consumer::new(raw)) }
    }

    /// Splits a `static` ring into its one producer and one consumer.
    ///
    /// Returns `None` if it was split before: there is only ever one of each.
    /// Uses a critical section (not compare-and-swap) so it works on `thumbv6m`.
    pub fn split_static(&'static self) -> Option<(Producer<'static>, Consumer<'static>)> {
        let first = critical_section::with(|_| {
            if self.header.meta.taken.load(Ordering::Relaxed) != 0 {
                false
            } else {
                self.header.meta.taken.store(1, Ordering::Relaxed);
                true
            }
        });
        if !first {
            return None;
        }
        let raw = self.raw_ref();
        // SAFETY: the `taken` flag, set under a critical section, guarantees this
        // branch runs once for this ring, so these are the only two handles.
        Some(unsafe { (Producer::new(raw), Consumer::new(raw)) })
    }

    fn reset(&mut self) {
        self.header.producer.tail.store(0, Ordering::Relaxed);
        self.header.producer.closed.store(0, Ordering::Relaxed);
        self.header.consumer.head.store(0, Ordering::Relaxed);
        self.header.consumer.closed.store(0, Ordering::Relaxed);
    }

    fn raw_ref(&self) -> RingRef<'_> {
        RingRef {
            header: &self.header as *const RingHeader,
            data: self.data.get().cast::<u8>(),
            cap: N as u32,
            #[cfg(loom)]
            shadow: &self.shadow,
            _data: PhantomData,
        }
    }
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A view of a ring: its header, its data and its capacity.
///
/// Holds raw pointers only: the header and the data may lie in memory another
/// process writes ([`RawRing`]), which no Rust reference may cover. The only
/// references made into the header are to its atomics, one operation at a time
/// (an atomic's `UnsafeCell` allows other writers), never to the plain fields.
#[derive(Clone, Copy)]
struct RingRef<'a> {
    header: *const RingHeader,
    data: *mut u8,
    cap: u32,
    #[cfg(loom)]
    shadow: &'a [crate::sync::shadow::Cell],
    _data: PhantomData<&'a UnsafeCell<[u8]>>,
}

impl RingRef<'_> {
    #[inline]
    fn mask(&self) -> u32 {
        self.cap - 1
    }

    /// The producer's `tail` (written only by the producer).
    #[inline]
    fn tail(&self) -> &AtomicU32 {
        // SAFETY: `header` is valid and aligned for `'a` (checked by `RawRing::attach`,
        // or borrowed from a `Ring`); only the atomic field is referenced.
        unsafe { &(*self.header).producer.tail }
    }

    /// The consumer's `head` (written only by the consumer).
    #[inline]
    fn head(&self) -> &AtomicU32 {
        // SAFETY: as in `tail`.
        unsafe { &(*self.header).consumer.head }
    }

    #[inline]
    fn producer_closed(&self) -> &AtomicU32 {
        // SAFETY: as in `tail`.
        unsafe { &(*self.header).producer.closed }
    }

    #[inline]
    fn consumer_closed(&self) -> &AtomicU32 {
        // SAFETY: as in `tail`.
        unsafe { &(*self.header).consumer.closed }
    }

    #[inline]
    fn producer_parked_flag(&self) -> &AtomicU32 {
        // SAFETY: as in `tail`.
        unsafe { &(*self.header).producer.parked }
    }

    #[inline]
    fn consumer_parked_flag(&self) -> &AtomicU32 {
        // SAFETY: as in `tail`.
        unsafe { &(*self.header).consumer.parked }
    }

    /// The producer's half of the parking protocol, after it published: a
    /// SeqCst fence between its Release store of `tail` and the load of the
    /// consumer's flag, paired with the fence in [`Consumer::prepare_park`].
    fn consumer_parked(&self) -> bool {
        fence(Ordering::SeqCst);
        self.consumer_parked_flag().load(Ordering::Relaxed) != 0
    }

    /// The consumer's half, after it freed space: the mirror of
    /// [`RingRef::consumer_parked`], paired with [`Producer::prepare_park`].
    fn producer_parked(&self) -> bool {
        fence(Ordering::SeqCst);
        self.producer_parked_flag().load(Ordering::Relaxed) != 0
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Local {}
    impl Sealed for super::Untrusted {}
}

/// Who may write a ring's memory, as a type parameter of [`Producer`], [`Consumer`]
/// and their grants: [`Local`] (the default) or [`Untrusted`].
pub trait Trust: sealed::Sealed {
    /// Whether another process may write the memory at any time.
    #[doc(hidden)]
    const SHARED: bool;
}

/// A ring in this program's own memory ([`Ring`]): only its one producer and one
/// consumer touch it, so grants lend plain slices (`Deref<Target = [u8]>`).
pub enum Local {}

/// A ring in memory another process maps and may write at any time ([`RawRing`]):
/// grants lend [`VolatileSlice`] / [`VolatileSliceMut`] views, never a slice, and
/// bytes are copied in and out with volatile accesses.
pub enum Untrusted {}

impl Trust for Local {
    const SHARED: bool = false;
}

impl Trust for Untrusted {
    const SHARED: bool = true;
}

/// Copies `data` into ring bytes at `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `data.len()` bytes lent to the caller's grant.
#[inline]
unsafe fn ring_copy_in<M: Trust>(dst: *mut u8, data: &[u8]) {
    if M::SHARED {
        // SAFETY: forwarded contract; the volatile copy tolerates a peer's writes.
        unsafe { copy_in(dst, data) }
    } else {
        // SAFETY: forwarded contract; local bytes lent to one grant, nobody else
        // writes them, and `data` cannot overlap them.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
    }
}

/// Copies ring bytes at `src` into `out`.
///
/// # Safety
/// `src` must be valid for reads of `out.len()` bytes lent to the caller's grant.
#[inline]
unsafe fn ring_copy_out<M: Trust>(src: *const u8, out: &mut [u8]) {
    if M::SHARED {
        // SAFETY: forwarded contract; the volatile copy tolerates a peer's writes.
        unsafe { copy_out(src, out) }
    } else {
        // SAFETY: forwarded contract; published local bytes are not written while
        // lent, and `out` cannot overlap them.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) }
    }
}

/// The writing half of a ring. **Owns `tail`.**
///
/// Dropping it marks the ring closed for writing: the consumer drains what is
/// left and then sees [`Consumer::is_producer_closed`].
///
/// `M` says who may write the ring's memory: [`Local`] (a [`Ring`], the default)
/// or [`Untrusted`] (a [`RawRing`] shared with another process, whose grants lend
/// volatile views instead of slices).
pub struct Producer<'a, M: Trust = Local> {
    ring: RingRef<'a>,
    /// Our own index; the copy in shared memory is only ever written, never trusted.
    tail: u32,
    /// Last `head` read from the consumer (validated).
    head_cache: u32,
    _trust: PhantomData<M>,
}

// SAFETY: a `Producer` only writes bytes in `[tail, head + cap)`, which the one
// consumer does not touch, and publishes them with a Release store; moving it to
// another thread keeps that invariant (a peer process that breaks it can only
// change bytes we copy, see `Untrusted`).
unsafe impl<M: Trust> Send for Producer<'_, M> {}

impl<'a, M: Trust> Producer<'a, M> {
    /// # Safety
    /// There must be no other `Producer` for this ring, and `ring.data` must be
    /// valid for `ring.cap` bytes for `'a`.
    unsafe fn new(ring: RingRef<'a>) -> Self {
        let tail = ring.tail().load(Ordering::Relaxed);
        let head = ring.head().load(Ordering::Acquire);
        // Both indices come from memory a peer may have corrupted before we
        // attached: if they are impossible, start as if the ring were full, so
        // the first operation re-reads `head` and reports the corruption.
        let head_cache = if tail.wrapping_sub(head) <= ring.cap {
            head
        } else {
            tail.wrapping_sub(ring.cap)
        };
        Producer {
            ring,
            tail,
            head_cache,
            _trust: PhantomData,
        }
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap as usize
    }

    /// Re-reads the consumer's `head` and checks it against our `tail`.
    fn refresh_head(&mut self) -> Result<(), RingError> {
        let head = self.ring.head().load(Ordering::Acquire);
        if self.tail.wrapping_sub(head) > self.ring.cap {
            return Err(RingError::Corrupted {
                head,
                tail: self.tail,
            });
        }
        self.head_cache = head;
        Ok(())
    }

    /// Free bytes by the cached `head` (validated when it was read).
    #[inline]
    fn cached_free(&self) -> u32 {
        self.ring.cap - self.tail.wrapping_sub(self.head_cache)
    }

    /// Free bytes now (re-reads the consumer's index).
    pub fn free(&mut self) -> Result<usize, RingError> {
        self.refresh_head()?;
        Ok(self.cached_free() as usize)
    }

    /// Marks the ring closed for writing, as dropping the producer does, while
    /// keeping the handle. The consumer drains what was written before and then
    /// sees the end of the stream; do not write after this (the consumer may have
    /// stopped reading).
    pub fn close(&mut self) {
        self.ring.producer_closed().store(1, Ordering::Release);
    }

    /// Whether the consumer has been dropped (nobody will ever read again).
    pub fn is_consumer_closed(&self) -> bool {
        self.ring.consumer_closed().load(Ordering::Acquire) != 0
    }

    /// Contiguous free bytes starting at `tail`, refreshing `head` if fewer than `want`.
    fn contiguous_free(&mut self, want: u32) -> Result<u32, RingError> {
        let to_end = self.ring.cap - (self.tail & self.ring.mask());
        if self.cached_free().min(to_end) < want {
            self.refresh_head()?;
        }
        Ok(self.cached_free().min(to_end))
    }

    /// Announces that the producer is about to sleep until the consumer frees
    /// space. Returns `Ok(true)` if the ring is still full (the caller may sleep
    /// until the consumer notifies it, then must call [`Producer::unpark`]), or
    /// `Ok(false)` if space appeared or the consumer is gone (the announcement is
    /// withdrawn; do not sleep).
    ///
    /// This is one half of ringlink's parking protocol, the same on both sides:
    /// the sleeper stores its `parked` flag, issues a `SeqCst` fence and re-checks
    /// the ring; the waker publishes its index, issues a `SeqCst` fence and reads
    /// the flag ([`Consumer::producer_parked`]). The two fences order the four
    /// accesses so at least one side sees the other: a wake-up is never lost.
    /// The producer owns its `parked` flag.
    pub fn prepare_park(&mut self) -> Result<bool, RingError> {
        self.ring.producer_parked_flag().store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.free()? > 0 || self.is_consumer_closed() {
            self.unpark();
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws [`Producer::prepare_park`]'s announcement (after waking up).
    pub fn unpark(&mut self) {
        self.ring.producer_parked_flag().store(0, Ordering::Relaxed);
    }

    /// After committing: whether the consumer announced it sleeps waiting for
    /// data, so the caller must notify it. See [`Producer::prepare_park`].
    pub fn consumer_parked(&self) -> bool {
        self.ring.consumer_parked()
    }

    /// A grant of exactly `len` contiguous writable bytes.
    ///
    /// Fails with [`GrantError::InsufficientSize`] when the ring has fewer than
    /// `len` free bytes in one piece right now (it may have them after the
    /// consumer reads, or after the write position wraps).
    pub fn grant_exact(&mut self, len: usize) -> Result<WriteGrant<'_, 'a, M>, GrantError> {
        if len > self.ring.cap as usize {
            return Err(GrantError::TooLarge {
                requested: len,
                capacity: self.ring.cap as usize,
            });
        }
        let avail = self.contiguous_free(len as u32)?;
        if (avail as usize) < len {
            return Err(GrantError::InsufficientSize {
                requested: len,
                available: avail as usize,
            });
        }
        Ok(self.make_grant(len as u32))
    }

    /// A grant of up to `max` contiguous writable bytes (at least one).
    pub fn grant_max(&mut self, max: usize) -> Result<WriteGrant<'_, 'a, M>, GrantError> {
        let want = max.min(self.ring.cap as usize) as u32;
        let avail = self.contiguous_free(want.max(1))?;
        if avail == 0 || max == 0 {
            return Err(GrantError::InsufficientSize {
                requested: max,
                available: avail as usize,
            });
        }
        Ok(self.make_grant(avail.min(want)))
    }

    fn make_grant(&mut self, len: u32) -> WriteGrant<'_, 'a, M> {
        let start = (self.tail & self.ring.mask()) as usize;
        #[cfg(loom)]
        let guards = crate::sync::shadow::Guards::write(
            self.ring.shadow,
            start,
            len as usize,
            self.ring.mask() as usize,
        );
        // SAFETY: `start + len <= cap` (len is at most the bytes to the end of the
        // data), so the pointer stays inside the data. The bytes `[tail, tail + len)`
        // are free (len <= free by a validated head): no consumer of this program
        // reads them until committed.
        let ptr = unsafe { self.ring.data.add(start) };
        WriteGrant {
            ptr,
            len: len as usize,
            producer_tail: &mut self.tail,
            ring: self.ring,
            _trust: PhantomData,
            #[cfg(loom)]
            _guards: guards,
        }
    }

    /// Copies as much of `data` as fits, wrapping around the end of the ring.
    /// Returns the number of bytes written: `0` when the ring is full.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, RingError> {
        self.copy_in(data)
    }

    /// Writes all of `data` or nothing: `Ok(false)` when it does not fit now.
    pub fn write_all_or_nothing(&mut self, data: &[u8]) -> Result<bool, RingError> {
        if data.len() > self.cached_free() as usize && data.len() > self.free()? {
            return Ok(false);
        }
        let n = self.write(data)?;
        debug_assert_eq!(n, data.len(), "free space was checked above");
        Ok(true)
    }
}

impl<M: Trust> Drop for Producer<'_, M> {
    fn drop(&mut self) {
        self.ring.producer_closed().store(1, Ordering::Release);
    }
}

/// Contiguous writable bytes in a ring. Publish them with [`WriteGrant::commit`];
/// dropping the grant publishes nothing.
///
/// A [`Local`] ring's grant is a `&mut [u8]` (`DerefMut`); an [`Untrusted`] ring's
/// lends a [`VolatileSliceMut`] through [`WriteGrant::bytes`].
#[must_use = "a write grant publishes nothing until committed"]
pub struct WriteGrant<'g, 'a, M: Trust = Local> {
    ptr: *mut u8,
    len: usize,
    producer_tail: &'g mut u32,
    ring: RingRef<'a>,
    _trust: PhantomData<M>,
    #[cfg(loom)]
    _guards: crate::sync::shadow::Guards,
}

impl<M: Trust> WriteGrant<'_, '_, M> {
    /// Number of granted bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant is empty (never, for a grant that was given).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the first `used` bytes visible to the consumer (clamped to the grant's length).
    pub fn commit(self, used: usize) {
        let used = used.min(self.len) as u32;
        let tail = self.producer_tail.wrapping_add(used);
        *self.producer_tail = tail;
        // Release: the bytes written into the grant happen-before the consumer's
        // Acquire load of `tail`.
        self.ring.tail().store(tail, Ordering::Release);
    }

    /// Commits like [`commit`](Self::commit), then says whether the consumer is
    /// parked and must be woken: the producer's half of the parking protocol
    /// (see [`Producer::consumer_parked`]) in one step, for grant users.
    pub fn commit_wakes(self, used: usize) -> bool {
        let ring = self.ring;
        self.commit(used);
        ring.consumer_parked()
    }
}

impl WriteGrant<'_, '_, Local> {
    /// The granted bytes.
    pub fn buf(&mut self) -> &mut [u8] {
        self
    }
}

impl WriteGrant<'_, '_, Untrusted> {
    /// The granted bytes, as a view that says the peer may write them too.
    pub fn bytes(&mut self) -> VolatileSliceMut<'_> {
        // SAFETY: the grant lends `len` writable bytes at `ptr` (see `make_grant`)
        // for as long as it is borrowed; a peer process may write them as well,
        // which the view's volatile accesses tolerate.
        unsafe { VolatileSliceMut::new(self.ptr, self.len) }
    }
}

impl Deref for WriteGrant<'_, '_, Local> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a local ring's free bytes `[ptr, ptr + len)` are lent to this grant
        // alone (see `make_grant`); only this program's one consumer could touch the
        // ring, and it does not read them before `commit`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for WriteGrant<'_, '_, Local> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// The reading half of a ring. **Owns `head`.**
///
/// Dropping it marks the ring closed for reading: the producer sees
/// [`Producer::is_consumer_closed`].
///
/// `M` says who may write the ring's memory, as for [`Producer`].
pub struct Consumer<'a, M: Trust = Local> {
    ring: RingRef<'a>,
    /// Our own index; the copy in shared memory is only ever written, never trusted.
    head: u32,
    /// Last `tail` read from the producer (validated).
    tail_cache: u32,
    _trust: PhantomData<M>,
}

// SAFETY: a `Consumer` only reads bytes in `[head, tail)`, which the one producer
// published with a Release store and does not touch until `head` moves past them
// (a peer process that breaks this can only change bytes we copy, see `Untrusted`).
unsafe impl<M: Trust> Send for Consumer<'_, M> {}

impl<'a, M: Trust> Consumer<'a, M> {
    /// # Safety
    /// There must be no other `Consumer` for this ring, and `ring.data` must be
    /// valid for `ring.cap` bytes for `'a`.
    unsafe fn new(ring: RingRef<'a>) -> Self {
        let head = ring.head().load(Ordering::Relaxed);
        Consumer {
            ring,
            head,
            tail_cache: head,
            _trust: PhantomData,
        }
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap as usize
    }

    /// Re-reads the producer's `tail` and checks it against our `head`.
    fn refresh_tail(&mut self) -> Result<(), RingError> {
        let tail = self.ring.tail().load(Ordering::Acquire);
        if tail.wrapping_sub(self.head) > self.ring.cap {
            return Err(RingError::Corrupted {
                head: self.head,
                tail,
            });
        }
        self.tail_cache = tail;
        Ok(())
    }

    /// Readable bytes now (re-reads the producer's index).
    pub fn available(&mut self) -> Result<usize, RingError> {
        self.refresh_tail()?;
        Ok(self.tail_cache.wrapping_sub(self.head) as usize)
    }

    /// Whether the producer has been dropped. Bytes it wrote before may still be
    /// readable: read until empty, then treat the ring as at end of stream.
    pub fn is_producer_closed(&self) -> bool {
        self.ring.producer_closed().load(Ordering::Acquire) != 0
    }

    /// True when the producer is gone *and* every byte it wrote has been read.
    pub fn is_finished(&mut self) -> Result<bool, RingError> {
        if !self.is_producer_closed() {
            return Ok(false);
        }
        // `closed` was stored after the last `tail`; the Acquire above makes it visible.
        Ok(self.available()? == 0)
    }

    fn contiguous_available(&mut self) -> Result<u32, RingError> {
        if self.tail_cache == self.head {
            self.refresh_tail()?;
        }
        let used = self.tail_cache.wrapping_sub(self.head);
        let to_end = self.ring.cap - (self.head & self.ring.mask());
        Ok(used.min(to_end))
    }

    /// Announces that the consumer is about to sleep until the producer commits
    /// data. Returns `Ok(true)` if the ring is still empty and the producer still
    /// there (the caller may sleep until notified, then must call
    /// [`Consumer::unpark`]), or `Ok(false)` if data arrived or the producer is
    /// gone (announcement withdrawn; do not sleep). The consumer owns its `parked`
    /// flag; see [`Producer::prepare_park`] for the protocol.
    pub fn prepare_park(&mut self) -> Result<bool, RingError> {
        self.ring.consumer_parked_flag().store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.available()? > 0 || self.is_producer_closed() {
            self.unpark();
            return Ok(false);
        }
        Ok(true)
    }

    /// Withdraws [`Consumer::prepare_park`]'s announcement (after waking up).
    pub fn unpark(&mut self) {
        self.ring.consumer_parked_flag().store(0, Ordering::Relaxed);
    }

    /// After releasing: whether the producer announced it sleeps waiting for
    /// space, so the caller must notify it.
    pub fn producer_parked(&self) -> bool {
        self.ring.producer_parked()
    }

    /// A grant of all readable bytes that lie contiguously at `head`.
    ///
    /// Fails with [`GrantError::InsufficientSize`] when the ring is empty.
    pub fn read_grant(&mut self) -> Result<ReadGrant<'_, 'a, M>, GrantError> {
        let avail = self.contiguous_available()?;
        if avail == 0 {
            return Err(GrantError::InsufficientSize {
                requested: 1,
                available: 0,
            });
        }
        let start = (self.head & self.ring.mask()) as usize;
        #[cfg(loom)]
        let guards = crate::sync::shadow::Guards::read(
            self.ring.shadow,
            start,
            avail as usize,
            self.ring.mask() as usize,
        );
        // SAFETY: `start + avail <= cap`, so the pointer stays inside the data. The
        // bytes `[head, head + avail)` were published by the producer (validated
        // `tail`, Acquire load); a producer of this program does not touch them
        // until we move `head` past them.
        let ptr = unsafe { self.ring.data.add(start) };
        Ok(ReadGrant {
            ptr,
            len: avail as usize,
            consumer_head: &mut self.head,
            ring: self.ring,
            _trust: PhantomData,
            #[cfg(loom)]
            _guards: guards,
        })
    }

    /// Copies up to `out.len()` bytes out of the ring. Returns `0` when it is empty.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, RingError> {
        self.copy_out(out)
    }
}

impl<M: Trust> Drop for Consumer<'_, M> {
    fn drop(&mut self) {
        self.ring.consumer_closed().store(1, Ordering::Release);
    }
}

/// Contiguous readable bytes in a ring. Free them with [`ReadGrant::release`];
/// dropping the grant frees nothing (the bytes stay readable).
///
/// A [`Local`] ring's grant is a `&[u8]` (`Deref`); an [`Untrusted`] ring's lends
/// a [`VolatileSlice`] through [`ReadGrant::bytes`].
#[must_use = "a read grant frees nothing until released"]
pub struct ReadGrant<'g, 'a, M: Trust = Local> {
    ptr: *const u8,
    len: usize,
    consumer_head: &'g mut u32,
    ring: RingRef<'a>,
    _trust: PhantomData<M>,
    #[cfg(loom)]
    _guards: crate::sync::shadow::Guards,
}

impl<M: Trust> ReadGrant<'_, '_, M> {
    /// Number of granted bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant is empty (never, for a grant that was given).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frees the first `used` bytes for the producer (clamped to the grant's length).
    pub fn release(self, used: usize) {
        let used = used.min(self.len) as u32;
        let head = self.consumer_head.wrapping_add(used);
        *self.consumer_head = head;
        // Release: our reads of these bytes happen-before the producer's Acquire
        // load of `head`, after which it may overwrite them.
        self.ring.head().store(head, Ordering::Release);
    }

    /// Releases like [`release`](Self::release), then says whether the producer
    /// is parked and must be woken: the consumer's half of the parking protocol
    /// (see [`Consumer::producer_parked`]) in one step, for grant users.
    pub fn release_wakes(self, used: usize) -> bool {
        let ring = self.ring;
        self.release(used);
        ring.producer_parked()
    }
}

impl ReadGrant<'_, '_, Local> {
    /// The granted bytes.
    pub fn buf(&self) -> &[u8] {
        self
    }
}

impl ReadGrant<'_, '_, Untrusted> {
    /// The granted bytes, as a view that says the peer may change them under us.
    pub fn bytes(&self) -> VolatileSlice<'_> {
        // SAFETY: the grant lends `len` readable bytes at `ptr` (see `read_grant`)
        // for as long as it is borrowed; a peer process may write them meanwhile,
        // which the view's volatile reads tolerate.
        unsafe { VolatileSlice::new(self.ptr, self.len) }
    }
}

impl Deref for ReadGrant<'_, '_, Local> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a local ring's published bytes `[ptr, ptr + len)` are lent to this
        // grant; this program's one producer does not write them before `release`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Why memory could not be attached as a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttachError {
    /// The memory is smaller than a header plus the capacity it declares.
    TooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The memory is not aligned to 128 bytes.
    Misaligned,
    /// The header does not start with [`MAGIC`].
    BadMagic(u32),
    /// The header has another layout version than [`LAYOUT_VERSION`].
    BadVersion(u16),
    /// The header declares another header size than [`HEADER_SIZE`].
    BadHeaderSize(u16),
    /// The declared capacity is zero, not a power of two, or above [`MAX_CAPACITY`].
    BadCapacity(u32),
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::TooSmall { needed, got } => {
                write!(f, "ring memory too small: need {needed} bytes, got {got}")
            }
            AttachError::Misaligned => f.write_str("ring memory is not 128-byte aligned"),
            AttachError::BadMagic(m) => write!(f, "not a ringlink ring (magic {m:#010x})"),
            AttachError::BadVersion(v) => write!(
                f,
                "ring layout version {v}, this build speaks {LAYOUT_VERSION}"
            ),
            AttachError::BadHeaderSize(s) => {
                write!(f, "ring header size {s}, expected {HEADER_SIZE}")
            }
            AttachError::BadCapacity(c) => {
                write!(f, "ring capacity {c} is not a power of two in 1..=2^31")
            }
        }
    }
}

impl core::error::Error for AttachError {}

/// A ring of run-time capacity in memory the caller provides, typically a
/// mapping shared with another process.
///
/// The header is validated on attach, and every index read afterwards is
/// validated by the [`Producer`] and [`Consumer`]: a peer that scribbles over
/// the mapping makes operations return [`RingError::Corrupted`], never access
/// memory outside the ring. The handles are the [`Untrusted`] flavour: their
/// grants lend [`VolatileSlice`] / [`VolatileSliceMut`] views, not slices, since
/// the peer may change the bytes while they are lent.
///
/// ```
/// use ringlink_core::ring::{RawRing, HEADER_SIZE};
///
/// #[repr(C, align(128))]
/// struct Mem([u8; HEADER_SIZE + 64]);
/// let mut mem = Mem([0; HEADER_SIZE + 64]);
/// let len = mem.0.len();
/// // SAFETY: `mem` is valid, aligned, and outlives the ring; no one else uses it.
/// let ring = unsafe { RawRing::init(mem.0.as_mut_ptr(), len, 64) }.unwrap();
/// // SAFETY: this is the only producer and the only consumer of the ring.
/// let (mut tx, mut rx) = unsafe { (ring.producer(), ring.consumer()) };
/// tx.write(b"shared").unwrap();
/// let mut out = [0u8; 6];
/// assert_eq!(rx.read(&mut out).unwrap(), 6);
/// ```
#[cfg(not(loom))]
#[derive(Clone, Copy)]
pub struct RawRing<'a> {
    raw: RingRef<'a>,
}

// SAFETY: a `RawRing` only hands out producers and consumers through `unsafe`
// functions whose contract is that each exists once; sharing the view is harmless.
#[cfg(not(loom))]
unsafe impl Send for RawRing<'_> {}
// SAFETY: as for `Send`.
#[cfg(not(loom))]
unsafe impl Sync for RawRing<'_> {}

#[cfg(not(loom))]
impl<'a> RawRing<'a> {
    /// Bytes needed for a ring of `capacity` bytes, header included.
    pub const fn size_for(capacity: usize) -> usize {
        HEADER_SIZE + capacity
    }

    /// Writes a fresh header for a ring of `capacity` bytes into `mem` and attaches to it.
    ///
    /// # Safety
    /// `mem` must be valid for reads and writes of `len` bytes for `'a`, and no
    /// one may be using it as a ring while it is being initialised.
    pub unsafe fn init(mem: *mut u8, len: usize, capacity: usize) -> Result<Self, AttachError> {
        if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(AttachError::BadCapacity(capacity as u32));
        }
        check_region(mem, len, capacity)?;
        // SAFETY: `mem` is aligned and large enough for a header (checked), and
        // the caller grants exclusive access during initialisation.
        unsafe {
            mem.cast::<RingHeader>()
                .write(RingHeader::new(MetaFields::shared(capacity as u32)))
        };
        // SAFETY: the header was just written; forwarded caller contract.
        unsafe { Self::attach(mem, len) }
    }

    /// Attaches to a ring that some process initialised in `mem`, validating its header.
    ///
    /// # Safety
    /// `mem` must be valid for reads and writes of `len` bytes for `'a` (mapped for
    /// all of `'a`). Other processes may write it concurrently, with any bytes at any
    /// time: that is the trust model, not a contract violation. Their writes can make
    /// ring operations fail or read other bytes, never reach outside the `len` bytes:
    /// no Rust reference covers the memory (the header's atomics are referenced one
    /// operation at a time, and their `UnsafeCell` allows other writers), indices are
    /// validated, and data moves only through volatile copies and views.
    pub unsafe fn attach(mem: *mut u8, len: usize) -> Result<Self, AttachError> {
        if len < HEADER_SIZE {
            return Err(AttachError::TooSmall {
                needed: HEADER_SIZE,
                got: len,
            });
        }
        if mem as usize % 128 != 0 {
            return Err(AttachError::Misaligned);
        }
        // No reference to the header is made: a peer process may be writing it.
        let header = mem.cast::<RingHeader>().cast_const();
        // SAFETY: `header` is aligned and the memory at least a header long (checked
        // above) and valid for `'a` (caller contract); the fields are read through
        // raw pointers with volatile reads, once: the capacity is kept in the
        // `RawRing`, so a peer changing these fields later is never trusted.
        let (magic, version, header_size, cap) = unsafe {
            (
                core::ptr::addr_of!((*header).meta.magic).read_volatile(),
                core::ptr::addr_of!((*header).meta.version).read_volatile(),
                core::ptr::addr_of!((*header).meta.header_size).read_volatile(),
                core::ptr::addr_of!((*header).meta.capacity).read_volatile(),
            )
        };
        if magic != MAGIC {
            return Err(AttachError::BadMagic(magic));
        }
        if version != LAYOUT_VERSION {
            return Err(AttachError::BadVersion(version));
        }
        if header_size as usize != HEADER_SIZE {
            return Err(AttachError::BadHeaderSize(header_size));
        }
        if cap == 0 || !cap.is_power_of_two() || cap as usize > MAX_CAPACITY {
            return Err(AttachError::BadCapacity(cap));
        }
        check_region(mem, len, cap as usize)?;
        Ok(RawRing {
            raw: RingRef {
                header,
                // SAFETY: `len >= HEADER_SIZE + cap` was checked, so the data lies inside `mem`.
                data: unsafe { mem.add(HEADER_SIZE) },
                cap,
                _data: PhantomData,
            },
        })
    }

    /// The ring's capacity in bytes (as validated on attach).
    pub fn capacity(&self) -> usize {
        self.raw.cap as usize
    }

    /// The producer of this ring. Its grants lend [`VolatileSliceMut`] views, since
    /// another process may write the memory ([`Untrusted`]).
    ///
    /// # Safety
    /// At most one `Producer` may exist for this ring at a time, across all processes.
    pub unsafe fn producer(&self) -> Producer<'a, Untrusted> {
        // SAFETY: forwarded caller contract; data validity checked on attach.
        unsafe { Producer::new(self.raw) }
    }

    /// The consumer of this ring. Its grants lend [`VolatileSlice`] views, since
    /// another process may write the memory ([`Untrusted`]).
    ///
    /// # Safety
    /// At most one `Consumer` may exist for this ring at a time, across all processes.
    pub unsafe fn consumer(&self) -> Consumer<'a, Untrusted> {
        // SAFETY: forwarded caller contract; data validity checked on attach.
        unsafe { Consumer::new(self.raw) }
    }

    /// The producer, lending plain slices: for memory this program alone uses
    /// ([`SharedProducer`](crate::SharedProducer)'s own ring).
    ///
    /// # Safety
    /// As for [`producer`](Self::producer), and no other process may write the memory.
    pub(crate) unsafe fn local_producer(&self) -> Producer<'a, Local> {
        // SAFETY: forwarded caller contract; data validity checked on attach.
        unsafe { Producer::new(self.raw) }
    }

    /// The consumer, lending plain slices; see [`local_producer`](Self::local_producer).
    ///
    /// # Safety
    /// As for [`consumer`](Self::consumer), and no other process may write the memory.
    pub(crate) unsafe fn local_consumer(&self) -> Consumer<'a, Local> {
        // SAFETY: forwarded caller contract; data validity checked on attach.
        unsafe { Consumer::new(self.raw) }
    }
}

#[cfg(not(loom))]
fn check_region(mem: *mut u8, len: usize, capacity: usize) -> Result<(), AttachError> {
    if mem as usize % 128 != 0 {
        return Err(AttachError::Misaligned);
    }
    let needed = HEADER_SIZE + capacity;
    if len < needed {
        return Err(AttachError::TooSmall { needed, got: len });
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn handles_are_send_and_ring_is_sync() {
        assert_send::<Producer<'static>>();
        assert_send::<Consumer<'static>>();
        assert_sync::<Ring<8>>();
        assert_send::<RawRing<'static>>();
    }

    #[test]
    fn header_layout_is_stable() {
        assert_eq!(HEADER_SIZE, 384);
        assert_eq!(core::mem::align_of::<RingHeader>(), 128);
        assert_eq!(core::mem::offset_of!(Ring<8>, data), HEADER_SIZE);
    }

    #[test]
    fn all_n_bytes_are_usable() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        assert_eq!(tx.write(&[1; 20]).unwrap(), 8);
        assert_eq!(tx.write(&[2]).unwrap(), 0);
        let mut out = [0u8; 20];
        assert_eq!(rx.read(&mut out).unwrap(), 8);
        assert_eq!(rx.read(&mut out).unwrap(), 0);
    }

    #[test]
    fn wraps_around_and_keeps_order() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        let mut next_w = 0u8;
        let mut next_r = 0u8;
        for round in 0..100 {
            let chunk: [u8; 5] = core::array::from_fn(|i| next_w.wrapping_add(i as u8));
            let n = tx.write(&chunk[..(round % 5) + 1]).unwrap();
            next_w = next_w.wrapping_add(n as u8);
            let mut out = [0u8; 3];
            let m = rx.read(&mut out).unwrap();
            for &b in &out[..m] {
                assert_eq!(b, next_r);
                next_r = next_r.wrapping_add(1);
            }
        }
    }

    #[test]
    fn grants_are_contiguous_and_uncommitted_drop_publishes_nothing() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        tx.write(&[0; 6]).unwrap();
        let mut out = [0; 6];
        rx.read(&mut out).unwrap();
        // 2 bytes to the end, 8 free in all.
        assert_eq!(
            tx.grant_exact(3).err(),
            Some(GrantError::InsufficientSize {
                requested: 3,
                available: 2
            })
        );
        assert_eq!(tx.grant_max(8).unwrap().len(), 2);
        assert!(matches!(
            tx.grant_exact(9),
            Err(GrantError::TooLarge { .. })
        ));
        {
            let mut g = tx.grant_exact(2).unwrap();
            g.copy_from_slice(&[7, 7]);
            // dropped without commit
        }
        assert!(rx.read_grant().is_err());
        let mut g = tx.grant_exact(2).unwrap();
        g.copy_from_slice(&[8, 9]);
        g.commit(1);
        let g = rx.read_grant().unwrap();
        assert_eq!(&g[..], &[8]);
        g.release(5); // clamped
        assert_eq!(rx.available().unwrap(), 0);
    }

    #[test]
    fn close_flags_are_seen() {
        let mut ring = Ring::<8>::new();
        let (mut tx, mut rx) = ring.split();
        tx.write(b"ab").unwrap();
        assert!(!rx.is_producer_closed());
        drop(tx);
        assert!(rx.is_producer_closed());
        assert!(!rx.is_finished().unwrap());
        let mut out = [0; 2];
        rx.read(&mut out).unwrap();
        assert!(rx.is_finished().unwrap());
        drop(rx);
        let (tx, rx) = ring.split();
        assert!(!tx.is_consumer_closed());
        drop(rx);
        assert!(tx.is_consumer_closed());
    }

    #[repr(C, align(128))]
    struct Mem([u8; HEADER_SIZE + 16]);

    #[test]
    fn attach_validates_header() {
        let mut mem = Mem([0; HEADER_SIZE + 16]);
        let p = mem.0.as_mut_ptr();
        // SAFETY: `mem` is valid and exclusive for these calls.
        unsafe {
            assert_eq!(
                RawRing::attach(p, HEADER_SIZE + 16).err(),
                Some(AttachError::BadMagic(0))
            );
            assert!(RawRing::init(p, HEADER_SIZE + 16, 16).is_ok());
            assert!(RawRing::init(p, HEADER_SIZE + 16, 32).is_err());
            assert!(RawRing::init(p, HEADER_SIZE + 16, 12).is_err());
            assert!(RawRing::attach(p.add(1), HEADER_SIZE).is_err());
            assert_eq!(
                RawRing::attach(p, HEADER_SIZE + 8).err(),
                Some(AttachError::TooSmall {
                    needed: HEADER_SIZE + 16,
                    got: HEADER_SIZE + 8
                })
            );
            // Capacity field scribbled to something larger than the mapping.
            p.add(8).cast::<u32>().write(1 << 20);
            assert!(matches!(
                RawRing::attach(p, HEADER_SIZE + 16),
                Err(AttachError::TooSmall { .. })
            ));
        }
    }

    #[test]
    fn corrupted_indices_are_errors_not_out_of_bounds() {
        let mut mem = Mem([0; HEADER_SIZE + 16]);
        let p = mem.0.as_mut_ptr();
        // SAFETY: `mem` is valid and exclusive; one producer and one consumer.
        let ring = unsafe { RawRing::init(p, HEADER_SIZE + 16, 16) }.unwrap();
        // SAFETY: the only producer and consumer.
        let (mut tx, mut rx) = unsafe { (ring.producer(), ring.consumer()) };
        tx.write(b"abc").unwrap();
        // A hostile peer moves tail far ahead of head.
        ring.raw.tail().store(1000, Ordering::Relaxed);
        let mut out = [0; 4];
        assert!(matches!(
            rx.read(&mut out),
            Err(RingError::Corrupted { .. })
        ));
        // And moves head past tail.
        ring.raw.head().store(50, Ordering::Relaxed);
        assert!(matches!(
            tx.write(&[0; 16]),
            Err(RingError::Corrupted { .. })
        ));
    }

    #[test]
    fn producer_attached_to_corrupted_indices_reports_them() {
        // Found by the `attach_ring` fuzz target: the producer trusted the
        // indices it started from, and computing its free space overflowed.
        let mut mem = Mem([0; HEADER_SIZE + 16]);
        let p = mem.0.as_mut_ptr();
        // SAFETY: `mem` is valid and exclusive for the ring's lifetime.
        let ring = unsafe { RawRing::init(p, HEADER_SIZE + 16, 16) }.unwrap();
        ring.raw.tail().store(1000, Ordering::Relaxed);
        // SAFETY: the only producer of the ring.
        let mut tx = unsafe { ring.producer() };
        assert!(matches!(tx.write(b"x"), Err(RingError::Corrupted { .. })));
        assert!(matches!(tx.grant_max(1), Err(GrantError::Corrupted(_))));
        assert!(tx.free().is_err());
    }
}
