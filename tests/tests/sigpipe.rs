//! Writing to a closed peer never raises SIGPIPE: a child that keeps the default
//! (deadly) SIGPIPE action gets a BrokenPipe error and lives on.
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use ringlink_tests::{TempDir, TestChild};
use ringlink_unix::{Listener, ListenerOptions};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");

#[test]
fn a_child_with_default_sigpipe_gets_broken_pipe_and_lives() {
    let dir = TempDir::new("sigpipe");
    let sock = dir.sock("s");
    let listener = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let mut child = TestChild::spawn(CHILD, &["sigpipe", sock.to_str().unwrap()]);
    let served = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    child.wait_ready();
    drop(served);
    assert_eq!(
        child.line("first write error", Duration::from_secs(20)),
        "error BrokenPipe PeerClosed"
    );
    assert_eq!(
        child.line("second write error", Duration::from_secs(20)),
        "again PeerClosed"
    );
    let status = child.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.signal(),
        None,
        "the child was killed by a signal: {status:?}"
    );
    assert!(status.success(), "{status:?}");
}
