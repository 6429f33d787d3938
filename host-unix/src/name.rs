//! Names of ringlink servers and where they live on the filesystem.
//!
//! | you write                       | the socket is                                     |
//! |---------------------------------|---------------------------------------------------|
//! | `Name::new("demo")`             | `$XDG_RUNTIME_DIR/ringlink/demo`, else `$TMPDIR/ringlink-<uid>/demo` (`/tmp` without `TMPDIR`) |
//! | `Name::new("/run/app/sock")`    | `/run/app/sock`, as given (any name with a `/`)   |
//! | `Name::qt("demo")`              | `$TMPDIR/demo` or `/tmp/demo`, where Qt's `QLocalServer::listen("demo")` puts it |
//! | `Name::abstract_name("demo")`   | the Linux abstract socket `@demo` (no file at all) |
//!
//! Plain names live in a per-user directory created with mode `0700`; ringlink refuses
//! to use that directory when another user owns it or when it is group or world
//! writable, so nobody else can reach, replace or impersonate the socket. A subdirectory
//! of `$XDG_RUNTIME_DIR` (rather than the runtime directory itself) keeps each name and
//! its lock file together and lets `ringlink ls` list exactly the ringlink names.
//!
//! ```
//! use ringlink_unix::Name;
//!
//! let name = Name::new("/tmp/ringlink-doc.sock").unwrap();
//! assert_eq!(name.path().unwrap().to_str(), Some("/tmp/ringlink-doc.sock"));
//! assert!(Name::new("").is_err());
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::sys;
use crate::{Error, ErrorKind, NameState};

/// Where a ringlink server is reached: resolved from a plain name, a path, a Qt name
/// or a Linux abstract name (see [`Name::new`] for the rules).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    inner: Inner,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Inner {
    /// A plain name in the user's private directory `dir`.
    Private { dir: PathBuf, path: PathBuf },
    /// A filesystem path used as given.
    Path(PathBuf),
    /// A Linux abstract socket name (without the leading NUL).
    Abstract(Vec<u8>),
}

/// Suffix of the lock file that sits next to every filesystem socket.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

impl Name {
    /// Resolves `name`: a name containing `/` is a path used as given, anything else a
    /// plain name in the user's private directory (see [`Name::private`]).
    pub fn new(name: &str) -> Result<Name, Error> {
        if name.contains('/') {
            Name::from_path(name)
        } else {
            Name::private(name)
        }
    }

    /// A plain name in the user's private directory ([`Name::private_dir`]).
    ///
    /// The name must be non-empty, contain no `/`, NUL or other control character (a
    /// newline would break every listing of names), not be `.` or `..`, and not end in
    /// `.lock` (those are ringlink's lock files).
    pub fn private(name: &str) -> Result<Name, Error> {
        check_plain(name)?;
        if name.ends_with(LOCK_SUFFIX) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {name:?}: names ending in {LOCK_SUFFIX:?} are reserved for lock files"
                ),
            ));
        }
        let dir = Name::private_dir()?;
        let path = dir.join(name);
        check_len(&path)?;
        Ok(Name {
            inner: Inner::Private { dir, path },
        })
    }

    /// A filesystem path, used exactly as given. It may not contain NUL or another control
    /// character.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Name, Error> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "invalid ringlink name: the path is empty",
            ));
        }
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {}: the path contains a NUL byte",
                    path.display()
                ),
            ));
        }
        if has_control(&String::from_utf8_lossy(bytes)) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {:?}: the path contains a control character (such as a newline)",
                    path.as_os_str()
                ),
            ));
        }
        check_len(path)?;
        Ok(Name {
            inner: Inner::Path(path.to_path_buf()),
        })
    }

    /// The name Qt's `QLocalServer::listen(name)` / `QLocalSocket::connectToServer(name)`
    /// use: a name starting with `/` as given, anything else in `QDir::tempPath()`
    /// (`$TMPDIR`, else `/tmp`). Use it to talk to a Qt application in raw byte mode.
    ///
    /// That directory is shared by all users, which is why this is opt-in: the socket itself
    /// is still owner-only unless the listener widens its [`Access`](crate::Access), its lock
    /// file lives in this user's [private directory](Name::private_dir) where nobody else can
    /// plant one, and a client refuses a server of another user there unless it opts out
    /// ([`ConnectOptions::verify_server_user`](crate::ConnectOptions::verify_server_user)).
    pub fn qt(name: &str) -> Result<Name, Error> {
        if name.starts_with('/') {
            return Name::from_path(name);
        }
        check_plain(name)?;
        Name::from_path(temp_dir().join(name))
    }

    /// A Linux abstract socket name (`@name` in `ss -x`): no file, gone when the server
    /// exits, reachable by every process in the network namespace. Listeners on an abstract
    /// name therefore enforce their peer policy (same user by default) at accept.
    ///
    /// Only on Linux and Android; elsewhere this fails with [`ErrorKind::Unsupported`].
    pub fn abstract_name(name: &str) -> Result<Name, Error> {
        if name.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "invalid ringlink name: the abstract name is empty",
            ));
        }
        if has_control(name) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name @{name:?}: the abstract name contains a NUL or another control character (such as a newline)"
                ),
            ));
        }
        if !cfg!(any(target_os = "linux", target_os = "android")) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "abstract socket name @{name} is not supported on this platform: use a plain name"
                ),
            ));
        }
        if name.len() + 1 > sys::SUN_PATH_MAX {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "abstract name @{name} is {} bytes long; at most {} fit in a socket address",
                    name.len(),
                    sys::SUN_PATH_MAX - 1
                ),
            ));
        }
        Ok(Name {
            inner: Inner::Abstract(name.as_bytes().to_vec()),
        })
    }

    /// The directory that holds the sockets of plain names for this user:
    /// `$XDG_RUNTIME_DIR/ringlink` when `XDG_RUNTIME_DIR` is set to an absolute path,
    /// else `$TMPDIR/ringlink-<uid>` (`/tmp/ringlink-<uid>` without `TMPDIR`).
    pub fn private_dir() -> Result<PathBuf, Error> {
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            let runtime = PathBuf::from(runtime);
            if runtime.is_absolute() {
                return Ok(runtime.join("ringlink"));
            }
        }
        let mut dir = OsString::from("ringlink-");
        dir.push(sys::euid().to_string());
        Ok(temp_dir().join(dir))
    }

    /// The socket's filesystem path, or `None` for an abstract name.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Private { path, .. } | Inner::Path(path) => Some(path),
            Inner::Abstract(_) => None,
        }
    }

    /// Whether this is a Linux abstract name.
    pub fn is_abstract(&self) -> bool {
        matches!(self.inner, Inner::Abstract(_))
    }

    /// The private directory, when this is a plain name.
    pub(crate) fn private_dir_of(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Private { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// The socket address for `bind`/`connect`.
    pub(crate) fn sockaddr(&self) -> Result<sys::SockAddr, Error> {
        let res = match &self.inner {
            Inner::Private { path, .. } | Inner::Path(path) => sys::SockAddr::path(path),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Inner::Abstract(name) => sys::SockAddr::abstract_name(name),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Inner::Abstract(_) => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        };
        res.map_err(|e| {
            Error::os(e).with_message(format!("cannot make a socket address of {self}"))
        })
    }

    /// Creates the private directory (mode `0700`) if needed, then checks it.
    pub(crate) fn prepare_for_bind(&self) -> Result<(), Error> {
        if let Some(dir) = self.private_dir_of() {
            create_private_dir(dir)?;
        }
        Ok(())
    }

    /// Checks the private directory before connecting, so a client never talks to a
    /// socket that another user could have planted. A missing directory means no server.
    pub(crate) fn check_for_connect(&self) -> Result<(), Error> {
        if let Some(dir) = self.private_dir_of() {
            check_private_dir(dir)?;
        }
        Ok(())
    }
}

impl Name {
    /// Looks whether a server lives at this name, without disturbing it: a connection
    /// attempt that is closed at once (the server may see a connection that sends nothing).
    ///
    /// It agrees with [`Listener::bind`](crate::Listener::bind): [`NameState::Stale`] only
    /// for a socket the next bind reclaims, [`NameState::Occupied`] for what bind refuses.
    /// It never blocks on, follows or writes anything at the name or its lock file.
    pub fn state(&self) -> Result<NameState, Error> {
        let state = self.socket_state()?;
        let free = matches!(state, NameState::Absent | NameState::Stale);
        if free && !crate::lock::lock_usable(self) {
            return Ok(NameState::Occupied);
        }
        Ok(state)
    }

    /// What [`state`](Self::state) finds at the socket itself.
    fn socket_state(&self) -> Result<NameState, Error> {
        let addr = self.sockaddr()?;
        let mut owner = None;
        if let Some(path) = self.path() {
            use std::os::unix::fs::FileTypeExt;
            match fs::symlink_metadata(path) {
                Ok(meta) if !meta.file_type().is_socket() => return Ok(NameState::Occupied),
                Ok(meta) => owner = Some(meta.uid()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    return Ok(NameState::Absent);
                }
                Err(e) => return Err(Error::os(e).with_message(format!("cannot probe {self}"))),
            }
        }
        let probe = sys::socket(true).map_err(Error::os)?;
        let live = || {
            Ok(NameState::Live {
                pid: crate::lock::lock_holder_pid(self).and_then(|p| u32::try_from(p).ok()),
            })
        };
        match sys::connect(std::os::fd::AsRawFd::as_raw_fd(&probe), &addr) {
            Ok(()) => live(),
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINPROGRESS) => live(),
                Some(libc::ECONNREFUSED) if owner.is_some_and(|uid| uid != sys::euid()) => {
                    Ok(NameState::Occupied)
                }
                Some(libc::ECONNREFUSED) => Ok(NameState::Stale),
                Some(libc::ENOENT | libc::ENOTDIR) => Ok(NameState::Absent),
                _ => Err(Error::os(e).with_message(format!("cannot probe {self}"))),
            },
        }
    }

    /// The plain names in this user's [private directory](Name::private_dir), sorted,
    /// each with the file name it was found under. A missing directory lists nothing.
    pub fn list_private() -> Result<Vec<(String, Name)>, Error> {
        Name::list_dir(&Name::private_dir()?)
    }

    /// The sockets in `dir` owned by this user, as names (Qt names live in the temp dir).
    pub fn list_dir(dir: &Path) -> Result<Vec<(String, Name)>, Error> {
        use std::os::unix::fs::FileTypeExt;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::os(e).with_message(format!("cannot list {}", dir.display())));
            }
        };
        let euid = sys::euid();
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.file_type().is_socket() || meta.uid() != euid {
                continue;
            }
            let label = entry.file_name().to_string_lossy().into_owned();
            if let Ok(name) = Name::from_path(entry.path()) {
                names.push((label, name));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(names)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Private { path, .. } | Inner::Path(path) => write!(f, "{}", path.display()),
            Inner::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

ringlink_host::impl_into_name!(Name);

/// `QDir::tempPath()` on Unix: `$TMPDIR` (cleaned of trailing slashes), else `/tmp`.
fn temp_dir() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(t) if !t.is_empty() => {
            let mut bytes = t.into_vec();
            while bytes.len() > 1 && bytes.ends_with(b"/") {
                bytes.pop();
            }
            PathBuf::from(OsString::from_vec(bytes))
        }
        _ => PathBuf::from("/tmp"),
    }
}

pub(crate) fn lock_path_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(LOCK_SUFFIX);
    PathBuf::from(s)
}

fn check_plain(name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "the name is empty"
    } else if name.contains('/') {
        "a plain name cannot contain '/'"
    } else if name.contains('\0') {
        "the name contains a NUL byte"
    } else if has_control(name) {
        "the name contains a control character (such as a newline)"
    } else if name == "." || name == ".." {
        "'.' and '..' are not names"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::InvalidName,
        format!("invalid ringlink name {name:?}: {why}"),
    ))
}

/// Whether `text` holds a control character (C0, DEL or C1: a newline, an escape, a
/// NUL), which no name may hold: names appear in listings and logs, one per line.
fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn check_len(path: &Path) -> Result<(), Error> {
    let len = path.as_os_str().len();
    if len > sys::SUN_PATH_MAX {
        return Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "socket path {} is {len} bytes long, but at most {} fit in a Unix socket address \
                 (sun_path); use a shorter name or directory",
                path.display(),
                sys::SUN_PATH_MAX
            ),
        ));
    }
    Ok(())
}

/// Creates `dir` with mode `0700` unless it exists, then checks it is private (see
/// [`check_private_dir`]).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::os(e).with_message(format!(
                "cannot create ringlink's private directory {}",
                dir.display()
            )));
        }
    }
    check_private_dir(dir)
}

/// Refuses a private directory that is a symlink, not a directory, owned by another
/// user, or writable by group or others.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::os(e).with_message(format!(
                "no ringlink server found: the directory {} does not exist yet (no server has run as this user)",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Error::os(e).with_message(format!(
                "cannot inspect ringlink's directory {}",
                dir.display()
            )));
        }
    };
    let euid = sys::euid();
    let problem = if !meta.file_type().is_dir() {
        Some("it is not a directory (or is a symbolic link)".to_string())
    } else if meta.uid() != euid {
        Some(format!(
            "it is owned by uid {}, not by this user (uid {euid})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "it is writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "refusing to use {} for ringlink names: {why}; remove it, or point XDG_RUNTIME_DIR or TMPDIR elsewhere",
                dir.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_live_in_the_private_dir() {
        let name = Name::new("demo").unwrap();
        let dir = Name::private_dir().unwrap();
        assert_eq!(name.path().unwrap(), dir.join("demo"));
    }

    #[test]
    fn names_with_a_slash_are_paths() {
        let name = Name::new("./rel/sock").unwrap();
        assert_eq!(name.path().unwrap(), Path::new("./rel/sock"));
        assert!(name.private_dir_of().is_none());
    }

    #[test]
    fn bad_names_are_refused_with_invalid_name() {
        for bad in [
            "",
            ".",
            "..",
            "a\0b",
            "x.lock",
            "a\nb",
            "tab\there",
            "del\u{7f}",
        ] {
            let err = Name::private(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}");
        }
        assert_eq!(Name::qt("").unwrap_err().kind(), ErrorKind::InvalidName);
        assert_eq!(Name::qt("a\nb").unwrap_err().kind(), ErrorKind::InvalidName);
        let err = Name::new("/tmp/a\nb").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName);
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn listing_never_yields_a_name_with_a_control_character() {
        let dir = std::env::temp_dir().join(format!("ringlink-name-ls-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let _plain = std::os::unix::net::UnixListener::bind(dir.join("ok")).unwrap();
        let _planted = std::os::unix::net::UnixListener::bind(dir.join("evil\nlive")).unwrap();
        let listed = Name::list_dir(&dir).unwrap();
        let labels: Vec<&str> = listed.iter().map(|(label, _)| label.as_str()).collect();
        assert_eq!(labels, ["ok"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_long_paths_are_refused_before_any_syscall() {
        let long = format!("/tmp/{}", "x".repeat(sys::SUN_PATH_MAX));
        let err = Name::new(&long).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName);
        assert!(err.to_string().contains("sun_path"), "{err}");
        let fits = format!("/{}", "x".repeat(sys::SUN_PATH_MAX - 1));
        assert!(Name::new(&fits).is_ok());
    }

    #[test]
    fn qt_names_go_to_the_temp_dir() {
        let name = Name::qt("demo").unwrap();
        assert_eq!(name.path().unwrap(), temp_dir().join("demo"));
        assert_eq!(
            Name::qt("/abs/sock").unwrap().path().unwrap(),
            Path::new("/abs/sock")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_names_display_with_an_at() {
        let name = Name::abstract_name("demo").unwrap();
        assert!(name.is_abstract());
        assert_eq!(name.to_string(), "@demo");
        assert!(name.path().is_none());
        assert!(Name::abstract_name(&"x".repeat(sys::SUN_PATH_MAX)).is_err());
    }

    #[test]
    fn foreign_or_open_directories_are_refused() {
        let base = std::env::temp_dir().join(format!("ringlink-name-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::DirBuilder::new().mode(0o700).create(&base).unwrap();
        check_private_dir(&base).unwrap();
        fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let err = check_private_dir(&base).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AccessDenied);
        assert!(
            err.to_string().contains("writable by group or others"),
            "{err}"
        );
        fs::remove_dir_all(&base).unwrap();
        let err = check_private_dir(&base).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServerNotFound);
    }
}
