//! The system calls of the shared-memory transport: the mapping, socket options,
//! and passing descriptors with `SCM_RIGHTS` within a deadline.

use super::*;

/// A shared mapping, unmapped on drop.
pub(super) struct Mapping {
    pub(super) ptr: *mut u8,
    pub(super) len: usize,
}

// SAFETY: the mapping is plain memory; all concurrent access to it goes through
// the ring's atomics (indices) or through the one producer/consumer of each ring.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(super) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of `len` bytes of `fd`; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no ring handle outlives
        // the mapping (they are dropped first, see `Shared`).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

pub(super) fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

pub(super) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid shared-memory offer: {e}"),
    )
}

pub(super) fn invalid_msg(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid shared-memory offer: {msg}"),
    )
}

pub(super) fn set_socket_timeouts(sock: &Stream, timeout: Option<Duration>) -> io::Result<()> {
    sock.set_read_timeout(timeout)?;
    sock.set_write_timeout(timeout)?;
    Ok(())
}

pub(super) fn map_timeout(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        timed_out("shared-memory handshake")
    } else {
        e
    }
}

pub(super) fn send_with_fds(sock: &impl AsRawFd, tag: u8, fds: &[RawFd]) -> io::Result<()> {
    let mut byte = [tag];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg_buf = [0u64; 16]; // 128 bytes, 8-aligned: room for FD_COUNT fds
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let data_len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        assert!(
            space <= std::mem::size_of_val(&cmsg_buf),
            "cmsg buffer sized for FD_COUNT fds"
        );
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points to `space` bytes, enough for one cmsghdr with
        // `data_len` bytes of data, so CMSG_FIRSTHDR is non-null and CMSG_DATA in bounds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                data_len as usize,
            );
        }
    }
    crate::sys::retry(|| {
        // SAFETY: `msg` and everything it points to are valid for the call.
        syscall!(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
    })
    .map_err(map_timeout)?;
    Ok(())
}

/// Waits until `sock` is readable (or hung up), at most until `deadline`: the
/// handshake's receives then never block, whatever the socket's mode (a framed
/// stream's socket may be nonblocking) or its own timeouts.
pub(super) fn wait_readable(sock: &impl AsRawFd, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out("shared-memory handshake"));
        }
        let mut fds = [libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let timeout = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
        let n = crate::sys::retry(|| {
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
            syscall!(unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout) })
        })?;
        if n > 0 {
            return Ok(());
        }
    }
}

pub(super) fn recv_byte(
    sock: &impl AsRawFd,
    buf: &mut [u8; 1],
    deadline: Instant,
) -> io::Result<usize> {
    loop {
        wait_readable(sock, deadline)?;
        match crate::sys::recv(sock.as_raw_fd(), buf, true) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other.map_err(map_timeout),
        }
    }
}

/// Receives one tag byte and the descriptors sent with it (owned at once, so they
/// are closed on any error path).
pub(super) fn recv_with_fds(
    sock: &impl AsRawFd,
    deadline: Instant,
) -> io::Result<(u8, Vec<OwnedFd>)> {
    loop {
        wait_readable(sock, deadline)?;
        match recv_with_fds_now(sock) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// [`recv_with_fds`] once, without waiting (`WouldBlock` when nothing is there).
pub(super) fn recv_with_fds_now(sock: &impl AsRawFd) -> io::Result<(u8, Vec<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg_buf = [0u64; 16];
    // SAFETY: zeroed msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg_buf) as _;
    let n = crate::sys::retry(|| {
        // SAFETY: `msg` and its buffers are valid for the call.
        syscall!(unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
            )
        })
    })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `msg_controllen` bytes of `cmsg_buf`; the CMSG
    // macros walk only within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = data
                        .add(i * std::mem::size_of::<RawFd>())
                        .cast::<RawFd>()
                        .read_unaligned();
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(invalid_msg("too many descriptors"));
    }
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the peer closed the connection during the shared-memory handshake",
        ));
    }
    Ok((byte[0], fds))
}
