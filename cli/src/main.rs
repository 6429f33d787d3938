//! The `ringlink` command: run a server, connect to one, probe and list names from a shell.
//!
//! ```text
//! ringlink listen demo --echo          # terminal 1
//! echo hi | ringlink connect demo      # terminal 2: prints "hi"
//! ringlink probe demo && ringlink ls
//! ```

/// Writes one line to stderr. A closed or full stderr never stops ringlink (a server
/// piped into `head -1` keeps serving), so failures are ignored, unlike `eprintln!`,
/// which panics on them.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod connect;
mod listen;
mod names;

use std::time::Duration;

use clap::Parser;
use ringlink::{Error, ErrorKind};

use args::{Cli, Command};

fn main() {
    std::process::exit(run(Cli::parse()));
}

fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Listen {
            name,
            echo,
            framed,
            access,
            max_connections,
            idle_timeout,
        } => seconds("--idle-timeout", idle_timeout).and_then(|idle| {
            let idle = (!idle.is_zero()).then_some(idle);
            listen::listen(&name, echo, framed, access, max_connections, idle)
        }),
        Command::Connect {
            name,
            framed,
            wait,
            timeout,
            keep_open,
            idle,
            any_server,
        } => connect::connect(
            &name,
            framed,
            wait,
            timeout,
            // Named pipes have no half-close: Windows always keeps the connection open.
            (keep_open || name.qt || cfg!(windows)).then_some(idle),
            any_server,
        ),
        Command::Probe { name } => names::probe(&name),
        Command::Ls { qt } => names::ls(qt),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

fn report(e: &Error) {
    let mut text = format!("ringlink: error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    say!("{text}");
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidName,
            format!("{flag} {value} is not a number of seconds"),
        )
    })
}
