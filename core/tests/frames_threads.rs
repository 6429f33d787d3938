//! Frames across threads: typed messages over a blocking channel, and a `static`
//! `SharedProducer` fed by several threads until it is closed.
#![cfg(not(loom))]

use std::collections::HashMap;

use ringlink_core::channel::{Channel, WaitStrategy};
use ringlink_core::frame::ring::{FrameConsumer, Received, SendError};
use ringlink_core::frame::{FrameReader, FrameWriter};
use ringlink_core::shared::SharedProducer;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Msg<'a> {
    Ping(u32),
    Blob(&'a [u8]),
    Done,
}

/// Yields the thread while waiting (the crate's own `Yield` needs the `std` feature).
#[derive(Default)]
struct YieldNow;
impl WaitStrategy for YieldNow {
    fn wait(&mut self) {
        std::thread::yield_now();
    }
}

#[test]
fn typed_messages_over_a_blocking_channel() {
    let mut channel = Channel::<64>::new();
    let (a, b) = channel.split_with(YieldNow, YieldNow);
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut tx = FrameWriter::<_, 200>::new(a);
            let blob: Vec<u8> = (0..=180u8).collect();
            for i in 0..5_000u32 {
                tx.send(&Msg::Ping(i)).unwrap();
                if i % 100 == 0 {
                    // Longer than the ring: the blocking writer streams it through.
                    tx.send(&Msg::Blob(&blob[..(i as usize / 100) % 181]))
                        .unwrap();
                }
            }
            tx.send(&Msg::Done).unwrap();
        });
        let mut rx = FrameReader::<_, 200>::new(b);
        let mut next = 0;
        let mut blobs = 0;
        loop {
            match rx.recv::<Msg<'_>>().unwrap().expect("Done comes first") {
                Msg::Ping(i) => {
                    assert_eq!(i, next);
                    next += 1;
                }
                Msg::Blob(b) => {
                    assert!(b.iter().enumerate().all(|(i, &x)| x == i as u8));
                    blobs += 1;
                }
                Msg::Done => break,
            }
        }
        assert_eq!((next, blobs), (5_000, 50));
        assert_eq!(
            rx.read_frame().unwrap(),
            None,
            "clean end after the writer left"
        );
    });
}

static EVENTS: SharedProducer<1024, 48> = SharedProducer::new();

#[test]
fn static_shared_producer_until_closed() {
    let rx = EVENTS.take_consumer().expect("first take");
    assert!(EVENTS.take_consumer().is_none());
    let mut rx = FrameConsumer::<_, 48>::new(rx);
    let per_thread = 5_000u32;
    let got = std::thread::scope(|s| {
        let writers: Vec<_> = (0..3u8)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..per_thread {
                        let msg = (t, i, [t ^ i as u8; 5]);
                        loop {
                            match EVENTS.send_msg(&msg) {
                                Ok(()) => break,
                                Err(SendError::Full { .. }) => std::thread::yield_now(),
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        let closer = s.spawn(move || {
            for w in writers {
                w.join().unwrap();
            }
            EVENTS.close();
        });
        let mut got: HashMap<u8, u32> = HashMap::new();
        loop {
            match rx.recv_msg::<(u8, u32, [u8; 5])>().unwrap() {
                Received::Frame((t, i, body)) => {
                    let next = got.entry(t).or_default();
                    assert_eq!(i, *next, "thread {t}: in order, none lost");
                    assert_eq!(body, [t ^ i as u8; 5]);
                    *next += 1;
                }
                Received::Pending => std::thread::yield_now(),
                Received::Finished => break,
            }
        }
        closer.join().unwrap();
        got
    });
    assert_eq!(got.len(), 3);
    assert!(got.values().all(|&n| n == per_thread));
    assert_eq!(EVENTS.send(b"late"), Err(SendError::Closed));
}
