//! The one place where ringlink-core picks its synchronization primitives:
//! `core` atomics normally, loom's model-checked ones under `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering, fence};

/// A busy-wait hint; a yield to the other modelled threads under loom.
#[cfg(all(loom, feature = "async"))]
pub(crate) use loom::hint::spin_loop;

#[cfg(all(
    not(loom),
    feature = "async",
    target_has_atomic = "32",
    not(target_os = "none")
))]
pub(crate) use core::hint::spin_loop;

/// Per-byte access tracking for loom models: every byte of a ring's data has a
/// shadow cell, and grants hold loom's access guards on the bytes they cover, so
/// loom reports a producer and a consumer touching the same byte at once.
#[cfg(loom)]
pub(crate) mod shadow {
    extern crate std;
    use std::vec::Vec;

    pub(crate) type Cell = loom::cell::UnsafeCell<()>;

    /// Guards held for as long as a grant lives.
    #[derive(Default)]
    pub(crate) struct Guards {
        _mut: Vec<loom::cell::MutPtr<()>>,
        _const: Vec<loom::cell::ConstPtr<()>>,
    }

    impl Guards {
        pub(crate) fn write(cells: &[Cell], start: usize, len: usize, mask: usize) -> Self {
            let mut g = Self::default();
            for i in 0..len {
                g._mut.push(cells[(start + i) & mask].get_mut());
            }
            g
        }
        pub(crate) fn read(cells: &[Cell], start: usize, len: usize, mask: usize) -> Self {
            let mut g = Self::default();
            for i in 0..len {
                g._const.push(cells[(start + i) & mask].get());
            }
            g
        }
    }
}
