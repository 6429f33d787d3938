//! Who owns a filesystem name: the lock file that guards it, where that file lives, and the
//! removal of a socket its dead server left behind.
//!
//! A lock file is trusted only when it is what ringlink made: a regular file, owned by
//! this user, with exactly one name. It is opened with `O_NOFOLLOW | O_NONBLOCK |
//! O_NOCTTY`, so a symbolic link fails, and a FIFO or a device opens without waiting and is
//! refused by `fstat` before a byte is read or written. A file with a second hard link
//! might be any file of this user (`~/.profile`), so it is refused too: ringlink never
//! truncates, writes or removes a file it did not make.
//!
//! Where the lock lives depends on who can write to the socket's directory:
//!
//! | the socket's directory                                  | the lock file |
//! |---------------------------------------------------------|---------------|
//! | the private directory of plain names                    | `<socket>.lock` beside the socket |
//! | owned by this user, not writable by group or others     | `<socket>.lock` beside the socket |
//! | anything else: `/tmp` (Qt names), another user's, group-writable | `<private dir>/.lock/<hash of the socket path>` |
//!
//! In a directory others can write to, another user could plant a file at `<socket>.lock`
//! before ringlink creates it; the lock of such a name lives in this user's private
//! directory instead, where nobody else can create anything. Plain names can never be
//! `.lock` (they may not be empty or end in `.lock`), so that directory never collides
//! with a name or with a name's lock. The hash is FNV-1a of the socket's path with its
//! directory made canonical, the same in every build.
//!
//! The socket itself is removed only when it is a socket, owned by this user, and nothing
//! accepts on it (see [`reclaim_stale`]).

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::name::{check_private_dir, create_private_dir, lock_path_of};
use crate::sys;
use crate::{Error, ErrorKind, Name};

/// The directory, inside the private directory, holding the locks of names in shared places.
pub(crate) const SHARED_LOCKS: &str = ".lock";

/// Where the lock file of a filesystem name lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockPlace {
    /// The lock file.
    pub(crate) path: PathBuf,
    /// Set when the lock lives in ringlink's private directory: that directory and the
    /// locks directory inside it, created (mode `0700`) before the lock.
    private: Option<(PathBuf, PathBuf)>,
}

impl LockPlace {
    /// Where the lock of `name`, whose socket is at `path`, lives.
    pub(crate) fn of(name: &Name, path: &Path) -> Result<LockPlace, Error> {
        if name.private_dir_of().is_some() {
            return Ok(LockPlace {
                path: lock_path_of(path),
                private: None,
            });
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if only_this_user_writes(parent) {
            return Ok(LockPlace {
                path: lock_path_of(path),
                private: None,
            });
        }
        let dir = Name::private_dir()?;
        let locks = dir.join(SHARED_LOCKS);
        let canonical = fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        let key = canonical.join(path.file_name().unwrap_or_default());
        let file = format!("{:016x}", fnv1a(key.as_os_str().as_bytes()));
        Ok(LockPlace {
            path: locks.join(file),
            private: Some((dir, locks)),
        })
    }

    /// Creates the private directories the lock lives in, if it lives there.
    fn prepare(&self) -> Result<(), Error> {
        if let Some((dir, locks)) = &self.private {
            create_private_dir(dir)?;
            create_private_dir(locks)?;
        }
        Ok(())
    }
}

/// Whether nobody but this user (and root) can create files in `dir`.
fn only_this_user_writes(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == sys::euid() && m.mode() & 0o022 == 0)
}

/// 64-bit FNV-1a: a hash every build of ringlink computes alike (std's hashers may change).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// An exclusive `flock` on a name's lock file, holding the writer's pid.
#[derive(Debug)]
pub(crate) struct NameLock {
    file: File,
    path: PathBuf,
}

impl NameLock {
    /// Takes the lock of `name` without waiting, or explains who holds it or why the lock
    /// file cannot be trusted.
    pub(crate) fn acquire(place: &LockPlace, name: &Name) -> Result<NameLock, Error> {
        place.prepare()?;
        let path = &place.path;
        // A holder that is shutting down removes the file; a lock taken on a removed file
        // guards nothing, so check the file we locked is still the one at `path`.
        for _ in 0..32 {
            let fd = sys::open_lock_file(path, Some(0o600)).map_err(|e| open_error(e, path))?;
            let stat = sys::fstat(fd.as_fd()).map_err(Error::os)?;
            if stat.nlink == 0 && stat.is_regular() && stat.uid == sys::euid() {
                continue; // removed by its holder between our open and fstat
            }
            check_trusted(&stat, path)?;
            let locked = sys::try_lock_exclusive(fd.as_fd()).map_err(|e| {
                Error::os(e).with_message(format!("cannot lock {}", path.display()))
            })?;
            let file = File::from(fd);
            if !locked {
                let holder = match read_pid(&file) {
                    Some(pid) => format!("pid {pid}"),
                    None => "pid not known yet".to_string(),
                };
                return Err(Error::new(
                    ErrorKind::AddressInUse,
                    format!(
                        "ringlink name {name} is in use by a live server ({holder}); stop that server or pick another name"
                    ),
                ));
            }
            match fs::symlink_metadata(path) {
                Ok(m) if (m.dev(), m.ino()) == stat.id => {
                    return Ok(NameLock {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                _ => continue,
            }
        }
        Err(Error::new(
            ErrorKind::AddressInUse,
            format!(
                "the lock file {} keeps being replaced by another process",
                path.display()
            ),
        ))
    }

    /// Records this process as the holder (best effort: the lock itself is what counts).
    /// The file was checked in `acquire`: a regular file of ours with one name.
    pub(crate) fn write_pid(&self) {
        let text = format!("{}\n", sys::pid());
        let _ = self.file.set_len(0);
        let _ = self.file.write_all_at(text.as_bytes(), 0);
    }
}

impl Drop for NameLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock; a process that opened it just
        // before notices the replacement (see `acquire`).
        if let (Ok(ours), Ok(meta)) = (
            sys::fstat(self.file.as_fd()),
            fs::symlink_metadata(&self.path),
        ) {
            if (meta.dev(), meta.ino()) == ours.id {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Refuses a lock file that ringlink did not make: not a regular file, another user's, or
/// with more than one name.
fn check_trusted(stat: &sys::FileStat, path: &Path) -> Result<(), Error> {
    let euid = sys::euid();
    let why = if !stat.is_regular() {
        format!("it is {}, not a regular file", file_type(stat.mode))
    } else if stat.uid != euid {
        format!(
            "it is owned by uid {}, not by this user (uid {euid})",
            stat.uid
        )
    } else if stat.nlink != 1 {
        format!(
            "it has {} hard links, so it may be another file of yours",
            stat.nlink
        )
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::AccessDenied,
        format!(
            "refusing to use the lock file {}: {why}; someone else may have planted it, and \
             ringlink never reads, writes or removes such a file: remove it or pick another name",
            path.display()
        ),
    ))
}

fn file_type(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFDIR => "a directory",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "not a regular file",
    }
}

/// The pid at the start of a trusted lock file (at most 32 bytes are read).
fn read_pid(file: &File) -> Option<i32> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// The pid recorded in the lock file of `name`, if the file exists and can be trusted.
/// Never blocks and never follows a link.
pub(crate) fn lock_holder_pid(name: &Name) -> Option<i32> {
    let place = LockPlace::of(name, name.path()?).ok()?;
    if let Some((dir, locks)) = &place.private {
        check_private_dir(dir).ok()?;
        check_private_dir(locks).ok()?;
    }
    let fd = sys::open_lock_file(&place.path, None).ok()?;
    let stat = sys::fstat(fd.as_fd()).ok()?;
    check_trusted(&stat, &place.path).ok()?;
    read_pid(&File::from(fd))
}

/// Whether a bind could use the lock of `name`: nothing at its lock path yet, or a lock
/// file ringlink made (see [`check_trusted`]). Looks with `lstat` only, so it never opens,
/// follows or blocks on what it finds; `Name::state` uses it to agree with bind.
pub(crate) fn lock_usable(name: &Name) -> bool {
    let Some(path) = name.path() else {
        return true;
    };
    let Ok(place) = LockPlace::of(name, path) else {
        return false;
    };
    if let Some((dir, locks)) = &place.private {
        for dir in [dir, locks] {
            match fs::symlink_metadata(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
                _ if check_private_dir(dir).is_err() => return false,
                _ => {}
            }
        }
    }
    match fs::symlink_metadata(&place.path) {
        Ok(m) => m.file_type().is_file() && m.uid() == sys::euid() && m.nlink() == 1,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

fn open_error(e: io::Error, path: &Path) -> Error {
    let why = match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symbolic link".to_string(),
        Some(libc::EACCES | libc::EPERM) => "it belongs to another user".to_string(),
        _ => "it cannot be opened".to_string(),
    };
    let err = Error::os(e).with_message(format!(
        "cannot use the lock file {}: {why}; ringlink never follows a link or opens another user's lock",
        path.display()
    ));
    if err.raw_os_error() == Some(libc::ELOOP) {
        err.with_kind(ErrorKind::AccessDenied)
    } else {
        err
    }
}

/// With the lock held, removes a socket left at `path` by a dead ringlink server of this
/// user. A file that is not a socket, another user's socket, or a socket something still
/// accepts on, is left alone and the name refused.
pub(crate) fn reclaim_stale(path: &Path, name: &Name) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::os(e).with_message(format!("cannot inspect {name}"))),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AddressInUse,
            format!(
                "{name} exists and is not a socket; ringlink will not replace it: remove it or pick another name"
            ),
        ));
    }
    let euid = sys::euid();
    let probe = sys::socket(true).map_err(Error::os)?;
    let addr = name.sockaddr()?;
    match sys::connect(probe.as_raw_fd(), &addr) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) && meta.uid() != euid => {
            Err(Error::new(
                ErrorKind::AccessDenied,
                format!(
                    "{name} is a dead socket of uid {}, not of this user (uid {euid}); ringlink never \
                     removes another user's file: have it removed, or pick another name",
                    meta.uid()
                ),
            ))
        }
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Remove exactly the socket inspected above, not one put there since.
            match fs::symlink_metadata(path) {
                Ok(now) if (now.dev(), now.ino()) == (meta.dev(), meta.ino()) => {}
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::AddressInUse,
                        format!("{name} was replaced while ringlink was reclaiming it"),
                    ));
                }
                Err(_) => return Ok(()),
            }
            match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => {
                    Err(Error::os(e).with_message(format!("cannot remove the stale socket {name}")))
                }
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => Err(Error::os(e)
            .with_message(format!(
                "{name} is a socket this user may not use; ringlink will not replace it"
            ))),
        Ok(()) | Err(_) if meta.uid() != euid => Err(Error::new(
            ErrorKind::AddressInUse,
            format!(
                "a server of uid {} is listening at {name}; stop it or pick another name",
                meta.uid()
            ),
        )),
        Ok(()) | Err(_) => Err(Error::new(
            ErrorKind::AddressInUse,
            format!(
                "a server that does not hold ringlink's lock (not ringlink, or Qt) is listening at {name}; stop it or pick another name"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors: the lock of a shared name must not move
        // between builds.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn plain_names_lock_beside_the_socket_and_shared_paths_in_the_private_dir() {
        let name = Name::new("demo").unwrap();
        let place = LockPlace::of(&name, name.path().unwrap()).unwrap();
        assert_eq!(
            place.path,
            Name::private_dir().unwrap().join("demo.lock"),
            "private dir"
        );
        let shared = Name::from_path("/tmp/ringlink-lock-test.sock").unwrap();
        let place = LockPlace::of(&shared, shared.path().unwrap()).unwrap();
        assert!(
            place
                .path
                .starts_with(Name::private_dir().unwrap().join(SHARED_LOCKS)),
            "{place:?}"
        );
        assert_eq!(
            LockPlace::of(&shared, shared.path().unwrap()).unwrap(),
            place,
            "stable"
        );
        assert_ne!(
            LockPlace::of(
                &Name::from_path("/tmp/other.sock").unwrap(),
                Path::new("/tmp/other.sock")
            )
            .unwrap()
            .path,
            place.path
        );
    }
}
