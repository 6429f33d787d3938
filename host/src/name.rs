//! What every adapter's names share: [`NameState`], what probing a name finds, and
//! [`impl_into_name!`], the `IntoName` conversions (`"demo"`, a path or a `Name`) that
//! `bind` and `connect` take.

use std::fmt;

/// Whether a server lives at a name, as `Name::state` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameState {
    /// A server accepts connections; `pid` is its process id when known (on Unix, the
    /// holder ringlink recorded in the name's lock file; never on Windows).
    Live {
        /// The server's process id, when known.
        pid: Option<u32>,
    },
    /// A name of this user left behind by a dead server; the next bind reclaims it. Named
    /// pipes vanish with their server, so Windows never reports this.
    Stale,
    /// Nothing exists at the name.
    Absent,
    /// Something ringlink will not replace holds the name: on Unix a file that is not a
    /// socket (a regular file, a FIFO, a symbolic link), a dead socket of another user, or
    /// a lock file ringlink did not make. `Listener::bind` refuses the name until it is
    /// removed. Windows never reports this (a pipe name holds nothing but pipes).
    Occupied,
}

impl fmt::Display for NameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameState::Live { pid: Some(pid) } => write!(f, "live (pid {pid})"),
            NameState::Live { pid: None } => f.write_str("live"),
            NameState::Stale => f.write_str("stale"),
            NameState::Absent => f.write_str("absent"),
            NameState::Occupied => f.write_str("occupied"),
        }
    }
}

/// Defines an adapter's `IntoName` trait and its conversions, the same on every OS:
/// `Name` and `&Name` as they are, strings through `Name::new`, paths through
/// `Name::from_path`. The adapter's `Name` must have both constructors, returning
/// `Result<Name, ringlink_host::Error>`.
#[macro_export]
macro_rules! impl_into_name {
    ($name:ident) => {
        /// Conversion into a [`Name`], so `bind` and `connect` take `"demo"`, a `Path` or a
        /// `Name`.
        ///
        /// Strings go through [`Name::new`], paths through [`Name::from_path`].
        pub trait IntoName {
            /// Resolves `self` into a [`Name`].
            fn into_name(self) -> Result<$name, $crate::Error>;
        }

        impl IntoName for $name {
            fn into_name(self) -> Result<$name, $crate::Error> {
                Ok(self)
            }
        }

        impl IntoName for &$name {
            fn into_name(self) -> Result<$name, $crate::Error> {
                Ok(self.clone())
            }
        }

        $crate::impl_into_name!(@via $name::new(str): &str, String, &String);
        $crate::impl_into_name!(@via $name::from_path(::std::path::Path):
            &::std::path::Path, ::std::path::PathBuf, &::std::path::PathBuf);
    };
    (@via $name:ident::$ctor:ident($target:ty): $($ty:ty),*) => {
        $(
            impl IntoName for $ty {
                fn into_name(self) -> Result<$name, $crate::Error> {
                    $name::$ctor(::core::convert::AsRef::<$target>::as_ref(&self))
                }
            }
        )*
    };
}
