//! Running external commands: echo them, wait, and turn a failure into an error message.

use std::process::{Command, Stdio};

/// A command line as a user would type it (for logs and error messages).
pub fn display(cmd: &Command) -> String {
    let mut line = String::new();
    let path = std::env::var("PATH").unwrap_or_default();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let value = value.to_string_lossy();
            // Show a prepended PATH as `dir:$PATH`, not as the whole search path.
            let value = match value.strip_suffix(path.as_str()) {
                Some(prefix) if key == "PATH" && !path.is_empty() => format!("{prefix}$PATH"),
                _ => value.into_owned(),
            };
            line.push_str(&format!("{}={value} ", key.to_string_lossy()));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with inherited stdio, echoing it first; an error if it cannot be
/// started or exits unsuccessfully.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// Runs `cmd` quietly and returns its standard output; an error (with its
/// standard error) if it fails.
pub fn output(cmd: &mut Command) -> Result<String, String> {
    let line = display(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether `cmd` runs and exits successfully (output discarded): a presence check.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
