//! The command line: subcommands, their flags and their help text (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Local IPC over ringlink: Unix domain sockets (named pipes on Windows) that are private
/// to your user by default.
///
/// A NAME without '/' (like `demo`) lives in your private directory
/// ($XDG_RUNTIME_DIR/ringlink, else $TMPDIR/ringlink-<uid>); a NAME with '/' is a socket
/// path used as given. `--qt` uses the name Qt's QLocalServer/QLocalSocket would
/// ($TMPDIR or /tmp), so a Qt program and ringlink can talk in raw mode.
/// On Windows a NAME is the pipe \\.\pipe\NAME (also Qt's), owner-only by default.
#[derive(Debug, Parser)]
#[command(name = "ringlink", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server on NAME; logs each connection (peer uid and pid) to stderr.
    ///
    /// Without --echo, what clients send is written to stdout. Stop it with Ctrl-C: the
    /// socket and its lock file are removed.
    #[command(
        after_help = "Examples:\n  ringlink listen demo --echo\n  ringlink listen demo --framed --echo\n  ringlink listen /tmp/app.sock --access group"
    )]
    Listen {
        #[command(flatten)]
        name: NameArgs,
        /// Send back everything each client sends (frames, with --framed).
        #[arg(long)]
        echo: bool,
        /// Speak ringlink's framed protocol (hello, then length-prefixed frames).
        #[arg(long)]
        framed: bool,
        /// Who may open the socket file.
        #[arg(long, value_enum, default_value_t = AccessArg::Owner)]
        access: AccessArg,
        /// Close connections beyond this many open at once [default: 1024, or fewer when
        /// the descriptor limit (ulimit -n) is lower].
        #[arg(long, value_name = "N")]
        max_connections: Option<usize>,
        /// Close a connection that sends nothing (with --framed: no whole frame) for this
        /// many seconds, or that takes as long to accept what is sent back, so peers that
        /// go quiet or trickle cannot hold every connection slot; 0: never.
        #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
        idle_timeout: f64,
    },
    /// Connect to NAME: stdin goes to the server, what it sends goes to stdout.
    ///
    /// Ends when the server closes the connection (after stdin ends, ringlink says so to the
    /// server by shutting down its side). With --framed, each stdin line is one frame and each
    /// frame received is printed as a line.
    ///
    /// With --qt (or --keep-open) the connection is not half-closed, because Qt's
    /// QLocalSocket treats that as a disconnect and drops its unsent replies; connect then
    /// exits when the server closes or --idle seconds after stdin ended and nothing arrived.
    /// Named pipes cannot half-close, so on Windows this is always the behaviour.
    #[command(
        after_help = "Examples:\n  echo hi | ringlink connect demo\n  ringlink connect demo --wait --timeout 10"
    )]
    Connect {
        #[command(flatten)]
        name: NameArgs,
        /// Speak ringlink's framed protocol.
        #[arg(long)]
        framed: bool,
        /// Wait for the server to appear (until the timeout) instead of failing at once.
        #[arg(long)]
        wait: bool,
        /// Give up connecting after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        timeout: f64,
        /// Do not half-close when stdin ends (the default with --qt).
        #[arg(long)]
        keep_open: bool,
        /// With --keep-open: exit this many seconds after stdin ended and nothing arrived.
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
        idle: f64,
        /// Connect even when the server runs as another user. By default such a server is
        /// refused before anything is sent: anyone can plant a socket in a shared directory
        /// (Qt names live in /tmp) or squat a pipe name.
        #[arg(long)]
        any_server: bool,
    },
    /// Exit 0 when a live server answers on NAME, 1 otherwise (prints what it found).
    Probe {
        #[command(flatten)]
        name: NameArgs,
    },
    /// List your ringlink names, live or stale.
    Ls {
        /// List the sockets you own in Qt's directory ($TMPDIR or /tmp) instead.
        #[arg(long)]
        qt: bool,
    },
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// A plain name (`demo`), or a socket path (anything with a '/').
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Resolve NAME the way Qt's QLocalServer does: $TMPDIR/NAME or /tmp/NAME.
    #[arg(long, conflicts_with = "abstract_name")]
    pub qt: bool,
    /// Use a Linux abstract socket name (@NAME, no file).
    #[arg(long = "abstract")]
    pub abstract_name: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccessArg {
    /// Only your user (0600).
    Owner,
    /// Your user and group (0660).
    Group,
    /// Every user (0666).
    Everyone,
}
