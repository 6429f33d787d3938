//! The Windows transports, all over named pipes, each one implementation of
//! [`crate::workload::Transport`]; on Windows this module is `crate::transports`.
//!
//! ringlink's own first (its blocking `Stream` under threads, its tokio `Stream` under
//! tokio tasks; its shared memory, negotiated over a pipe, under threads and under
//! tokio tasks), then the peers a Windows user would otherwise pick, each under the
//! driver its users use: std under threads (a `std::fs::File` on each end; std has no
//! pipe server, so the server's pipes come from `CreateNamedPipeW`), tokio's
//! `named_pipe` and interprocess's local sockets under tokio tasks. Every row's like is
//! the peer under the same driver (see [`crate::report::likes`]).
//!
//! A run hands every transport a scratch path; [`pipe_name`] turns it into the pipe
//! `\\.\pipe\<path>`, so two rows never share a pipe.

// tokio's driver is the same on every platform: one file, compiled here as on Unix.
#[path = "../transports/async_driven.rs"]
pub mod async_driven;
pub mod interprocess_pipe;
pub mod ringlink_pipe;
pub mod ringlink_shm;
pub mod std_pipe;
pub mod sys;
pub mod tokio_pipe;

use std::path::Path;

use crate::names::Name;
use crate::workload::Transport;

use async_driven::AsyncDriven;

static RINGLINK_PIPE: ringlink_pipe::RinglinkPipe = ringlink_pipe::RinglinkPipe;
static RINGLINK_SHM: ringlink_shm::RinglinkShm = ringlink_shm::RinglinkShm;
static RINGLINK_SHM_TOKIO: AsyncDriven<ringlink_shm::RinglinkShmAsync> = AsyncDriven::new();
static STD: std_pipe::StdPipe = std_pipe::StdPipe;
static TOKIO: AsyncDriven<tokio_pipe::TokioPipe> = AsyncDriven::new();
static INTERPROCESS: AsyncDriven<interprocess_pipe::InterprocessPipe> = AsyncDriven::new();

/// The socket transports, in table order (ringlink first, then the peers).
pub fn all() -> Vec<&'static dyn Transport> {
    vec![
        &RINGLINK_PIPE,
        &RINGLINK_SHM,
        &RINGLINK_SHM_TOKIO,
        &STD,
        &TOKIO,
        &INTERPROCESS,
    ]
}

/// Transports measured only when asked for by name: none on Windows yet.
pub fn extras() -> Vec<&'static dyn Transport> {
    Vec::new()
}

/// The transport called `name`.
#[allow(dead_code)]
pub fn by_name(name: Name) -> Option<&'static dyn Transport> {
    all().into_iter().chain(extras()).find(|t| t.name() == name)
}

/// The pipe of a row's scratch path: `\\.\pipe\` and the path with its separators and
/// drive colon replaced, or the path itself when it is a pipe already.
pub fn pipe_name(addr: &Path) -> String {
    let text = addr.to_string_lossy();
    if text.starts_with(r"\\.\pipe\") {
        return text.into_owned();
    }
    let flat: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\\' | '/' | ':') {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!(r"\\.\pipe\{}", flat.trim_start_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_paths_become_distinct_local_pipes() {
        let a = pipe_name(Path::new(r"C:\users\me\Temp\ringlink-bench-7\0.sock"));
        let b = pipe_name(Path::new(r"C:\users\me\Temp\ringlink-bench-7\1.sock"));
        assert_eq!(a, r"\\.\pipe\C--users-me-Temp-ringlink-bench-7-0.sock");
        assert_ne!(a, b);
        assert_eq!(pipe_name(Path::new(&a)), a);
    }

    #[test]
    fn ringlink_comes_first_and_every_peer_has_one_driver() {
        let names: Vec<Name> = all().iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                Name::RinglinkPipe,
                Name::RinglinkShm,
                Name::RinglinkShmTokio,
                Name::Std,
                Name::Tokio,
                Name::Interprocess
            ]
        );
        for t in all().iter().skip(3) {
            assert_eq!(t.drivers(10).len(), 1, "{}", t.name());
        }
    }
}
