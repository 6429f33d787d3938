//! Views of bytes that another process may change at any moment: [`VolatileSlice`]
//! (read) and [`VolatileSliceMut`] (read and write), after rust-vmm's `vm-memory`.
//!
//! A ring in memory shared with a peer process ([`RawRing`](crate::ring::RawRing))
//! lends its bytes through these views instead of `&[u8]` / `&mut [u8]`: a Rust
//! reference promises that nobody else writes the bytes while it lives, a promise a
//! hostile peer can break whenever it likes. The views hold a raw pointer and a
//! length, and every access is a volatile copy, so a concurrent write by the peer can
//! only make the bytes read be other bytes, never undefined behaviour.
//!
//! ```
//! use ringlink_core::ring::{HEADER_SIZE, RawRing};
//!
//! #[repr(C, align(128))]
//! struct Mem([u8; HEADER_SIZE + 64]);
//! let mut mem = Mem([0; HEADER_SIZE + 64]);
//! let len = mem.0.len();
//! // SAFETY: `mem` is valid, aligned, and outlives the ring; no one else uses it.
//! let ring = unsafe { RawRing::init(mem.0.as_mut_ptr(), len, 64) }.unwrap();
//! // SAFETY: the only producer and the only consumer of the ring.
//! let (mut tx, mut rx) = unsafe { (ring.producer(), ring.consumer()) };
//! let mut grant = tx.grant_exact(5).unwrap();
//! assert_eq!(grant.bytes().copy_from(b"bytes"), 5);
//! grant.commit(5);
//! let grant = rx.read_grant().unwrap();
//! let mut out = [0u8; 5];
//! assert_eq!(grant.bytes().copy_to(&mut out), 5);
//! assert_eq!(&out, b"bytes");
//! grant.release(5);
//! ```
//!
//! A grant of a shared ring is not a slice, so a peer's bytes can never be borrowed
//! as one:
//!
//! ```compile_fail,E0308
//! use ringlink_core::ring::{HEADER_SIZE, RawRing};
//! #[repr(C, align(128))]
//! struct Mem([u8; HEADER_SIZE + 64]);
//! let mut mem = Mem([0; HEADER_SIZE + 64]);
//! let ring = unsafe { RawRing::init(mem.0.as_mut_ptr(), HEADER_SIZE + 64, 64) }.unwrap();
//! let mut rx = unsafe { ring.consumer() };
//! let grant = rx.read_grant().unwrap();
//! let bytes: &[u8] = &grant; // no `Deref<Target = [u8]>` on a shared ring's grant
//! ```
//!
//! ```compile_fail,E0599
//! use ringlink_core::ring::{HEADER_SIZE, RawRing};
//! #[repr(C, align(128))]
//! struct Mem([u8; HEADER_SIZE + 64]);
//! let mut mem = Mem([0; HEADER_SIZE + 64]);
//! let ring = unsafe { RawRing::init(mem.0.as_mut_ptr(), HEADER_SIZE + 64, 64) }.unwrap();
//! let mut tx = unsafe { ring.producer() };
//! let mut grant = tx.grant_max(8).unwrap();
//! grant.copy_from_slice(b"12345678"); // no `DerefMut` either
//! ```

use core::marker::PhantomData;
use core::ops::Range;

/// Bytes that may change under the reader: a pointer and a length, read only
/// through volatile copies.
#[derive(Clone, Copy)]
pub struct VolatileSlice<'a> {
    ptr: *const u8,
    len: usize,
    _bytes: PhantomData<&'a [u8]>,
}

impl<'a> VolatileSlice<'a> {
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes for `'a` (others may write them).
    pub(crate) unsafe fn new(ptr: *const u8, len: usize) -> Self {
        VolatileSlice {
            ptr,
            len,
            _bytes: PhantomData,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the first `out.len()` bytes (fewer if the view is shorter) into `out`;
    /// returns how many. What the peer wrote meanwhile may or may not be seen.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        // SAFETY: `ptr` is valid for `len >= n` bytes (constructor contract); `out`
        // is ours and does not overlap memory the view covers (a `&mut [u8]` cannot
        // cover bytes someone else may write).
        unsafe { copy_out(self.ptr, &mut out[..n]) };
        n
    }

    /// The byte at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<u8> {
        if index >= self.len {
            return None;
        }
        // SAFETY: `index < len`, inside the view.
        Some(unsafe { self.ptr.add(index).read_volatile() })
    }

    /// The bytes of `range`, or `None` if it does not lie inside the view.
    pub fn subslice(&self, range: Range<usize>) -> Option<VolatileSlice<'a>> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        // SAFETY: the range lies inside the view, which is valid for `'a`.
        Some(unsafe { VolatileSlice::new(self.ptr.add(range.start), range.end - range.start) })
    }

    /// The address of the first byte. Reading through it is only sound with
    /// volatile or atomic accesses: the bytes may change at any time.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
}

impl core::fmt::Debug for VolatileSlice<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VolatileSlice")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Writable bytes that may change under the writer: a pointer and a length,
/// written and read only through volatile copies.
pub struct VolatileSliceMut<'a> {
    ptr: *mut u8,
    len: usize,
    _bytes: PhantomData<&'a mut [u8]>,
}

impl<'a> VolatileSliceMut<'a> {
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a` (others
    /// may write them too), and no other view of this crate may cover them.
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        VolatileSliceMut {
            ptr,
            len,
            _bytes: PhantomData,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` (as much as fits) to the start of the view; returns how many bytes.
    pub fn copy_from(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.len);
        // SAFETY: `ptr` is valid for writes of `len >= n` bytes; `data` is ours and
        // does not overlap the view (see `VolatileSlice::copy_to`).
        unsafe { copy_in(self.ptr, &data[..n]) };
        n
    }

    /// Copies the bytes of `from` (as many as fit) to the start of the view, for
    /// moving bytes between two shared rings; returns how many.
    pub fn copy_from_volatile(&mut self, from: &VolatileSlice<'_>) -> usize {
        let n = from.len.min(self.len);
        // SAFETY: both views are valid for `n` bytes; they belong to different
        // grants, which never cover the same bytes of one ring, and two rings
        // never overlap.
        unsafe { copy_between(from.ptr, self.ptr, n) };
        n
    }

    /// Sets every byte to `value`.
    pub fn fill(&mut self, value: u8) {
        for i in 0..self.len {
            // SAFETY: `i < len`, inside the view.
            unsafe { self.ptr.add(i).write_volatile(value) };
        }
    }

    /// Writes `value` at `index`; returns `false` (writing nothing) past the end.
    pub fn set(&mut self, index: usize, value: u8) -> bool {
        if index >= self.len {
            return false;
        }
        // SAFETY: `index < len`, inside the view.
        unsafe { self.ptr.add(index).write_volatile(value) };
        true
    }

    /// A read view of the same bytes.
    pub fn as_volatile(&self) -> VolatileSlice<'_> {
        // SAFETY: the bytes are valid for reads for as long as `self` is borrowed.
        unsafe { VolatileSlice::new(self.ptr, self.len) }
    }

    /// The bytes of `range`, or `None` if it does not lie inside the view.
    pub fn subslice(&mut self, range: Range<usize>) -> Option<VolatileSliceMut<'_>> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        // SAFETY: the range lies inside the view, borrowed mutably for the result's life.
        Some(unsafe { VolatileSliceMut::new(self.ptr.add(range.start), range.end - range.start) })
    }

    /// The address of the first byte. Accessing through it is only sound with
    /// volatile or atomic accesses: the bytes may change at any time.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
}

impl core::fmt::Debug for VolatileSliceMut<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VolatileSliceMut")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Copies `out.len()` bytes from `src` into `out`, volatile on the shared side.
///
/// # Safety
/// `src` must be valid for reads of `out.len()` bytes and must not overlap `out`.
pub(crate) unsafe fn copy_out(src: *const u8, out: &mut [u8]) {
    // SAFETY: forwarded contract; `out` is valid for writes of its length.
    unsafe { copy_between(src, out.as_mut_ptr(), out.len()) }
}

/// Copies `data` to `dst`, volatile on the shared side.
///
/// # Safety
/// `dst` must be valid for writes of `data.len()` bytes and must not overlap `data`.
pub(crate) unsafe fn copy_in(dst: *mut u8, data: &[u8]) {
    // SAFETY: forwarded contract; `data` is valid for reads of its length.
    unsafe { copy_between(data.as_ptr(), dst, data.len()) }
}

/// From this many bytes on, a copy is one `rep movsb` where the target has it.
#[cfg(target_arch = "x86_64")]
const OPAQUE_COPY_MIN: usize = 64;

/// Copies `len` bytes with one `rep movsb`: fast, also in debug builds, and as good
/// as volatile, since the compiler cannot see into an `asm!` block: it performs
/// each access exactly once, and nothing is assumed about the bytes it moved.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes; they must
/// not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn opaque_copy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: `rep movsb` copies `rcx` bytes from `rsi` to `rdi` upwards (the ABI
    // guarantees the direction flag is clear on entry), which the contract makes
    // valid; it touches no stack and no flags.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags),
        );
    }
}

/// Copies `len` bytes from `src` to `dst`, either or both memory others may
/// write: on `x86_64` one `rep movsb` from 64 bytes on, else volatile bytes.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes; they must not overlap.
pub(crate) unsafe fn copy_between(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= OPAQUE_COPY_MIN {
        // SAFETY: forwarded contract.
        return unsafe { opaque_copy(src, dst, len) };
    }
    let mut done = 0;
    while done < len {
        // SAFETY: `done < len`, inside both regions (contract).
        unsafe { dst.add(done).write_volatile(src.add(done).read_volatile()) };
        done += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_at_every_alignment_and_length() {
        // Past 64 bytes too, so both the byte loop and `rep movsb` are covered.
        let src: [u8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ 0x5a);
        for off in 0..9 {
            for len in (0..40).chain([63, 64, 65, 100, 200]) {
                let mut out = [0u8; 248];
                // SAFETY: `off + len <= 256`, inside `src`; `out` is separate.
                unsafe { copy_out(src.as_ptr().add(off), &mut out[..len]) };
                assert_eq!(&out[..len], &src[off..off + len]);
                let mut dst = [0u8; 256];
                // SAFETY: as above, for `dst`.
                unsafe { copy_in(dst.as_mut_ptr().add(off), &src[..len]) };
                assert_eq!(&dst[off..off + len], &src[..len]);
                assert!(dst[..off].iter().all(|&b| b == 0));
                let mut dst = [0u8; 256];
                // SAFETY: both regions lie inside their arrays and do not overlap.
                unsafe { copy_between(src.as_ptr().add(off), dst.as_mut_ptr(), len) };
                assert_eq!(&dst[..len], &src[off..off + len]);
            }
        }
    }

    #[test]
    fn views_bound_every_access() {
        let mut mem = [7u8; 16];
        // SAFETY: `mem` is valid for 16 bytes for the whole test.
        let mut w = unsafe { VolatileSliceMut::new(mem.as_mut_ptr(), 16) };
        assert_eq!(w.copy_from(&[1; 20]), 16);
        assert!(w.set(15, 9) && !w.set(16, 9));
        let r = w.as_volatile();
        assert_eq!((r.get(15), r.get(16)), (Some(9), None));
        assert!(r.subslice(4..17).is_none() && r.subslice(4..16).is_some());
        let mut out = [0u8; 4];
        assert_eq!(r.subslice(14..16).unwrap().copy_to(&mut out), 2);
        assert_eq!(&out[..2], &[1, 9]);
        w.fill(3);
        assert_eq!(mem, [3; 16]);
    }
}
