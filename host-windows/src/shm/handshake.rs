//! The shared-memory handshake over a named pipe: the offer (the values of an unnamed
//! section and four events), their duplication out of the offering process and
//! validation by the accepting side, and the acknowledgement.

use super::*;

/// The offer's first byte; seven zero bytes follow, then five handle values.
const OFFER: u8 = b'S';
const ACK: u8 = b'A';
/// The offer on the wire: tag, reserved, the section, then the events in [`Event`] order.
const OFFER_LEN: usize = 8 + 8 * (1 + EVENTS);
const EVENTS: usize = 4;

/// The four events of a connection, one per half and side. Each has one waiter, the
/// half it names; the opposite half of the peer on the same ring signals it.
#[derive(Clone, Copy)]
enum Event {
    /// The accepting side's reader (ring A, offerer → acceptor: waits for data).
    AcceptorRead = 0,
    /// The accepting side's writer (ring B, acceptor → offerer: waits for room).
    AcceptorWrite = 1,
    /// The offering side's reader (ring B: waits for data).
    OfferorRead = 2,
    /// The offering side's writer (ring A: waits for room).
    OfferorWrite = 3,
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
    /// `incoming`).
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

    /// The client's process and user, before any handshake.
    pub fn peer_credentials(&self) -> Result<PeerCredentials, Error> {
        self.stream.peer_credentials()
    }

    /// The accepted pipe, without a handshake.
    pub fn into_stream(self) -> Stream {
        self.stream
    }
}

/// Where the stamp of a wake-up of `event` lies in a mapping of rings `ring_span` long.
fn stamp(map: &Mapping, ring_span: usize, event: Event) -> *mut u64 {
    let at = 2 * ring_span + event as usize * STAMP_LINE;
    debug_assert!(at + 8 <= map.len);
    // SAFETY: `at` lies inside the mapping (its length was checked by both sides to
    // cover the control page after the two rings), and is 8-aligned (page + 128 * i).
    unsafe { map.ptr.add(at).cast::<u64>() }
}

/// The two halves' wake-ups of one side: `[reader, writer]`.
///
/// # Safety
///
/// `map` must outlive the returned `Wake`s (they are stored beside it in `Shared`).
unsafe fn wakes(
    map: &Mapping,
    ring_span: usize,
    mut events: [Option<OwnedHandle>; EVENTS],
    reader: (Event, Event),
    writer: (Event, Event),
) -> io::Result<[Wake; 2]> {
    let mut take = |e: Event| {
        events[e as usize]
            .take()
            .ok_or_else(|| io::Error::other("an event was used twice"))
    };
    let (r_own, r_peer, w_own, w_peer) = (
        take(reader.0)?,
        take(reader.1)?,
        take(writer.0)?,
        take(writer.1)?,
    );
    let at = |e| stamp(map, ring_span, e);
    // SAFETY: the stamps are aligned and inside `map`, which outlives the wakes (caller).
    unsafe {
        Ok([
            Wake::new(r_own, r_peer, at(reader.0), at(reader.1)),
            Wake::new(w_own, w_peer, at(writer.0), at(writer.1)),
        ])
    }
}

/// Bytes of the rings and the control page for rings of `capacity`: `(ring_span, len)`.
fn layout(capacity: usize) -> (usize, usize) {
    let ring_span = align_up(HEADER_SIZE + capacity, PAGE);
    (ring_span, 2 * ring_span + CONTROL)
}

/// Writes `bytes` to the pipe before `deadline`, whatever its mode and timeouts.
fn send_within(pipe: &Stream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        match pipe.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == crate::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(timed_out("the shared-memory handshake"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills `buf` from the pipe before `deadline`; `Ok(false)` if the peer closed first.
fn recv_within(pipe: &Stream, buf: &mut [u8], deadline: Instant) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !pipe.wait_readable(Some(left))? {
            return Err(timed_out("the shared-memory handshake"));
        }
        match pipe.try_read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == crate::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// An offer sent and not yet acknowledged: what the offering side keeps meanwhile.
pub(super) struct OfferSent {
    pipe: Stream,
    peer: OwnedHandle,
    /// Open until the acceptor has taken its own handle to it (it acknowledges after).
    section: OwnedHandle,
    /// The rings below point into it: they are dropped (or handed to the stream,
    /// which keeps the mapping) together with it.
    map: Mapping,
    ring_a: RawRing<'static>,
    ring_b: RawRing<'static>,
    ring_span: usize,
    events: [OwnedHandle; EVENTS],
    deadline: Instant,
}

impl ShmStream {
    /// Offers a shared-memory connection over a connected pipe (either end) and waits
    /// for the peer's acknowledgement (`handshake_timeout`). The offering side creates
    /// the section (a server, in framed mode).
    pub fn offer(pipe: Stream, options: &ShmOptions) -> Result<ShmStream, Error> {
        let sent = Self::send_offer(pipe, options).map_err(Error::from)?;
        Self::finish_offer(sent, options).map_err(Error::from)
    }

    /// Accepts a shared-memory connection offered over a connected pipe, validating
    /// the section and every handle before acknowledging (a client, in framed mode).
    pub fn accept_offer(pipe: Stream, options: &ShmOptions) -> Result<ShmStream, Error> {
        Self::accept_offer_io(pipe, options).map_err(Error::from)
    }

    /// Creates the section and the events and sends the offer; the acknowledgement is
    /// still to come ([`finish_offer`](Self::finish_offer)).
    pub(super) fn send_offer(pipe: Stream, options: &ShmOptions) -> io::Result<OfferSent> {
        let deadline = Instant::now() + options.handshake_timeout;
        let cap = options
            .capacity
            .clamp(PAGE, MAX_CAPACITY)
            .next_power_of_two();
        let (ring_span, len) = layout(cap);
        let pid = pipe.peer_process_id()?;
        let peer = open_process(pid, false)?;
        let section = create_section(len)?;
        let map = Mapping::map(&section)?;
        if map.len < len {
            return Err(io::Error::other(
                "the new section maps shorter than created",
            ));
        }
        // SAFETY: the view is fresh, page aligned, at least `len` bytes, and not yet shared.
        let (ring_a, ring_b) = unsafe {
            (
                RawRing::init(map.ptr, ring_span, cap),
                RawRing::init(map.ptr.add(ring_span), ring_span, cap),
            )
        };
        let (ring_a, ring_b): (RawRing<'static>, RawRing<'static>) =
            (ring_a.map_err(invalid)?, ring_b.map_err(invalid)?);
        let events = [
            create_event()?,
            create_event()?,
            create_event()?,
            create_event()?,
        ];
        let mut offer = [0u8; OFFER_LEN];
        offer[0] = OFFER;
        let values = std::iter::once(&section).chain(events.iter());
        for (i, handle) in values.enumerate() {
            offer[8 + 8 * i..16 + 8 * i].copy_from_slice(&handle_value(handle).to_le_bytes());
        }
        send_within(&pipe, &offer, deadline)?;
        Ok(OfferSent {
            pipe,
            peer,
            section,
            map,
            ring_a,
            ring_b,
            ring_span,
            events,
            deadline,
        })
    }

    /// Waits (until the offer's deadline) for the acknowledgement of an offer sent.
    pub(super) fn finish_offer(sent: OfferSent, options: &ShmOptions) -> io::Result<ShmStream> {
        let OfferSent {
            pipe,
            peer,
            section,
            map,
            ring_a,
            ring_b,
            ring_span,
            events,
            deadline,
        } = sent;
        let mut ack = [0u8; 1];
        if !recv_within(&pipe, &mut ack, deadline)? {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the peer closed the connection instead of accepting shared memory",
            ));
        }
        if ack[0] != ACK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer answered the shared-memory offer with something else",
            ));
        }
        // The view keeps the section alive; the acceptor holds its own handle.
        drop(section);
        // SAFETY: ring A is written only by this side and ring B read only by this
        // side; the acceptor takes the other role of each.
        let (tx, rx) = unsafe { (ring_a.producer(), ring_b.consumer()) };
        // SAFETY: `map` moves into the stream beside the wakes and outlives them.
        let wakes = unsafe {
            wakes(
                &map,
                ring_span,
                events.map(Some),
                (Event::OfferorRead, Event::AcceptorWrite),
                (Event::OfferorWrite, Event::AcceptorRead),
            )
        }?;
        Ok(Self::assemble(tx, rx, map, pipe, peer, wakes, options))
    }

    pub(super) fn accept_offer_io(pipe: Stream, options: &ShmOptions) -> io::Result<ShmStream> {
        let deadline = Instant::now() + options.handshake_timeout;
        let mut offer = [0u8; OFFER_LEN];
        if !recv_within(&pipe, &mut offer, deadline)? {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the peer closed the connection instead of offering shared memory",
            ));
        }
        if offer[0] != OFFER || offer[1..8] != [0; 7] {
            return Err(invalid_msg(&format!(
                "not a shared-memory offer (tag {:#04x})",
                offer[0]
            )));
        }
        let value = |i: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&offer[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(v)
        };
        let pid = pipe.peer_process_id()?;
        // Every value is read in the offerer's handle table, never in ours: whatever
        // it names there, we get a new handle of our own, or an error.
        let offerer = open_process(pid, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open the offering process {pid} to take its handles: {e}"),
            )
        })?;
        let take = |i: usize, access: u32, kind: &str| -> io::Result<OwnedHandle> {
            let handle = duplicate_from(&offerer, value(i), access)
                .map_err(|_| invalid_msg(&format!("handle {i} is not a {kind} of the peer")))?;
            match object_type(&handle) {
                Ok(t) if t == kind => Ok(handle),
                Ok(t) => Err(invalid_msg(&format!("handle {i} is a {t}, not a {kind}"))),
                Err(e) => Err(invalid(format_args!("handle {i}: {e}"))),
            }
        };
        let section = take(0, SECTION_ACCESS, "Section")?;
        let events = [
            Some(take(1, EVENT_ACCESS, "Event")?),
            Some(take(2, EVENT_ACCESS, "Event")?),
            Some(take(3, EVENT_ACCESS, "Event")?),
            Some(take(4, EVENT_ACCESS, "Event")?),
        ];
        let peer = open_process(pid, false)?;
        drop(offerer);
        let map = Mapping::map(&section)
            .map_err(|e| invalid(format_args!("the section does not map read-write: {e}")))?;
        drop(section);
        // Before any byte of the view is read: it is committed, read-write memory.
        map.check(map.len).map_err(invalid_msg)?;
        // SAFETY: the view is valid for `map.len` bytes (all committed, checked above)
        // for as long as the rings live (they are stored beside it and dropped first);
        // the peer may write it concurrently, which the core validates.
        let first = unsafe { RawRing::attach(map.ptr, map.len) }.map_err(invalid)?;
        let cap = first.capacity();
        if !(PAGE..=MAX_CAPACITY).contains(&cap) {
            return Err(invalid_msg("the ring capacity is out of bounds"));
        }
        let (ring_span, len) = layout(cap);
        // Exactly two rings and the control page (the system may round a view up to
        // its allocation granularity, 64 KiB): nothing the peer can inflate.
        if map.len < len || map.len > align_up(len, 64 * 1024) {
            return Err(invalid_msg("the section has an impossible size"));
        }
        // SAFETY: as above; each ring is confined to its own span of the view.
        let (ring_a, ring_b) = unsafe {
            (
                RawRing::attach(map.ptr, ring_span),
                RawRing::attach(map.ptr.add(ring_span), ring_span),
            )
        };
        let (ring_a, ring_b): (RawRing<'static>, RawRing<'static>) =
            (ring_a.map_err(invalid)?, ring_b.map_err(invalid)?);
        send_within(&pipe, &[ACK], deadline)?;
        // SAFETY: the offerer produces into A and consumes B; we take the other roles.
        let (tx, rx) = unsafe { (ring_b.producer(), ring_a.consumer()) };
        // SAFETY: `map` moves into the stream beside the wakes and outlives them.
        let wakes = unsafe {
            wakes(
                &map,
                ring_span,
                events,
                (Event::AcceptorRead, Event::OfferorWrite),
                (Event::AcceptorWrite, Event::OfferorRead),
            )
        }?;
        Ok(Self::assemble(tx, rx, map, pipe, peer, wakes, options))
    }
}

/// Writes an offer of the given handle values: for tests that play a hostile offerer.
#[cfg(test)]
pub(super) fn send_raw_offer(pipe: &Stream, tag: u8, values: [u64; 1 + EVENTS]) {
    let mut offer = [0u8; OFFER_LEN];
    offer[0] = tag;
    for (i, v) in values.iter().enumerate() {
        offer[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    send_within(pipe, &offer, Instant::now() + Duration::from_secs(5)).unwrap();
}
