//! The tokio shared-memory stream with its reading and writing sides in separate
//! tasks (`tokio::io::split`): both wait on the connection's one socket at once, and
//! whichever task drains a wake-up meant for the other wakes it, so no task is
//! stranded by a readiness the other cleared.
#![cfg(all(target_os = "linux", feature = "tokio"))]

use std::os::unix::net::UnixStream;
use std::time::Duration;

use ringlink_unix::shm::tokio::AsyncShmStream;
use ringlink_unix::shm::{ShmOptions, ShmStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 2 << 20;

fn pattern(at: usize, seed: u8) -> u8 {
    (at as u8).wrapping_mul(seed) ^ (at >> 11) as u8
}

/// Each side's reading and writing task park at once again and again (a ring of one
/// page, no spin in the reactor, readers that pause): every byte arrives, in both
/// directions, within the time limit; a stranded task shows as a timeout.
#[test]
fn split_tasks_waiting_at_once_are_each_woken() {
    let options = ShmOptions::new().capacity(4096);
    let (a, b) = UnixStream::pair().unwrap();
    let peer = {
        let options = options.clone();
        std::thread::spawn(move || ShmStream::accept_offer(b, &options))
    };
    let a = ShmStream::offer(a, &options).unwrap();
    let b = peer.join().unwrap().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (mut writers, mut readers) = (Vec::new(), Vec::new());
        for (seed, side) in [(1u8, a), (3u8, b)] {
            let (mut rx, mut tx) = tokio::io::split(AsyncShmStream::from_std(side).unwrap());
            writers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 3000];
                let mut next = 0usize;
                while next < TOTAL {
                    let end = (next + 1 + next % 2999).min(TOTAL);
                    for (i, b) in buf[..end - next].iter_mut().enumerate() {
                        *b = pattern(next + i, seed);
                    }
                    tx.write_all(&buf[..end - next]).await.unwrap();
                    next = end;
                }
                // Keep the writing side open until the peer has read everything.
                tx
            }));
            let other = seed ^ 2;
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 1000];
                let mut got = 0usize;
                while got < TOTAL {
                    let n = rx.read(&mut buf[..1 + got % 997]).await.unwrap();
                    assert!(n > 0, "end of stream after {got} bytes");
                    for (i, &b) in buf[..n].iter().enumerate() {
                        assert_eq!(b, pattern(got + i, other), "byte {}", got + i);
                    }
                    got += n;
                    if got % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        let all = async {
            for t in readers {
                t.await.unwrap();
            }
            for t in writers {
                drop(t.await.unwrap());
            }
        };
        tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .expect("a task was stranded: not done within 30 s");
    });
}

/// The writing task waits for room; then the reading task waits too (its wait is the
/// last one handed to the reactor), is woken by its byte, and never reads again.
/// When the peer then frees room, the writing task must still be woken, although the
/// task the reactor knew of has left.
#[test]
fn a_waiting_task_is_woken_after_the_other_task_stopped_reading() {
    let options = ShmOptions::new().capacity(4096).spin(Duration::ZERO);
    let (a, b) = UnixStream::pair().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = ShmStream::accept_offer(b, &ShmOptions::new()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(300));
        std::io::Write::write_all(&mut s, b"x").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut all = vec![0u8; 64 * 1024];
        std::io::Read::read_exact(&mut s, &mut all).unwrap();
        assert!(all.iter().all(|&b| b == 7));
        s
    });
    let a = ShmStream::offer(a, &options).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (mut rx, mut tx) = tokio::io::split(AsyncShmStream::from_std(a).unwrap());
        let writer = tokio::spawn(async move {
            tx.write_all(&[7u8; 64 * 1024]).await.unwrap();
            tx
        });
        // The writer has filled the ring and waits for room by now.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reader = tokio::spawn(async move {
            let mut one = [0u8; 1];
            rx.read_exact(&mut one).await.unwrap();
            assert_eq!(&one, b"x");
            rx // and no more reads
        });
        let _rx = reader.await.unwrap();
        let _tx = tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("the writing task was stranded")
            .unwrap();
    });
    drop(peer.join().unwrap());
}
