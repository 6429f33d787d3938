//! The only place `ringlink-unix` talks to libc: thin, `io::Result`-returning system calls.
//!
//! Every wrapper retries `EINTR` where the call is restartable, so no caller has to, and
//! every socket is created close-on-exec with `SIGPIPE` suppressed (`MSG_NOSIGNAL` on
//! Linux and the BSDs, `SO_NOSIGPIPE` on Apple platforms).

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Runs a libc call and turns its `-1` into the thread's `errno`.
///
/// The caller writes the `unsafe` block (with its `// SAFETY:` line) inside the macro
/// call, because what makes a call sound depends on its arguments.
macro_rules! syscall {
    ($call:expr) => {{
        let res = $call;
        if res == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// Repeats `f` while it fails with `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Flag for `send`/`sendmsg` that turns a write to a closed peer into `EPIPE` instead of
/// `SIGPIPE`. Apple platforms have no such flag; their sockets get `SO_NOSIGPIPE`.
#[cfg(not(target_vendor = "apple"))]
const NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NOSIGNAL: libc::c_int = 0;

/// The longest path (in bytes, without the terminating NUL) a `sockaddr_un` can hold here:
/// 107 on Linux, 103 on the BSDs and macOS.
pub(crate) const SUN_PATH_MAX: usize = {
    // SAFETY: `sockaddr_un` is plain old data; all-zero is a valid value.
    let addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_path.len() - 1
};

/// A Unix socket address ready for `bind`/`connect`.
pub(crate) struct SockAddr {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl SockAddr {
    /// A filesystem address. The caller has checked the length against [`SUN_PATH_MAX`].
    pub(crate) fn path(path: &Path) -> io::Result<SockAddr> {
        Self::from_bytes(path.as_os_str().as_bytes(), false)
    }

    /// A Linux abstract address (`sun_path[0] == 0`), without a terminating NUL.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn abstract_name(name: &[u8]) -> io::Result<SockAddr> {
        Self::from_bytes(name, true)
    }

    fn from_bytes(bytes: &[u8], is_abstract: bool) -> io::Result<SockAddr> {
        // SAFETY: `sockaddr_un` is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let start = usize::from(is_abstract);
        if bytes.len() + start > SUN_PATH_MAX || (!is_abstract && bytes.contains(&0)) {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (dst, &src) in addr.sun_path[start..].iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let base = mem::offset_of!(libc::sockaddr_un, sun_path);
        // Paths carry their NUL; abstract names are exactly as long as given.
        let len = base + start + bytes.len() + usize::from(!is_abstract);
        Ok(SockAddr {
            addr,
            len: len as libc::socklen_t,
        })
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.addr as *const libc::sockaddr_un).cast()
    }
}

/// A new `AF_UNIX` stream socket, close-on-exec, `SIGPIPE`-free, blocking or not.
pub(crate) fn socket(nonblocking: bool) -> io::Result<OwnedFd> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    {
        let mut ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: plain system call with integer arguments.
        let fd = syscall!(unsafe { libc::socket(libc::AF_UNIX, ty, 0) })?;
        // SAFETY: `socket` just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    {
        // SAFETY: plain system call with integer arguments.
        let fd = syscall!(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) })?;
        // SAFETY: `socket` just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        set_cloexec(fd.as_raw_fd())?;
        #[cfg(target_vendor = "apple")]
        setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        if nonblocking {
            set_nonblocking(fd.as_raw_fd(), true)?;
        }
        Ok(fd)
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fd` is open for the duration of the call; F_SETFD takes an int.
    syscall!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// `bind(2)`.
pub(crate) fn bind(fd: RawFd, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: `addr` points to an initialised `sockaddr_un` of at least `addr.len` bytes.
    syscall!(unsafe { libc::bind(fd, addr.as_ptr(), addr.len) })?;
    Ok(())
}

/// `listen(2)`; the kernel caps `backlog` at its own maximum.
pub(crate) fn listen(fd: RawFd, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: plain system call with integer arguments.
    syscall!(unsafe { libc::listen(fd, backlog) })?;
    Ok(())
}

/// `connect(2)`, once: `EINTR` is returned to the caller, which owns the deadline.
pub(crate) fn connect(fd: RawFd, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: `addr` points to an initialised `sockaddr_un` of at least `addr.len` bytes.
    syscall!(unsafe { libc::connect(fd, addr.as_ptr(), addr.len) })?;
    Ok(())
}

/// `accept4(2)` (or `accept` + `fcntl` where there is none): a close-on-exec, blocking
/// stream socket. `EINTR` is retried.
pub(crate) fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    {
        let new = retry(|| {
            // SAFETY: null address pointers are allowed: the peer address is not wanted.
            syscall!(unsafe {
                libc::accept4(
                    fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            })
        })?;
        // SAFETY: `accept4` just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    {
        let new = retry(|| {
            // SAFETY: null address pointers are allowed: the peer address is not wanted.
            syscall!(unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) })
        })?;
        // SAFETY: `accept` just returned this descriptor; nothing else owns it.
        let new = unsafe { OwnedFd::from_raw_fd(new) };
        set_cloexec(new.as_raw_fd())?;
        // Accepted sockets may inherit O_NONBLOCK from the listener on the BSDs.
        set_nonblocking(new.as_raw_fd(), false)?;
        #[cfg(target_vendor = "apple")]
        setsockopt_int(new.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        Ok(new)
    }
}

/// `recv(2)` with `EINTR` retried; `dontwait` makes this one call nonblocking.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], dontwait: bool) -> io::Result<usize> {
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        syscall!(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
    })
    .map(|n| n as usize)
}

/// `send(2)` without `SIGPIPE`, `EINTR` retried; `dontwait` makes this one call nonblocking.
pub(crate) fn send(fd: RawFd, buf: &[u8], dontwait: bool) -> io::Result<usize> {
    let flags = NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    retry(|| {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
        syscall!(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) })
    })
    .map(|n| n as usize)
}

/// `sendmsg(2)` of several buffers at once, without `SIGPIPE`, `EINTR` retried.
pub(crate) fn send_vectored(
    fd: RawFd,
    bufs: &[io::IoSlice<'_>],
    dontwait: bool,
) -> io::Result<usize> {
    let flags = NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `msghdr` is plain old data; all-zero means "no address, no control data".
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(1024) as _;
    retry(|| {
        // SAFETY: `msg` points to `msg_iovlen` valid iovecs borrowed from `bufs`.
        syscall!(unsafe { libc::sendmsg(fd, &msg, flags) })
    })
    .map(|n| n as usize)
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain system call with integer arguments.
    syscall!(unsafe { libc::shutdown(fd, how) })?;
    Ok(())
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument.
    let flags = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL takes an int.
        syscall!(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Whether `O_NONBLOCK` is set.
pub(crate) fn is_nonblocking(fd: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument.
    let flags = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

#[cfg(target_vendor = "apple")]
fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` of the size passed.
    syscall!(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Sets `SO_RCVTIMEO` (`read == true`) or `SO_SNDTIMEO`; `None` means no timeout.
/// A zero duration is rounded up to one microsecond, because zero means "forever" to the kernel.
pub(crate) fn set_timeout(fd: RawFd, read: bool, timeout: Option<Duration>) -> io::Result<()> {
    let tv = match timeout {
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        Some(d) => {
            let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
            let mut usec = d.subsec_micros() as libc::suseconds_t;
            if secs == 0 && usec == 0 {
                usec = 1;
            }
            libc::timeval {
                tv_sec: secs,
                tv_usec: usec,
            }
        }
    };
    let opt = if read {
        libc::SO_RCVTIMEO
    } else {
        libc::SO_SNDTIMEO
    };
    // SAFETY: the option value is a live `timeval` of the size passed.
    syscall!(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Whether the socket's own address (`peer == false`) or its peer's is a name: a
/// path or an abstract name, as opposed to the unnamed end of a `connect` or a
/// `socketpair`.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) fn is_named(fd: RawFd, peer: bool) -> io::Result<bool> {
    // SAFETY: an all-zero sockaddr_un is a valid buffer for get{sock,peer}name.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let ptr = (&mut addr as *mut libc::sockaddr_un).cast::<libc::sockaddr>();
    if peer {
        // SAFETY: `ptr`/`len` describe a live, writable sockaddr_un.
        syscall!(unsafe { libc::getpeername(fd, ptr, &mut len) })?;
    } else {
        // SAFETY: `ptr`/`len` describe a live, writable sockaddr_un.
        syscall!(unsafe { libc::getsockname(fd, ptr, &mut len) })?;
    }
    // An unnamed socket's address is the family alone.
    Ok(len as usize > mem::size_of::<libc::sa_family_t>())
}

/// Reads `SO_RCVTIMEO` (`read == true`) or `SO_SNDTIMEO`.
pub(crate) fn timeout(fd: RawFd, read: bool) -> io::Result<Option<Duration>> {
    // SAFETY: `timeval` is plain old data; all-zero is a valid value.
    let mut tv: libc::timeval = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::timeval>() as libc::socklen_t;
    let opt = if read {
        libc::SO_RCVTIMEO
    } else {
        libc::SO_SNDTIMEO
    };
    // SAFETY: `tv` and `len` are live and `len` holds the size of `tv`.
    syscall!(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    })?;
    if tv.tv_sec == 0 && tv.tv_usec == 0 {
        Ok(None)
    } else {
        Ok(Some(
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64),
        ))
    }
}

/// The pending error of a socket (`SO_ERROR`), consumed.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live and `len` holds the size of `err`.
    syscall!(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// The connected peer's user id, group id and (where the OS tells) process id.
pub(crate) fn peer_credentials(fd: RawFd) -> io::Result<(u32, u32, Option<i32>)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: `ucred` is plain old data; all-zero is a valid value.
        let mut cred: libc::ucred = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are live and `len` holds the size of `cred`.
        syscall!(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        })?;
        Ok((cred.uid, cred.gid, (cred.pid > 0).then_some(cred.pid)))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: `uid` and `gid` are live out-parameters.
        syscall!(unsafe { libc::getpeereid(fd, &mut uid, &mut gid) })?;
        #[cfg(target_vendor = "apple")]
        let pid = {
            let mut pid: libc::pid_t = 0;
            let mut len = mem::size_of::<libc::pid_t>() as libc::socklen_t;
            // SAFETY: `pid` and `len` are live and `len` holds the size of `pid`.
            syscall!(unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_LOCAL,
                    libc::LOCAL_PEERPID,
                    (&mut pid as *mut libc::pid_t).cast(),
                    &mut len,
                )
            })
            .ok()
            .and_then(|_| (pid > 0).then_some(pid))
        };
        #[cfg(not(target_vendor = "apple"))]
        let pid = None;
        Ok((uid, gid, pid))
    }
}

/// Waits until `fd` is readable (`read`) or writable, for at most `timeout` (`None`: forever).
/// Returns `false` on timeout. `EINTR` ends the wait early with `true` so the caller retries.
pub(crate) fn poll(fd: RawFd, read: bool, timeout: Option<Duration>) -> io::Result<bool> {
    let events = if read { libc::POLLIN } else { libc::POLLOUT };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = match timeout {
        None => -1,
        // Round up so a short timeout never becomes a busy zero-timeout poll.
        Some(d) => {
            libc::c_int::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        }
    };
    // SAFETY: `pfd` is one live `pollfd`, and we pass a count of one.
    match syscall!(unsafe { libc::poll(&mut pfd, 1, ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: `geteuid` cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// This process's id.
pub(crate) fn pid() -> i32 {
    // SAFETY: `getpid` cannot fail and has no preconditions.
    unsafe { libc::getpid() }
}

/// Sets the permission bits of an open file (before `bind` on Linux, the socket's inode).
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments.
    syscall!(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// Opens a lock file so that nothing at `path` can make the call block or follow a link:
/// `O_NOFOLLOW` (a symbolic link fails with `ELOOP`), `O_NONBLOCK` (a FIFO opens at once
/// instead of waiting for a peer), `O_NOCTTY` (a terminal never becomes ours) and
/// `O_CLOEXEC`. With `create` it opens read-write, creating the file with that mode;
/// without, read-only. The caller checks what it got with [`fstat`] before using it.
pub(crate) fn open_lock_file(path: &Path, create: Option<u32>) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    flags |= match create {
        Some(_) => libc::O_RDWR | libc::O_CREAT,
        None => libc::O_RDONLY,
    };
    let mode = create.unwrap_or(0);
    let fd = retry(|| {
        // SAFETY: `c` is a NUL-terminated path that outlives the call; the mode is an int.
        syscall!(unsafe { libc::open(c.as_ptr(), flags, mode as libc::c_uint) })
    })?;
    // SAFETY: `open` just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes an exclusive `flock` without waiting; `Ok(false)` when another holder has it.
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let res = retry(|| {
        // SAFETY: plain system call with integer arguments.
        syscall!(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })
    });
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `fstat` tells about an open file: enough to decide whether to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    /// Device and inode: the file's identity.
    pub(crate) id: (u64, u64),
    /// `st_mode`: file type and permission bits.
    pub(crate) mode: libc::mode_t,
    /// The owner's user id.
    pub(crate) uid: u32,
    /// How many names (hard links) the file has; 0 once it was removed.
    pub(crate) nlink: u64,
}

impl FileStat {
    /// Whether it is a regular file (not a FIFO, directory, device or socket).
    pub(crate) fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// `fstat(2)` of an open file.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a live out-parameter.
    syscall!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(FileStat {
        id: (st.st_dev as u64, st.st_ino as u64),
        mode: st.st_mode,
        uid: st.st_uid,
        nlink: st.st_nlink as u64,
    })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A connected pair of close-on-exec, `SIGPIPE`-free stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    let ty = libc::SOCK_STREAM;
    // SAFETY: `fds` is a live array of two ints, as `socketpair` requires.
    syscall!(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: `socketpair` just returned these descriptors; nothing else owns them.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    for fd in [&a, &b] {
        set_cloexec(fd.as_raw_fd())?;
        #[cfg(target_vendor = "apple")]
        setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
    }
    Ok((a, b))
}
