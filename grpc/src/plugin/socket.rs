//! The plugin's unix socket, in a private directory (mode 0700) created for this process, so
//! no other user can connect and no fixed path is shared between plugin instances (an old
//! instance may still be alive while a restarted agent launches new ones, protocol.md §1.2).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;
/// File name of the socket inside the private directory.
pub const SOCKET_NAME: &str = "plugin.sock";

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The private directory could not be created.
    #[error("creating private socket directory under {base}")]
    CreateDir {
        /// Parent directory.
        base: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The path does not fit in `sun_path`.
    #[error("socket path {path} is {len} bytes; at most {MAX_SOCKET_PATH} fit in a unix socket address (set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a shorter directory)")]
    TooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// bind(2) failed.
    #[error("binding unix socket {path}")]
    Bind {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The private directory and socket path; removes both when dropped.
#[derive(Debug)]
pub struct SocketDir {
    dir: PathBuf,
    socket: PathBuf,
}

impl SocketDir {
    /// Creates a fresh 0700 directory under `base` (made absolute against `cwd`).
    pub fn create(base: &Path, cwd: &Path) -> Result<Self, SocketError> {
        let base = if base.is_absolute() {
            base.to_path_buf()
        } else {
            cwd.join(base)
        };
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last_err = None;
        for attempt in 0..16u32 {
            let dir = base.join(format!(
                "nomad-pledge-driver.{}.{:x}{attempt}",
                std::process::id(),
                stamp
            ));
            let socket = dir.join(SOCKET_NAME);
            let len = socket.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(SocketError::TooLong { path: socket, len });
            }
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self { dir, socket }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(SocketError::CreateDir { base, source: e }),
            }
        }
        Err(SocketError::CreateDir {
            base,
            source: last_err.unwrap_or_else(|| std::io::Error::other("no free name")),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Binds the listener (must run inside a tokio runtime).
    pub fn bind(&self) -> Result<tokio::net::UnixListener, SocketError> {
        tokio::net::UnixListener::bind(&self.socket).map_err(|source| SocketError::Bind {
            path: self.socket.clone(),
            source,
        })
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The directory go-plugin would use: `PLUGIN_UNIX_SOCKET_DIR`, else `TMPDIR`, else `/tmp`.
pub fn base_dir(socket_dir_env: Option<&str>, tmpdir_env: Option<&str>) -> PathBuf {
    socket_dir_env
        .filter(|s| !s.is_empty())
        .or(tmpdir_env.filter(|s| !s.is_empty()))
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn base_dir_prefers_plugin_socket_dir() {
        assert_eq!(base_dir(Some("/a"), Some("/b")), PathBuf::from("/a"));
        assert_eq!(base_dir(Some(""), Some("/b")), PathBuf::from("/b"));
        assert_eq!(base_dir(None, None), PathBuf::from("/tmp"));
    }

    #[test]
    fn dir_is_private_absolute_and_removed_on_drop() {
        let tmp = std::env::temp_dir();
        let d = SocketDir::create(Path::new("."), &tmp);
        let d = match d {
            Ok(d) => d,
            Err(e) => panic!("create: {e}"),
        };
        assert!(d.socket().is_absolute());
        let mode = std::fs::metadata(d.dir())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o700);
        let dir = d.dir().to_path_buf();
        drop(d);
        assert!(!dir.exists());
    }

    #[test]
    fn too_long_path_is_a_clear_error() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        match SocketDir::create(&long, Path::new("/")) {
            Err(SocketError::TooLong { len, .. }) => assert!(len > MAX_SOCKET_PATH),
            other => panic!("expected TooLong, got {other:?}"),
        }
    }
}
