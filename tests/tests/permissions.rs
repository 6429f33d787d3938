//! File modes and who may connect: private directories are 0700, sockets and lock files
//! 0600, insecure directories are refused, and (as root) a process running as another
//! user is kept out both by the file modes and by the peer policy at accept, while a
//! client refuses a server of another user unless it opts out.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use ringlink_tests::{TempDir, TestChild, cannot_run, is_root};
use ringlink_unix::{
    Access, ConnectOptions, ErrorKind, Listener, ListenerOptions, PeerCredentialsExt, PeerPolicy,
    Stream, UserId,
};

const CHILD: &str = env!("CARGO_BIN_EXE_ringlink-test-child");

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn uid() -> u32 {
    // SAFETY: `geteuid` cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// A child that binds the plain name `demo` with the given environment.
fn bind_plain(env: &[(&str, &std::path::Path)]) -> (TestChild, String) {
    let mut cmd = Command::new(CHILD);
    cmd.args(["try-bind", "demo"])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TMPDIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = TestChild::spawn_with(&mut cmd);
    let line = child.line("bind result", Duration::from_secs(20));
    (child, line)
}

#[test]
fn plain_names_get_a_private_directory_and_owner_only_files() {
    let tmp = TempDir::new("perm-tmp");
    let (_child, line) = bind_plain(&[("TMPDIR", tmp.path())]);
    let dir = tmp.path().join(format!("ringlink-{}", uid()));
    assert_eq!(line, format!("ok {}", dir.join("demo").display()));
    assert_eq!(mode(&dir), 0o700, "private directory");
    assert_eq!(mode(&dir.join("demo")), 0o600, "socket");
    assert_eq!(mode(&dir.join("demo.lock")), 0o600, "lock file");

    let runtime = TempDir::new("perm-xdg");
    let (_child, line) = bind_plain(&[("XDG_RUNTIME_DIR", runtime.path())]);
    let dir = runtime.path().join("ringlink");
    assert_eq!(line, format!("ok {}", dir.join("demo").display()));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("demo")), 0o600);
}

#[test]
fn an_insecure_private_directory_is_refused() {
    let tmp = TempDir::new("perm-bad");
    let dir = tmp.path().join(format!("ringlink-{}", uid()));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_child, line) = bind_plain(&[("TMPDIR", tmp.path())]);
    assert!(line.starts_with("error AccessDenied"), "{line}");
    assert!(
        line.contains("writable by group or others"),
        "actionable message: {line}"
    );
    assert!(!dir.join("demo").exists());
}

#[test]
fn wider_access_is_explicit_and_exact() {
    let tmp = TempDir::new("perm-wide");
    for (access, expected) in [
        (Access::Owner, 0o600),
        (Access::Group, 0o660),
        (Access::Everyone, 0o666),
    ] {
        let sock = tmp.sock("s");
        let listener = Listener::bind(&sock, ListenerOptions::new().access(access)).unwrap();
        assert_eq!(mode(&sock), expected, "{access:?}");
        drop(listener);
        assert!(!sock.exists());
    }
}

/// The uid the cross-user tests switch to.
const OTHER: &str = "65534";

#[test]
fn another_user_is_refused_by_file_mode_and_by_peer_policy() {
    if !is_root() {
        return cannot_run(
            "another_user_is_refused_by_file_mode_and_by_peer_policy",
            "switching to uid 65534 needs root",
        );
    }
    let tmp = TempDir::new("perm-user");
    // Let other users traverse the directory, so only the socket's own protection counts.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // Default access: the socket file is 0600, the kernel says no.
    let sock = tmp.sock("owner");
    let _owner_only = Listener::bind(&sock, ListenerOptions::new()).unwrap();
    let child = TestChild::spawn(CHILD, &["uid-connect", sock.to_str().unwrap(), "65534"]);
    let line = child.line("connect result", Duration::from_secs(20));
    assert!(line.starts_with("connect-error AccessDenied"), "{line}");

    // World-accessible socket, but the same-user policy: refused at accept (the client
    // opts out of its own check of the server's user to get that far).
    let sock = tmp.sock("policy");
    let listener = Listener::bind(
        &sock,
        ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::SameUser),
    )
    .unwrap();
    let path = sock.to_str().unwrap();
    let child = TestChild::spawn(CHILD, &["uid-connect", path, OTHER, "--any-server"]);
    let err = listener.accept_timeout(Duration::from_secs(3)).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::TimedOut,
        "the refused peer is never handed out"
    );
    let line = child.line("connect result", Duration::from_secs(20));
    assert_eq!(
        line, "closed",
        "the refused peer sees its connection closed"
    );
    assert_eq!(listener.refused_count(), 1);

    // The same socket with an allow-list naming that user lets it in.
    drop(listener);
    let listener = Listener::bind(
        &sock,
        ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::users([UserId::from_uid(65534)])),
    )
    .unwrap();
    let child = TestChild::spawn(CHILD, &["uid-connect", path, OTHER, "--any-server"]);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(stream.peer_credentials().unwrap().uid(), Some(65534));
    std::io::Write::write_all(&mut &stream, b"hello").unwrap();
    let line = child.line("connect result", Duration::from_secs(20));
    assert_eq!(line, "data");

    // Without opting out, that user's client refuses this (root's) server itself.
    let child = TestChild::spawn(CHILD, &["uid-connect", path, OTHER]);
    let line = child.line("connect result", Duration::from_secs(20));
    assert!(
        line.starts_with("connect-error AccessDenied") && line.contains("runs as uid 0"),
        "{line}"
    );
    // The kernel completed its connect, but it sent nothing before closing.
    let refused = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 5];
    assert_eq!(std::io::Read::read(&mut &refused, &mut buf).unwrap(), 0);
}

/// A directory like `/tmp`: world-writable and sticky, inside a test directory others may
/// traverse. Returns the test directory (keep it alive) and the shared one.
fn shared_dir(tag: &str) -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new(tag);
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    (tmp, shared)
}

/// A server of uid 65534 at `sock`, with its private directory in `shared` (not `/tmp`).
fn foreign_server(sock: &std::path::Path, shared: &std::path::Path) -> TestChild {
    let mut cmd = Command::new(CHILD);
    cmd.args(["uid-serve", sock.to_str().unwrap(), OTHER])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", shared);
    let server = TestChild::spawn_with(&mut cmd);
    server.wait_ready();
    server
}

#[test]
fn a_client_refuses_another_users_server_in_a_shared_directory_unless_it_opts_out() {
    if !is_root() {
        return cannot_run(
            "a_client_refuses_another_users_server_in_a_shared_directory_unless_it_opts_out",
            "running a server as uid 65534 needs root",
        );
    }
    let (_tmp, shared) = shared_dir("perm-squat");
    let sock = shared.join("app");
    let _server = foreign_server(&sock, &shared);
    let owner = std::fs::symlink_metadata(&sock).unwrap().uid();
    assert_eq!(owner, 65534, "the planted socket belongs to the other user");

    let options = ConnectOptions::new().timeout(Duration::from_secs(5));
    let err = Stream::connect(&sock, options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    let text = err.to_string();
    assert!(text.contains("runs as uid 65534"), "{text}");
    assert!(
        text.contains("verify_server_user(false)"),
        "says how to opt out: {text}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(ringlink_unix::tokio::Stream::connect(&sock, options))
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AccessDenied,
        "async connect too: {err}"
    );

    // Opting out reaches it (and it is really that user's server).
    let stream = Stream::connect(&sock, options.verify_server_user(false)).unwrap();
    assert_eq!(stream.peer_credentials().unwrap().uid(), Some(65534));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut &stream, b"ping").unwrap();
    let mut back = [0u8; 4];
    std::io::Read::read_exact(&mut &stream, &mut back).unwrap();
    assert_eq!(&back, b"ping");
    runtime.block_on(async {
        let stream =
            ringlink_unix::tokio::Stream::connect(&sock, options.verify_server_user(false))
                .await
                .unwrap();
        assert_eq!(stream.peer_credentials().unwrap().uid(), Some(65534));
    });
}
