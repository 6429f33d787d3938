//! The byte-at-a-time fast path of the ring, [`Producer::push`] and
//! [`Consumer::pop`], and the copies behind [`Producer::write`] and
//! [`Consumer::read`]: each a bounds check against the cached index of the other
//! side (re-read only when the ring looks full or empty), a copy through raw
//! pointers and one Release store of the side's own index.
//!
//! ```
//! use ringlink_core::ring::{PopError, PushError, Ring};
//!
//! let mut ring: Ring<4> = Ring::new();
//! let (mut tx, mut rx) = ring.split();
//! for b in 1..=4 {
//!     tx.push(b).unwrap();
//! }
//! assert_eq!(tx.push(5), Err(PushError::Full(5)));
//! assert_eq!(rx.pop(), Ok(1));
//! tx.push(5).unwrap();
//! let mut out = [0; 8];
//! assert_eq!(rx.read(&mut out), Ok(4));
//! assert_eq!(&out[..4], &[2, 3, 4, 5]);
//! assert_eq!(rx.pop(), Err(PopError::Empty));
//! ```

use core::fmt;

use super::{Consumer, Producer, RingError, Trust, ring_copy_in, ring_copy_out};
use crate::sync::Ordering;

/// Why [`Producer::push`] did not write its byte; the byte comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// The ring is full (the consumer has not read yet).
    Full(u8),
    /// The reader is gone: nobody will read this byte (channel endpoints only).
    Closed(u8),
    /// The consumer's index is impossible: the ring's memory was corrupted.
    Corrupted(RingError),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("the ring is full"),
            PushError::Closed(_) => f.write_str("the reader is gone"),
            PushError::Corrupted(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for PushError {}

/// Why [`Consumer::pop`] returned no byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PopError {
    /// Nothing to read now.
    Empty,
    /// Nothing to read, ever: the writer is gone and every byte was read (channel
    /// endpoints only).
    Closed,
    /// The producer's index is impossible: the ring's memory was corrupted.
    Corrupted(RingError),
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopError::Empty => f.write_str("the ring is empty"),
            PopError::Closed => f.write_str("the writer is gone"),
            PopError::Corrupted(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for PopError {}

impl Producer<'_> {
    /// Writes one byte, or gives it back when the ring is full. The producer owns
    /// `tail`: this reads the consumer's `head` only when the cached copy says full.
    #[inline]
    pub fn push(&mut self, byte: u8) -> Result<(), PushError> {
        if self.cached_free() == 0 {
            self.refresh_head().map_err(PushError::Corrupted)?;
            if self.cached_free() == 0 {
                return Err(PushError::Full(byte));
            }
        }
        let at = (self.tail & self.ring.mask()) as usize;
        #[cfg(loom)]
        let _guard =
            crate::sync::shadow::Guards::write(self.ring.shadow, at, 1, self.ring.mask() as usize);
        // SAFETY: `at < cap`, and the byte at `tail` is free (`cached_free() > 0` by a
        // validated `head`): the consumer does not read it until `tail` moves past it.
        unsafe { self.ring.data.add(at).write(byte) };
        self.publish_tail(self.tail.wrapping_add(1));
        Ok(())
    }
}

impl<M: Trust> Producer<'_, M> {
    /// Copies as much of `data` as fits (in at most two pieces around the end of the
    /// data) and publishes it with one store. Returns the bytes written.
    pub(super) fn copy_in(&mut self, data: &[u8]) -> Result<usize, RingError> {
        if (self.cached_free() as usize) < data.len() {
            self.refresh_head()?;
        }
        let n = data.len().min(self.cached_free() as usize);
        if n == 0 {
            return Ok(0);
        }
        let start = (self.tail & self.ring.mask()) as usize;
        let first = n.min(self.ring.cap as usize - start);
        #[cfg(loom)]
        let _guard = crate::sync::shadow::Guards::write(
            self.ring.shadow,
            start,
            n,
            self.ring.mask() as usize,
        );
        // SAFETY: `[start, start + first)` and `[0, n - first)` lie within the data
        // (`first <= cap - start`, `n <= cap`) and cover the `n` free bytes from
        // `tail` (validated `head`), lent to this producer alone; `ring_copy_in`
        // copies volatile where the peer may write them too.
        unsafe {
            let base = self.ring.data;
            ring_copy_in::<M>(base.add(start), &data[..first]);
            ring_copy_in::<M>(base, &data[first..n]);
        }
        self.publish_tail(self.tail.wrapping_add(n as u32));
        Ok(n)
    }

    #[inline]
    fn publish_tail(&mut self, tail: u32) {
        self.tail = tail;
        // Release: the bytes written happen-before the consumer's Acquire load of `tail`.
        self.ring.tail().store(tail, Ordering::Release);
    }
}

impl Consumer<'_> {
    /// Reads one byte. The consumer owns `head`: this reads the producer's `tail`
    /// only when the cached copy says empty.
    #[inline]
    pub fn pop(&mut self) -> Result<u8, PopError> {
        if self.tail_cache == self.head {
            self.refresh_tail().map_err(PopError::Corrupted)?;
            if self.tail_cache == self.head {
                return Err(PopError::Empty);
            }
        }
        let at = (self.head & self.ring.mask()) as usize;
        #[cfg(loom)]
        let _guard =
            crate::sync::shadow::Guards::read(self.ring.shadow, at, 1, self.ring.mask() as usize);
        // SAFETY: `at < cap`, and the byte at `head` was published by the producer
        // (validated `tail`, Acquire load), which does not touch it until `head`
        // moves past it.
        let byte = unsafe { self.ring.data.add(at).read() };
        self.publish_head(self.head.wrapping_add(1));
        Ok(byte)
    }
}

impl<M: Trust> Consumer<'_, M> {
    /// Copies up to `out.len()` readable bytes (in at most two pieces) and frees
    /// them with one store. Returns the bytes read.
    pub(super) fn copy_out(&mut self, out: &mut [u8]) -> Result<usize, RingError> {
        if (self.tail_cache.wrapping_sub(self.head) as usize) < out.len() {
            self.refresh_tail()?;
        }
        let n = out
            .len()
            .min(self.tail_cache.wrapping_sub(self.head) as usize);
        if n == 0 {
            return Ok(0);
        }
        let start = (self.head & self.ring.mask()) as usize;
        let first = n.min(self.ring.cap as usize - start);
        #[cfg(loom)]
        let _guard = crate::sync::shadow::Guards::read(
            self.ring.shadow,
            start,
            n,
            self.ring.mask() as usize,
        );
        // SAFETY: both pieces lie within the data and cover the `n` bytes from
        // `head` that the producer published (validated `tail`, Acquire load) and an
        // honest producer leaves alone until `head` moves past them; `ring_copy_out`
        // copies volatile where a hostile peer may write them anyway.
        unsafe {
            let base = self.ring.data;
            ring_copy_out::<M>(base.add(start), &mut out[..first]);
            ring_copy_out::<M>(base, &mut out[first..n]);
        }
        self.publish_head(self.head.wrapping_add(n as u32));
        Ok(n)
    }

    #[inline]
    fn publish_head(&mut self, head: u32) {
        self.head = head;
        // Release: our reads of these bytes happen-before the producer's Acquire
        // load of `head`, after which it may overwrite them.
        self.ring.head().store(head, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::Ring;

    #[test]
    fn bytes_go_through_in_order_across_the_wrap() {
        let mut ring: Ring<8> = Ring::new();
        let (mut tx, mut rx) = ring.split();
        let mut next_in = 0u8;
        let mut next_out = 0u8;
        for round in 0..100 {
            // Uneven batches, so the indices wrap at every offset.
            for _ in 0..(round % 8) + 1 {
                match tx.push(next_in) {
                    Ok(()) => next_in = next_in.wrapping_add(1),
                    Err(PushError::Full(b)) => assert_eq!(b, next_in),
                    Err(e) => panic!("{e}"),
                }
            }
            while let Ok(b) = rx.pop() {
                assert_eq!(b, next_out);
                next_out = next_out.wrapping_add(1);
            }
        }
        assert_eq!(next_in, next_out);
        assert_eq!(rx.pop(), Err(PopError::Empty));
    }

    #[test]
    fn push_pop_mix_with_write_and_read() {
        let mut ring: Ring<8> = Ring::new();
        let (mut tx, mut rx) = ring.split();
        assert_eq!(tx.write(&[1, 2, 3, 4, 5, 6]), Ok(6));
        let mut out = [0; 4];
        assert_eq!(rx.read(&mut out), Ok(4));
        tx.push(7).unwrap();
        assert_eq!(tx.write(&[8, 9, 10, 11, 12]), Ok(5), "wraps, fills to 8");
        assert_eq!(tx.push(13), Err(PushError::Full(13)));
        let mut all = [0; 16];
        assert_eq!(rx.read(&mut all), Ok(8));
        assert_eq!(&all[..8], &[5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(rx.read(&mut all), Ok(0));
    }

    #[test]
    fn a_corrupted_index_is_an_error_not_a_byte() {
        let mut ring: Ring<8> = Ring::new();
        let (mut tx, mut rx) = ring.split();
        // A peer writing nonsense into the shared `tail` and `head`.
        rx.ring.tail().store(1000, Ordering::Release);
        assert!(matches!(rx.pop(), Err(PopError::Corrupted(_))));
        for _ in 0..8 {
            tx.push(0).unwrap();
        }
        tx.ring.head().store(u32::MAX / 2, Ordering::Release);
        assert!(matches!(tx.push(1), Err(PushError::Corrupted(_))));
    }
}
