//! Who owns a name: a live server is never evicted and a second bind says who holds it;
//! a SIGKILLed server's name is reclaimed by the next bind; two servers racing for a
//! name: exactly one wins, every time. What sits at a name or its lock file is trusted only
//! when it is what ringlink made: a planted FIFO, hard link, symbolic link, plain file or
//! another user's dead socket is refused at once, never blocked on, written or removed, and
//! in a shared directory the lock lives where nobody else can plant it.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
            pid: Some(first.pid())
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
        served.peer_credentials().unwrap().pid(),
        client.peer_credentials().unwrap().pid()
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
    // Probing agrees: not "stale, the next listen reclaims it".
    let (_probe, line) = child_says(dir.path(), &["probe", sock.to_str().unwrap()]);
    assert_eq!(line, "state occupied");
}

/// How long a child may take to report: generous for a busy machine, but a child that
/// blocks on a planted file never reports at all.
const REPORT: Duration = Duration::from_secs(10);

/// Runs `ringlink-test-child ARGS` with its private directory under `home` and returns the
/// child (it holds a listener it bound until dropped) and its one-line report.
fn child_says(home: &Path, args: &[&str]) -> (TestChild, String) {
    let mut cmd = Command::new(CHILD);
    cmd.args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", home);
    let child = TestChild::spawn_with(&mut cmd);
    let line = child.line(args[0], REPORT);
    (child, line)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0, "mkfifo");
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn a_fifo_at_the_lock_path_is_refused_and_never_blocks_listen_or_probe() {
    let dir = TempDir::new("fifo");
    let sock = dir.sock("s");
    let path = sock.to_str().unwrap();
    let lock = dir.sock("s.lock");
    mkfifo(&lock);
    let started = Instant::now();
    let (_first, line) = child_says(dir.path(), &["try-bind", path]);
    assert!(line.starts_with("error AccessDenied"), "{line}");
    assert!(line.contains("a FIFO"), "says what is wrong: {line}");
    let (_second, line) = child_says(dir.path(), &["try-bind", path]);
    assert!(
        line.starts_with("error AccessDenied"),
        "a second listen: {line}"
    );
    // A live server that is not ringlink's: probing it reads the pid from the lock file.
    let _foreign = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (_probe, line) = child_says(dir.path(), &["probe", path]);
    assert_eq!(line, "state live", "no pid from a FIFO");
    let (list, line) = child_says(dir.path(), &["list", dir.path().to_str().unwrap()]);
    assert_eq!(line, "s live", "listing probes each name");
    assert_eq!(list.line("end of the listing", REPORT), "end");
    assert!(is_fifo(&lock), "the FIFO is left alone");
    assert!(started.elapsed() < REPORT, "took {:?}", started.elapsed());
}

#[test]
fn a_hard_link_at_the_lock_path_is_never_truncated_written_or_removed() {
    let dir = TempDir::new("hlink");
    let sock = dir.sock("s");
    let victim = dir.sock("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::fs::hard_link(&victim, dir.sock("s.lock")).unwrap();
    let (mut child, line) = child_says(dir.path(), &["try-bind", sock.to_str().unwrap()]);
    assert!(line.starts_with("error AccessDenied"), "{line}");
    assert!(line.contains("2 hard links"), "says what is wrong: {line}");
    child.close_stdin();
    child.wait_exit(REPORT);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert!(dir.sock("s.lock").exists(), "the link is not removed");
    assert!(!sock.exists(), "nothing was bound");
}

#[test]
fn a_symlink_at_the_lock_path_is_never_followed() {
    let dir = TempDir::new("slink");
    let sock = dir.sock("s");
    let path = sock.to_str().unwrap();
    let target = dir.sock("target");
    std::fs::write(&target, b"4242\n").unwrap();
    std::os::unix::fs::symlink(&target, dir.sock("s.lock")).unwrap();
    let (_child, line) = child_says(dir.path(), &["try-bind", path]);
    assert!(line.starts_with("error AccessDenied"), "{line}");
    assert!(line.contains("symbolic link"), "{line}");
    let _foreign = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (_probe, line) = child_says(dir.path(), &["probe", path]);
    assert_eq!(line, "state live", "no pid read through the link");
    assert_eq!(std::fs::read(&target).unwrap(), b"4242\n");
}

#[test]
fn a_stale_socket_of_another_user_is_never_removed() {
    if !ringlink_tests::is_root() {
        return ringlink_tests::cannot_run(
            "a_stale_socket_of_another_user_is_never_removed",
            "giving a socket to uid 65534 needs root",
        );
    }
    let dir = TempDir::new("foreign");
    let sock = dir.sock("s");
    let path = sock.to_str().unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    std::os::unix::fs::chown(&sock, Some(65534), Some(65534)).unwrap();
    let (_probe, line) = child_says(dir.path(), &["probe", path]);
    assert_eq!(line, "state occupied", "probe agrees with listen");
    let (_child, line) = child_says(dir.path(), &["try-bind", path]);
    assert!(line.starts_with("error AccessDenied"), "{line}");
    assert!(line.contains("dead socket of uid 65534"), "{line}");
    let meta = std::fs::symlink_metadata(&sock).expect("the socket is still there");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.uid(), 65534);
}

#[test]
fn in_a_shared_directory_the_lock_lives_where_nobody_else_can_plant_it() {
    let home = TempDir::new("home");
    let shared = home.sock("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sock = shared.join("app");
    let path = sock.to_str().unwrap();
    // What another user could leave at `<socket>.lock` in /tmp before ringlink starts.
    let planted = shared.join("app.lock");
    std::fs::write(&planted, b"planted\n").unwrap();

    let (first, line) = child_says(home.path(), &["try-bind", path]);
    assert_eq!(line, format!("ok {path}"));
    assert_eq!(
        std::fs::read(&planted).unwrap(),
        b"planted\n",
        "not touched"
    );
    let (_second, line) = child_says(home.path(), &["try-bind", path]);
    assert!(line.starts_with("error AddressInUse"), "{line}");
    assert!(line.contains(&format!("pid {}", first.pid())), "{line}");
    let (_probe, line) = child_says(home.path(), &["probe", path]);
    assert_eq!(line, format!("state live (pid {})", first.pid()));
    let euid = std::fs::metadata(home.path()).unwrap().uid();
    let locks = home.path().join(format!("ringlink-{euid}")).join(".lock");
    assert_eq!(
        std::fs::read_dir(&locks).unwrap().count(),
        1,
        "one lock in {locks:?}"
    );
    drop(first);
    // A SIGKILLed server leaves its socket; the next one reclaims it, planted file intact.
    let (_third, line) = child_says(home.path(), &["try-bind", path]);
    assert_eq!(line, format!("ok {path}"));
    assert_eq!(std::fs::read(&planted).unwrap(), b"planted\n");
}

#[test]
fn names_with_control_characters_are_refused_before_anything_is_made() {
    let home = TempDir::new("ctl");
    let path = home.sock("a\nb");
    for name in ["a\nb", "tab\there", path.to_str().unwrap()] {
        let (_child, line) = child_says(home.path(), &["try-bind", name]);
        assert!(line.starts_with("error InvalidName"), "{name:?}: {line}");
        assert!(line.contains("control character"), "{line}");
    }
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
