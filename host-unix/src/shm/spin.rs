//! The spin before parking: the policy is `ringlink_host::spin` (shared with Windows);
//! the clock its wake-up stamps are read from is Linux's `CLOCK_MONOTONIC`.

pub(super) use ringlink_host::spin::Spin;

/// Nanoseconds on the monotonic clock, which every process of the machine shares:
/// a stamp one side sends with a wake-up is comparable with the other's clock.
pub(super) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes of a `timespec`; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}
