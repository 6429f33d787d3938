//! Pipe names: a plain name `"demo"` is the pipe `\\.\pipe\demo`, which is also the
//! name Qt's `QLocalServer::listen("demo")` uses, so Qt interop needs nothing special.
//!
//! ```
//! use ringlink_windows::Name;
//!
//! let name = Name::new("demo")?;
//! assert_eq!(name.as_str(), r"\\.\pipe\demo");
//! assert_eq!(Name::new(r"\\.\pipe\demo")?, name);
//! assert_eq!(Name::qt("demo")?, name);
//! # Ok::<(), ringlink_windows::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::sys;
use crate::{Error, ErrorKind, NameState};

/// The prefix of every local pipe name.
pub const PIPE_PREFIX: &str = r"\\.\pipe\";

/// Longest pipe name the system accepts, prefix included (in UTF-16 units).
pub const MAX_NAME_LEN: usize = 256;

/// Where a ringlink listener listens and a client connects: a local named pipe.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    /// `\\.\pipe\<rest>`, as given or built from a plain name.
    full: String,
}

impl Name {
    /// Resolves `name`: a name starting with `\\.\pipe\` (any case) is used as given,
    /// anything else is a plain name (see [`Name::private`]).
    pub fn new(name: &str) -> Result<Name, Error> {
        if has_pipe_prefix(name) {
            Name::from_path(name)
        } else {
            Name::private(name)
        }
    }

    /// A plain name: `\\.\pipe\<name>`. It must be non-empty and contain no `\`, NUL or other
    /// control character (a newline would break every listing of names).
    ///
    /// Pipe names live in one namespace shared by every user of the machine; what keeps
    /// them private is the pipe's access control list, which ringlink's
    /// [`Listener`](crate::Listener) sets to owner-only by default.
    pub fn private(name: &str) -> Result<Name, Error> {
        let why = if name.is_empty() {
            Some("the name is empty")
        } else if name.contains('\\') {
            Some(r"a plain name cannot contain '\' (give the full \\.\pipe\... name instead)")
        } else if name.contains('\0') {
            Some("the name contains a NUL character")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!("invalid ringlink name {name:?}: {why}"),
            ));
        }
        Name::checked(format!("{PIPE_PREFIX}{name}"))
    }

    /// A full local pipe name, `\\.\pipe\...`, used as given. Pipes on other machines
    /// (`\\host\pipe\...`) are refused: ringlink is local IPC, and its listeners reject
    /// remote clients.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Name, Error> {
        let path = path.as_ref();
        let Some(text) = path.to_str() else {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {}: not valid Unicode",
                    path.display()
                ),
            ));
        };
        if !has_pipe_prefix(text) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {text:?}: a pipe path must start with {PIPE_PREFIX}"
                ),
            ));
        }
        if text.len() == PIPE_PREFIX.len() || text.contains('\0') {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!("invalid ringlink name {text:?}: empty pipe name or a NUL character"),
            ));
        }
        Name::checked(text.to_string())
    }

    /// The name Qt's `QLocalServer::listen(name)` / `QLocalSocket::connectToServer(name)`
    /// use on Windows: `\\.\pipe\<name>`, or the name itself when it is a full pipe path.
    /// On Windows this is the same as [`Name::new`].
    pub fn qt(name: &str) -> Result<Name, Error> {
        Name::new(name)
    }

    /// Linux abstract names do not exist on Windows: always [`ErrorKind::Unsupported`].
    pub fn abstract_name(name: &str) -> Result<Name, Error> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("abstract socket name @{name} is not supported on Windows: use a plain name"),
        ))
    }

    /// The full pipe name, `\\.\pipe\...`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The full pipe name as a path (always `Some` on Windows; `None` is for Linux
    /// abstract names).
    pub fn path(&self) -> Option<&Path> {
        Some(Path::new(&self.full))
    }

    /// Always `false`: Windows has no abstract names.
    pub fn is_abstract(&self) -> bool {
        false
    }

    /// Where plain names live: the pipe namespace, `\\.\pipe\` (for parity with Unix,
    /// where this is the user's private directory).
    pub fn private_dir() -> Result<PathBuf, Error> {
        Ok(PathBuf::from(PIPE_PREFIX))
    }

    /// Whether a server is listening on this name, without connecting to it.
    ///
    /// A pipe disappears with its last server instance, so Windows never shows a stale
    /// name; the server's process id is not known without connecting (`pid: None`).
    pub fn state(&self) -> Result<NameState, Error> {
        match sys::pipe_exists(&self.wide()) {
            Ok(true) => Ok(NameState::Live { pid: None }),
            Ok(false) => Ok(NameState::Absent),
            Err(e) => Err(Error::os(e).with_message(format!("cannot probe {self}"))),
        }
    }

    /// The pipes of live ringlink listeners of this user (see [`Name::list_dir`]).
    pub fn list_private() -> Result<Vec<(String, Name)>, Error> {
        Name::list_dir(&Name::private_dir()?)
    }

    /// The pipes of live ringlink listeners of this user, as (label, name) pairs sorted
    /// by label. `dir` must be the pipe namespace `\\.\pipe\`, the only "directory"
    /// pipes have. A pipe counts as this user's ringlink name when its name guard (an
    /// owner-only kernel mutex) opens for this user.
    pub fn list_dir(dir: &Path) -> Result<Vec<(String, Name)>, Error> {
        let is_pipe_dir = dir
            .to_str()
            .is_some_and(|d| d.len() == PIPE_PREFIX.len() && has_pipe_prefix(d));
        if !is_pipe_dir {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "cannot list {}: on Windows names live in {PIPE_PREFIX} only",
                    dir.display()
                ),
            ));
        }
        let pipes = sys::list_pipes().map_err(|e| {
            let unsupported = matches!(e.raw_os_error(), Some(1 | 50 | 66));
            let err = Error::os(e);
            if unsupported {
                // ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED, ERROR_BAD_DEV_TYPE: the pipe
                // file system here (Wine) cannot be enumerated.
                err.with_kind(ErrorKind::Unsupported)
                    .with_message("this system cannot list named pipes (Wine cannot)")
            } else {
                err.with_message("cannot list the pipes of this machine")
            }
        })?;
        let mut names: Vec<(String, Name)> = pipes
            .into_iter()
            .filter_map(|label| {
                let name = Name::private(&label).ok()?;
                sys::mutex_exists(&sys::wide(&name.guard_name())).then_some((label, name))
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names.dedup_by(|a, b| a.0 == b.0);
        Ok(names)
    }

    /// The name as NUL-terminated UTF-16, for the Win32 calls.
    pub(crate) fn wide(&self) -> Vec<u16> {
        sys::wide(&self.full)
    }

    /// The name of the kernel mutex that guards this pipe name while a listener lives.
    ///
    /// Pipe names are case-insensitive and mutex names are not, so the name is folded
    /// to lower case; `\` (not allowed in mutex names) and `%` are escaped. `Global\`
    /// because pipe names are machine-wide, not per session. Very long names are hashed.
    pub(crate) fn guard_name(&self) -> String {
        let rest = &self.full[PIPE_PREFIX.len()..];
        let mut escaped = String::with_capacity(rest.len());
        for c in rest.chars().flat_map(char::to_lowercase) {
            match c {
                '\\' => escaped.push_str("%5c"),
                '%' => escaped.push_str("%25"),
                c => escaped.push(c),
            }
        }
        const PREFIX: &str = r"Global\ringlink-pipe-";
        if PREFIX.len() + escaped.len() <= 250 {
            format!("{PREFIX}{escaped}")
        } else {
            format!("{PREFIX}#{:016x}", fnv1a(escaped.as_bytes()))
        }
    }

    fn checked(full: String) -> Result<Name, Error> {
        if full.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "invalid ringlink name {full:?}: it contains a control character (such as a newline)"
                ),
            ));
        }
        let len = full.encode_utf16().count();
        if len > MAX_NAME_LEN {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "pipe name {full} is {len} characters long, but at most {MAX_NAME_LEN} are allowed; use a shorter name"
                ),
            ));
        }
        Ok(Name { full })
    }
}

fn has_pipe_prefix(name: &str) -> bool {
    name.len() >= PIPE_PREFIX.len()
        && name.is_char_boundary(PIPE_PREFIX.len())
        && name[..PIPE_PREFIX.len()].eq_ignore_ascii_case(PIPE_PREFIX)
}

/// FNV-1a: a stable 64-bit hash, so a long name always maps to the same guard.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

ringlink_host::impl_into_name!(Name);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_become_local_pipes() {
        assert_eq!(Name::new("demo").unwrap().as_str(), r"\\.\pipe\demo");
        assert_eq!(Name::new("a/b").unwrap().as_str(), r"\\.\pipe\a/b");
        assert_eq!(
            Name::new(r"\\.\PIPE\Demo").unwrap().as_str(),
            r"\\.\PIPE\Demo"
        );
        assert_eq!(Name::qt("demo").unwrap(), Name::new("demo").unwrap());
    }

    #[test]
    fn bad_names_are_refused_with_invalid_name() {
        for bad in [
            "",
            "a\\b",
            "a\0b",
            "a\nb",
            "\\\\.\\pipe\\x\ty",
            r"\\.\pipe\",
            r"\\host\pipe\x",
            r"C:\x",
        ] {
            let err = Name::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}");
        }
        let long = "x".repeat(MAX_NAME_LEN);
        let err = Name::new(&long).unwrap_err();
        assert!(err.to_string().contains("at most 256"), "{err}");
        assert!(Name::new(&"x".repeat(MAX_NAME_LEN - PIPE_PREFIX.len())).is_ok());
        assert_eq!(
            Name::abstract_name("x").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn live_names_are_probed() {
        let label = format!("ringlink-name-probe-{}", std::process::id());
        let name = Name::new(&label).unwrap();
        assert_eq!(name.state().unwrap(), NameState::Absent);
        let listener = crate::Listener::bind(&name, crate::ListenerOptions::new()).unwrap();
        assert_eq!(name.state().unwrap(), NameState::Live { pid: None });
        drop(listener);
        assert_eq!(name.state().unwrap(), NameState::Absent);
        assert_eq!(
            Name::list_dir(Path::new(r"C:\tmp")).unwrap_err().kind(),
            ErrorKind::InvalidName
        );
    }

    /// Wine cannot enumerate `\\.\pipe\`, so `cargo xtask wine` leaves this test out by
    /// name (and says so); on Windows proper a listing that fails is a failure.
    #[test]
    fn live_names_are_listed() {
        let label = format!("ringlink-name-list-{}", std::process::id());
        let name = Name::new(&label).unwrap();
        let listener = crate::Listener::bind(&name, crate::ListenerOptions::new()).unwrap();
        let listed = Name::list_private().unwrap();
        assert!(
            listed.iter().any(|(l, n)| *l == label && *n == name),
            "{listed:?}"
        );
        drop(listener);
        let listed = Name::list_private().unwrap();
        assert!(!listed.iter().any(|(l, _)| *l == label), "{listed:?}");
    }

    #[test]
    fn guard_names_fold_case_and_escape() {
        let a = Name::new("Demo").unwrap().guard_name();
        let b = Name::new(r"\\.\PIPE\dEMO").unwrap().guard_name();
        assert_eq!(a, b);
        assert_eq!(a, r"Global\ringlink-pipe-demo");
        let nested = Name::new(r"\\.\pipe\a\b%").unwrap().guard_name();
        assert_eq!(nested, r"Global\ringlink-pipe-a%5cb%25");
        let long = Name::new(&"y".repeat(240)).unwrap().guard_name();
        assert!(long.len() < 260 && long.contains('#'), "{long}");
        assert!(!long[7..].contains('\\'));
    }
}
