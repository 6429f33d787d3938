//! Who owns a name: a live server is never evicted and a second bind says who holds it;
//! a SIGKILLed server's name is reclaimed by the next bind; two servers racing for a
//! name: exactly one wins, every time.
#![cfg(unix)]

use std::io::{Read, Write};
use std::time::Duration;

use ringlink_tests::{TempDir, TestChild};
use ringlink_unix::{
    ConnectOptions, ErrorKind, Listener, ListenerOptions, Name, NameState, Stream,
};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");

#[test]
fn live_server_keeps_its_name_and_a_killed_one_is_replaced() {
    let dir = TempDir::new("own");
    let sock = dir.sock("s");
    let mut first = TestChild::spawn(CHILD, &["echo", sock.to_str().unwrap()]);
    first.wait_ready();

    let err = Listener::bind(&sock, ListenerOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddressInUse);
    let text = err.to_string();
    assert!(
        text.contains(sock.to_str().unwrap()),
        "names the path: {text}"
    );
    assert!(
        text.contains(&format!("pid {}", first.pid())),
        "names the holder: {text}"
    );
    let name = Name::from_path(&sock).unwrap();
    assert_eq!(
        name.state().unwrap(),
        NameState::Live {
            pid: Some(first.pid() as i32)
        }
    );
    // The failed bind did not disturb the live server.
    let mut c = Stream::connect(
        &sock,
        ConnectOptions::new().read_timeout(Some(Duration::from_secs(10))),
    )
    .unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(c);

    first.kill();
    assert!(sock.exists(), "SIGKILL leaves the socket file behind");
    assert_eq!(name.state().unwrap(), NameState::Stale);
    let connect_err = Stream::connect(&sock, ConnectOptions::new()).unwrap_err();
    assert_eq!(connect_err.kind(), ErrorKind::ConnectionRefused);

    let second =
        Listener::bind(&sock, ListenerOptions::new()).expect("the stale name is reclaimed");
    let client = Stream::connect(&sock, ConnectOptions::new()).unwrap();
    let served = second.accept_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        served.peer_credentials().unwrap().pid,
        client.peer_credentials().unwrap().pid
    );
}

#[test]
fn two_servers_racing_for_one_name_200_times_exactly_one_wins() {
    let dir = TempDir::new("race");
    let sock = dir.sock("s");
    let path = sock.to_str().unwrap();
    for round in 0..200 {
        let mut a = TestChild::spawn(CHILD, &["bind-race", path]);
        let mut b = TestChild::spawn(CHILD, &["bind-race", path]);
        a.wait_ready();
        b.wait_ready();
        a.send_line("go");
        b.send_line("go");
        let ra = a.line("bind result", Duration::from_secs(20));
        let rb = b.line("bind result", Duration::from_secs(20));
        let wins = [&ra, &rb].iter().filter(|r| r.as_str() == "won").count();
        assert_eq!(
            wins, 1,
            "round {round}: exactly one winner, got {ra:?} and {rb:?}"
        );
        let loser = if ra == "won" { &rb } else { &ra };
        assert!(
            loser.starts_with("lost AddressInUse"),
            "round {round}: {loser}"
        );
        // Both exit without cleaning up (as a crash would): the next round must
        // reclaim the stale name.
        a.close_stdin();
        b.close_stdin();
        assert!(a.wait_exit(Duration::from_secs(20)).success());
        assert!(b.wait_exit(Duration::from_secs(20)).success());
    }
}

#[test]
fn a_plain_file_at_the_name_is_never_replaced() {
    let dir = TempDir::new("file");
    let sock = dir.sock("s");
    std::fs::write(&sock, b"keep me").unwrap();
    let err = Listener::bind(&sock, ListenerOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddressInUse);
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&sock).unwrap(), b"keep me");
}
