//! The shared-memory handshake: the offer (a sealed memfd over `SCM_RIGHTS`, and no
//! other descriptor), its validation by the accepting side, and the acknowledgement.

use super::*;

/// A connected Unix stream socket that a shared-memory connection can be set up
/// over and then keeps open beside the mapping: ringlink's [`Stream`] (a server's
/// keeps its listener's `max_connections` slot for as long as the shared-memory
/// connection lives), std's `UnixStream`, or an `OwnedFd`.
pub trait ShmSocket: sealed::Sealed {
    /// The socket as a [`Stream`], with what it holds (its connection slot).
    #[doc(hidden)]
    fn into_stream(self) -> Stream;
}

mod sealed {
    /// Only the socket types of this module are [`super::ShmSocket`]s.
    pub trait Sealed {}
    impl Sealed for crate::Stream {}
    impl Sealed for std::os::unix::net::UnixStream {}
    impl Sealed for std::os::fd::OwnedFd {}
}

impl ShmSocket for Stream {
    fn into_stream(self) -> Stream {
        self
    }
}

impl ShmSocket for std::os::unix::net::UnixStream {
    fn into_stream(self) -> Stream {
        Stream::from(OwnedFd::from(self))
    }
}

impl ShmSocket for OwnedFd {
    fn into_stream(self) -> Stream {
        Stream::from(self)
    }
}

/// An accepted connection whose shared-memory handshake has not run yet, from
/// [`ShmStream::accept`]. [`complete`](Self::complete) makes the offer and waits
/// for the client's acknowledgement (the options' `handshake_timeout`): run it
/// where the connection will be served, not in the accept loop.
#[derive(Debug)]
pub struct ShmHandshake {
    stream: Stream,
    options: ShmOptions,
}

impl ShmHandshake {
    /// A handshake for a connection accepted some other way (`accept_timeout`,
    /// `incoming`, a tokio listener's `into_std`).
    pub fn new(stream: Stream, options: &ShmOptions) -> ShmHandshake {
        ShmHandshake {
            stream,
            options: options.clone(),
        }
    }

    /// Offers the client shared memory and waits for its acknowledgement; see
    /// [`ShmStream::offer`].
    pub fn complete(self) -> Result<ShmStream, Error> {
        ShmStream::offer(self.stream, &self.options)
    }

    /// The client's user, group and process, before any handshake.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        self.stream.peer_credentials()
    }

    /// The accepted socket, without a handshake.
    pub fn into_stream(self) -> Stream {
        self.stream
    }
}

/// An offer sent and not yet acknowledged: what the offering side keeps meanwhile.
pub(super) struct OfferSent {
    pub(super) sock: Stream,
    memfd: OwnedFd,
    /// The rings below point into it: they are dropped (or handed to the stream,
    /// which keeps the mapping) together with it.
    map: Mapping,
    ring_a: RawRing<'static>,
    ring_b: RawRing<'static>,
    pub(super) deadline: Instant,
}

impl ShmStream {
    /// Offers a shared-memory connection over a connected Unix socket and waits
    /// for the peer's acknowledgement (`handshake_timeout`). The offering side
    /// creates the mapping (a server, in framed mode).
    pub fn offer(sock: impl ShmSocket, options: &ShmOptions) -> Result<ShmStream, Error> {
        Self::offer_io(sock.into_stream(), options).map_err(Error::from)
    }

    /// Accepts a shared-memory connection offered over a connected Unix socket,
    /// validating the mapping and every descriptor before acknowledging (a client,
    /// in framed mode).
    pub fn accept_offer(sock: impl ShmSocket, options: &ShmOptions) -> Result<ShmStream, Error> {
        Self::accept_offer_io(sock.into_stream(), options).map_err(Error::from)
    }

    fn offer_io(sock: Stream, options: &ShmOptions) -> io::Result<ShmStream> {
        let sent = Self::send_offer(sock, options)?;
        Self::finish_offer(sent, options)
    }

    /// Creates the mapping and sends the offer; the
    /// acknowledgement is still to come ([`finish_offer`](Self::finish_offer)).
    pub(super) fn send_offer(sock: Stream, options: &ShmOptions) -> io::Result<OfferSent> {
        let cap = options
            .capacity
            .clamp(PAGE, MAX_CAPACITY)
            .next_power_of_two();
        let ring_span = align_up(HEADER_SIZE + cap, PAGE);
        let len = 2 * ring_span;

        let memfd = crate::sys::retry(|| {
            // SAFETY: the name is a valid NUL-terminated string; flags are valid.
            syscall!(unsafe {
                libc::memfd_create(
                    c"ringlink-shm".as_ptr(),
                    libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
                )
            })
        })?;
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
        crate::sys::retry(|| {
            // SAFETY: `memfd` is a valid descriptor.
            syscall!(unsafe { libc::ftruncate(memfd.as_raw_fd(), len as libc::off_t) })
        })?;
        crate::sys::retry(|| {
            // Sealed to its size: the peer can neither shrink it (SIGBUS on our side)
            // nor grow it, and nobody can change the seals again.
            // SAFETY: `memfd` is a valid memfd created with MFD_ALLOW_SEALING.
            syscall!(unsafe {
                libc::fcntl(
                    memfd.as_raw_fd(),
                    libc::F_ADD_SEALS,
                    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
                )
            })
        })?;
        let map = Mapping::map(memfd.as_fd(), len)?;
        // SAFETY: the mapping is fresh, page aligned, `len` bytes, and not yet shared.
        let (ring_a, ring_b) = unsafe {
            (
                RawRing::init(map.ptr, ring_span, cap),
                RawRing::init(map.ptr.add(ring_span), ring_span, cap),
            )
        };
        let (ring_a, ring_b): (RawRing<'static>, RawRing<'static>) =
            (ring_a.map_err(invalid)?, ring_b.map_err(invalid)?);
        // The wake-ups of both rings travel over the connection's socket: no
        // other descriptor is offered.
        let deadline = Instant::now() + options.handshake_timeout;
        set_socket_timeouts(&sock, Some(options.handshake_timeout))?;
        let fds: [RawFd; FD_COUNT] = [memfd.as_raw_fd()];
        send_with_fds(&sock, OFFER, &fds)?;
        Ok(OfferSent {
            sock,
            memfd,
            map,
            ring_a,
            ring_b,
            deadline,
        })
    }

    /// Waits (until the offer's deadline) for the acknowledgement of an offer sent.
    pub(super) fn finish_offer(sent: OfferSent, options: &ShmOptions) -> io::Result<ShmStream> {
        let OfferSent {
            sock,
            memfd,
            map,
            ring_a,
            ring_b,
            deadline,
        } = sent;
        let mut ack = [0u8; 1];
        match recv_byte(&sock, &mut ack, deadline)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the peer closed the connection instead of accepting shared memory",
                ));
            }
            _ if ack[0] != ACK => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the peer answered the shared-memory offer with something else",
                ));
            }
            _ => {}
        }
        set_socket_timeouts(&sock, None)?;
        drop(memfd);
        // SAFETY: ring A is written only by this side and ring B read only by this
        // side; the acceptor takes the other role of each.
        let (tx, rx) = unsafe { (ring_a.producer(), ring_b.consumer()) };
        Ok(Self::assemble(tx, rx, map, sock, options))
    }

    pub(super) fn accept_offer_io(sock: Stream, options: &ShmOptions) -> io::Result<ShmStream> {
        let deadline = Instant::now() + options.handshake_timeout;
        set_socket_timeouts(&sock, Some(options.handshake_timeout))?;
        // Every descriptor received is owned at once: on any error below (an extra
        // one, a wrong kind) dropping `fds` closes them all.
        let (tag, fds) = recv_with_fds(&sock, deadline)?;
        let fds: [OwnedFd; FD_COUNT] = match (tag, <[OwnedFd; FD_COUNT]>::try_from(fds)) {
            (OFFER, Ok(fds)) => fds,
            (_, Ok(_)) => return Err(not_an_offer(tag, FD_COUNT)),
            (_, Err(fds)) => return Err(not_an_offer(tag, fds.len())),
        };
        let [memfd] = fds;
        let len = check_sealed_memfd(&memfd)?;
        let map = Mapping::map(memfd.as_fd(), len)?;
        drop(memfd);
        // SAFETY: `map` is valid for `len` bytes for as long as the rings live (they
        // are stored beside it and dropped first); the peer may write it concurrently,
        // which the core validates.
        let ring_a = unsafe { RawRing::attach(map.ptr, len) }.map_err(invalid)?;
        let ring_span = align_up(HEADER_SIZE + ring_a.capacity(), PAGE);
        if ring_span >= len {
            return Err(invalid_msg("shared-memory mapping holds only one ring"));
        }
        // SAFETY: `ring_span < len`, so the second ring starts inside the mapping.
        let ring_b =
            unsafe { RawRing::attach(map.ptr.add(ring_span), len - ring_span) }.map_err(invalid)?;
        send_with_fds(&sock, ACK, &[])?;
        set_socket_timeouts(&sock, None)?;
        // SAFETY: the offerer produces into A and consumes B; we take the other roles.
        let (tx, rx) = unsafe { (ring_b.producer(), ring_a.consumer()) };
        Ok(Self::assemble(tx, rx, map, sock, options))
    }
}

/// An offer is a tag and exactly [`FD_COUNT`] descriptors (the memfd): a message
/// with another tag, fewer descriptors or more (a peer that slips in a wake-up
/// object, an eventfd or a pipe, whose open file it would share) is refused.
fn not_an_offer(tag: u8, fds: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a shared-memory offer ({fds} descriptors, tag {tag:#04x})"),
    )
}

/// Checks that the mapping cannot shrink under us and has a sane size; returns it.
pub(super) fn check_sealed_memfd(fd: &OwnedFd) -> io::Result<usize> {
    let seals = crate::sys::retry(|| {
        // SAFETY: valid descriptor; F_GET_SEALS takes no argument.
        syscall!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
    })?;
    let needed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    if seals & needed != needed {
        return Err(invalid_msg("the mapping is not sealed against resizing"));
    }
    let mut st = MaybeUninit::<libc::stat>::uninit();
    crate::sys::retry(|| {
        // SAFETY: `st` is valid for writes of a `stat`.
        syscall!(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })
    })?;
    // SAFETY: fstat succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    let len = usize::try_from(st.st_size).map_err(|_| invalid_msg("negative size"))?;
    let max = 2 * align_up(HEADER_SIZE + MAX_CAPACITY, PAGE);
    if len < 2 * HEADER_SIZE || len > max || len % PAGE != 0 {
        return Err(invalid_msg("the mapping has an impossible size"));
    }
    Ok(len)
}
