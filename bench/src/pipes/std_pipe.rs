//! std's named pipes under threads, as a std user writes them: the client opens the pipe
//! with `std::fs::OpenOptions` (retrying while every instance is busy), the server makes
//! its instances with `CreateNamedPipeW` (std has no pipe server) and reads and writes
//! them as `std::fs::File`s, one blocking thread per connection on each side.
//!
//! Blocking pipe handles have no timeouts. A failed side closes its handles, which ends
//! the other side's reads; the one wait nobody else ends, the server's `ConnectNamedPipe`
//! once no client will come, is ended by a watchdog that opens the pipe itself when the
//! row's limit passes.

use std::fs::{File, OpenOptions};
use std::os::windows::io::OwnedHandle;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;

use super::{pipe_name, sys};
use crate::names::{Driver, Name};
use crate::threaded::{self, Copying};
use crate::workload::{
    BenchError, ClientOutcome, ClientPlan, EchoPlan, IoContext, Limit, Transport,
};

/// How often the watchdog looks at the limit.
const TICK: Duration = Duration::from_millis(50);

/// std's `File` over named pipes.
pub struct StdPipe;

/// Opens the client end of `name`, retrying while every instance is busy.
fn open(name: &str, limit: Limit<'_>) -> Result<Copying<File>, BenchError> {
    loop {
        match OpenOptions::new().read(true).write(true).open(name) {
            Ok(file) => return Ok(Copying(file)),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                limit.check("connecting")?;
                thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(BenchError::Io("open", e)),
        }
    }
}

/// The error of a limit that has passed.
fn passed(limit: Limit<'_>) -> BenchError {
    limit
        .check("accepting")
        .err()
        .unwrap_or(BenchError::TimedOut("accepting"))
}

impl Transport for StdPipe {
    fn name(&self) -> Name {
        Name::Std
    }

    fn models(&self) -> &'static [Driver] {
        &[Driver::Threads]
    }

    fn unsupported(&self, _driver: Driver, connections: usize) -> Option<String> {
        threaded::threads_short(connections)
    }

    fn serve(
        &self,
        addr: &Path,
        plan: EchoPlan,
        limit: Limit<'_>,
        ready: &mut dyn FnMut(),
    ) -> Result<(), BenchError> {
        let name = pipe_name(addr);
        let wide = sys::wide(&name);
        // The instance the next client connects to; there is always one while serving.
        let mut pending: Option<OwnedHandle> =
            Some(sys::create_instance(&wide, true).during("CreateNamedPipeW")?);
        ready();
        let (expired, done) = (AtomicBool::new(false), AtomicBool::new(false));
        thread::scope(|scope| {
            let watchdog = thread::Builder::new()
                .name("pipe-watchdog".into())
                .spawn_scoped(scope, || {
                    while !done.load(Ordering::Acquire) {
                        if limit.expired() {
                            expired.store(true, Ordering::Release);
                            // An accept that saw no expiry waits on an instance this opens.
                            let _ = OpenOptions::new().read(true).write(true).open(&name);
                            return;
                        }
                        thread::park_timeout(TICK);
                    }
                })
                .during("spawning the watchdog")?;
            let result = threaded::serve(
                || {
                    let instance = match pending.take() {
                        Some(instance) => instance,
                        None => sys::create_instance(&wide, false).during("CreateNamedPipeW")?,
                    };
                    if expired.load(Ordering::Acquire) {
                        return Err(passed(limit));
                    }
                    sys::connect(&instance).during("ConnectNamedPipe")?;
                    pending = Some(sys::create_instance(&wide, false).during("CreateNamedPipeW")?);
                    if expired.load(Ordering::Acquire) {
                        // Maybe the watchdog's own connection.
                        return Err(passed(limit));
                    }
                    Ok(Some(Copying(File::from(instance))))
                },
                plan,
                limit,
            );
            done.store(true, Ordering::Release);
            watchdog.thread().unpark();
            let _ = watchdog.join();
            result
        })
    }

    fn run_client(
        &self,
        addr: &Path,
        plan: ClientPlan,
        limit: Limit<'_>,
    ) -> Result<ClientOutcome, BenchError> {
        let name = pipe_name(addr);
        threaded::run_client(|| open(&name, limit), plan, limit)
    }
}
