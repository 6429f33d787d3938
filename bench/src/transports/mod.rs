//! Every transport the benchmark measures, each one implementation of
//! [`crate::workload::Transport`].
//!
//! ringlink's own transports come first (raw and framed Unix sockets, shared memory);
//! the peers follow.

pub mod async_driven;
#[cfg(feature = "iceoryx2")]
pub mod iceoryx2_ipc;
pub mod interprocess_uds;
pub mod qt;
pub mod ringlink_framed;
#[cfg(target_os = "linux")]
pub mod ringlink_shm;
pub mod ringlink_uds;
pub mod std_uds;
pub mod tokio_uds;

use crate::names::Name;
use crate::workload::Transport;

use async_driven::AsyncDriven;

static RINGLINK_UDS: ringlink_uds::RinglinkUds = ringlink_uds::RinglinkUds;
static RINGLINK_FRAMED: ringlink_framed::RinglinkFramed = ringlink_framed::RinglinkFramed;
#[cfg(target_os = "linux")]
static RINGLINK_SHM: ringlink_shm::RinglinkShmThreads<false> = ringlink_shm::RinglinkShmThreads;
#[cfg(target_os = "linux")]
static RINGLINK_SHM_TOKIO: AsyncDriven<ringlink_shm::RinglinkShmAsync> = AsyncDriven::new();
#[cfg(target_os = "linux")]
static RINGLINK_SHM_COPY: ringlink_shm::RinglinkShmThreads<true> = ringlink_shm::RinglinkShmThreads;
static STD: std_uds::StdUds = std_uds::StdUds;
static STD_EPOLL: std_uds::StdEpoll = std_uds::StdEpoll;
static TOKIO: AsyncDriven<tokio_uds::TokioUds> = AsyncDriven::new();
static INTERPROCESS: AsyncDriven<interprocess_uds::InterprocessUds> = AsyncDriven::new();
static QT: qt::Qt = qt::Qt;
#[cfg(feature = "iceoryx2")]
static ICEORYX2: iceoryx2_ipc::Iceoryx2 = iceoryx2_ipc::Iceoryx2;
#[cfg(not(feature = "iceoryx2"))]
static ICEORYX2: Iceoryx2Absent = Iceoryx2Absent;

/// The socket transports, in table order (ringlink first, then the peers).
pub fn all() -> Vec<&'static dyn Transport> {
    vec![
        &RINGLINK_UDS,
        &RINGLINK_FRAMED,
        // The shared-memory transport exists on Linux only.
        #[cfg(target_os = "linux")]
        &RINGLINK_SHM,
        #[cfg(target_os = "linux")]
        &RINGLINK_SHM_TOKIO,
        &STD,
        &STD_EPOLL,
        &TOKIO,
        &INTERPROCESS,
        &ICEORYX2,
        &QT,
    ]
}

/// Transports measured only when asked for by name (`--transports ringlink-shm-copy`):
/// shared memory moved through a buffer (`Read`/`Write`).
pub fn extras() -> Vec<&'static dyn Transport> {
    vec![
        #[cfg(target_os = "linux")]
        &RINGLINK_SHM_COPY,
    ]
}

/// The transport called `name`.
pub fn by_name(name: Name) -> Option<&'static dyn Transport> {
    all().into_iter().chain(extras()).find(|t| t.name() == name)
}

/// iceoryx2's rows: both drivers on pingPong with 1 and 10 connections and on every
/// dataExchange row (1-10 connections); none beyond.
pub fn iceoryx2_drivers(
    models: &[crate::names::Driver],
    connections: usize,
) -> Vec<crate::names::Driver> {
    if connections <= 10 {
        models.to_vec()
    } else {
        Vec::new()
    }
}

/// iceoryx2's rows in a harness built without the `iceoryx2` feature: not run, and why.
#[cfg(not(feature = "iceoryx2"))]
pub struct Iceoryx2Absent;

#[cfg(not(feature = "iceoryx2"))]
impl Transport for Iceoryx2Absent {
    fn name(&self) -> Name {
        Name::Iceoryx2
    }

    fn models(&self) -> &'static [crate::names::Driver] {
        &[
            crate::names::Driver::Spinning,
            crate::names::Driver::EventDriven,
        ]
    }

    fn drivers(&self, connections: usize) -> Vec<crate::names::Driver> {
        iceoryx2_drivers(self.models(), connections)
    }

    fn unsupported(&self, _driver: crate::names::Driver, _connections: usize) -> Option<String> {
        Some("built without the iceoryx2 feature (cargo xtask bench turns it on)".into())
    }

    fn serve(
        &self,
        _addr: &std::path::Path,
        _plan: crate::workload::EchoPlan,
        _limit: crate::workload::Limit<'_>,
        _ready: &mut dyn FnMut(),
    ) -> Result<(), crate::workload::BenchError> {
        Err(crate::workload::BenchError::Setup(
            "iceoryx2 is not built in".into(),
        ))
    }

    fn run_client(
        &self,
        _addr: &std::path::Path,
        _plan: crate::workload::ClientPlan,
        _limit: crate::workload::Limit<'_>,
    ) -> Result<crate::workload::ClientOutcome, crate::workload::BenchError> {
        Err(crate::workload::BenchError::Setup(
            "iceoryx2 is not built in".into(),
        ))
    }
}
