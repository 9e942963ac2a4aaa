//! Stdout/stderr hygiene. Nomad's host treats the plugin as gone only when both pipes reach
//! EOF, so no child may ever hold fd 1 or 2 (protocol.md §1.9). After the handshake line we
//! keep a close-on-exec duplicate of stderr for our logs and point fds 0, 1 and 2 at
//! /dev/null; whatever a child inherits from then on is harmless.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

/// Why stdio could not be rearranged.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// Writing the handshake line failed.
    #[error("writing the handshake line to stdout")]
    Handshake(#[source] std::io::Error),
    /// Duplicating stderr failed.
    #[error("duplicating stderr for the log writer")]
    DupStderr(#[source] std::io::Error),
    /// /dev/null could not be opened.
    #[error("opening /dev/null")]
    DevNull(#[source] std::io::Error),
    /// dup2 onto fd 0, 1 or 2 failed.
    #[error("redirecting fd {fd} to /dev/null")]
    Redirect {
        /// Which fd.
        fd: i32,
        /// Cause.
        #[source]
        source: nix::Error,
    },
}

/// Writes the handshake line to stdout and flushes it.
pub fn print_handshake(line: &str) -> Result<(), StdioError> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(StdioError::Handshake)
}

/// Returns a close-on-exec handle on the original stderr (for logs) and redirects fds 0, 1, 2
/// to /dev/null.
pub fn detach_stdio() -> Result<File, StdioError> {
    // try_clone_to_owned uses F_DUPFD_CLOEXEC, so children never inherit the log pipe.
    let log = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(StdioError::DupStderr)?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(StdioError::DevNull)?;
    nix::unistd::dup2_stdin(&null).map_err(|source| StdioError::Redirect { fd: 0, source })?;
    nix::unistd::dup2_stdout(&null).map_err(|source| StdioError::Redirect { fd: 1, source })?;
    nix::unistd::dup2_stderr(&null).map_err(|source| StdioError::Redirect { fd: 2, source })?;
    Ok(File::from(log))
}
