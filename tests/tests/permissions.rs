//! File modes and who may connect: private directories are 0700, sockets and lock files
//! 0600, insecure directories are refused, and (as root) a process running as another
//! user is kept out both by the file modes and by the peer policy at accept.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use ringlink_tests::{TempDir, TestChild, is_root};
use ringlink_unix::{Access, ErrorKind, Listener, ListenerOptions, PeerPolicy};

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

#[test]
fn another_user_is_refused_by_file_mode_and_by_peer_policy() {
    if !is_root() {
        eprintln!(
            "SKIPPED another_user_is_refused_by_file_mode_and_by_peer_policy: switching to uid 65534 needs root"
        );
        return;
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

    // World-accessible socket, but the same-user policy: refused at accept.
    let sock = tmp.sock("policy");
    let listener = Listener::bind(
        &sock,
        ListenerOptions::new()
            .access(Access::Everyone)
            .peer_policy(PeerPolicy::SameUser),
    )
    .unwrap();
    let child = TestChild::spawn(CHILD, &["uid-connect", sock.to_str().unwrap(), "65534"]);
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
            .peer_policy(PeerPolicy::Uids(vec![65534])),
    )
    .unwrap();
    let child = TestChild::spawn(CHILD, &["uid-connect", sock.to_str().unwrap(), "65534"]);
    let stream = listener.accept_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(stream.peer_credentials().unwrap().uid, 65534);
    std::io::Write::write_all(&mut &stream, b"hello").unwrap();
    let line = child.line("connect result", Duration::from_secs(20));
    assert_eq!(line, "data");
}
