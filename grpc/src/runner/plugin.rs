//! The runner's side of the plugin protocol, done the way Nomad's client does it: start the
//! plugin binary as a child with go-plugin's environment, read the handshake line from its
//! stdout, connect tonic clients to the socket it names, read its hclog JSON on stderr, and at
//! the end ask it to exit (GRPCController/Shutdown), killing it only if it does not.

use crate::pb;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Nomad's magic cookie (plugins/base/plugin.go).
pub const MAGIC_COOKIE_KEY: &str = "NOMAD_PLUGIN_MAGIC_COOKIE";
/// Its value.
pub const MAGIC_COOKIE_VALUE: &str =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";
/// go-plugin's start timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many plugin warnings are kept for the hints.
const NOTES_KEPT: usize = 64;

/// Why talking to the plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The binary could not be started.
    #[error("cannot start plugin {exe}: {source}")]
    Spawn {
        /// The plugin binary.
        exe: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No usable handshake line.
    #[error("plugin handshake failed: {0}")]
    Handshake(String),
    /// The socket could not be reached.
    #[error("cannot connect to the plugin at {addr}: {source}")]
    Connect {
        /// The address from the handshake.
        addr: String,
        /// The cause.
        source: tonic::transport::Error,
    },
    /// An RPC failed.
    #[error("{rpc}: {message}")]
    Rpc {
        /// The RPC, e.g. `Driver/StartTask`.
        rpc: &'static str,
        /// The gRPC status message (the plugin's error text).
        message: String,
        /// The gRPC status code.
        code: tonic::Code,
    },
}

impl PluginError {
    /// Wraps a gRPC status from `rpc`.
    pub fn rpc(rpc: &'static str, status: &tonic::Status) -> Self {
        Self::Rpc {
            rpc,
            message: status.message().to_owned(),
            code: status.code(),
        }
    }
}

/// A parsed `CORE|APP|NETWORK|ADDR|PROTOCOL|CERT` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// `unix` or `tcp`.
    pub network: String,
    /// Socket path or host:port.
    pub addr: String,
}

/// Checks a handshake line as go-plugin's client does (core 1, app 2, grpc).
pub fn parse_handshake(line: &str) -> Result<Handshake, String> {
    let parts: Vec<&str> = line.trim().split('|').collect();
    if parts.len() < 4 {
        return Err(format!("unrecognized plugin message {line:?}"));
    }
    if parts[0] != "1" {
        return Err(format!("incompatible core protocol version {:?}", parts[0]));
    }
    if parts[1] != "2" {
        return Err(format!(
            "plugin speaks protocol {:?}, Nomad needs 2",
            parts[1]
        ));
    }
    if parts[2] != "unix" && parts[2] != "tcp" {
        return Err(format!("unknown address type {:?}", parts[2]));
    }
    if parts.get(4).copied() != Some("grpc") {
        return Err(format!(
            "plugin protocol {:?} is not grpc",
            parts.get(4).copied().unwrap_or("")
        ));
    }
    if parts.get(5).is_some_and(|c| !c.is_empty()) {
        return Err("plugin sent a TLS certificate; Nomad does not use AutoMTLS".to_owned());
    }
    Ok(Handshake {
        network: parts[2].to_owned(),
        addr: parts[3].to_owned(),
    })
}

/// SetConfig as Nomad's client sends it: the plugin's cty-msgpack config, the client's
/// dynamic port range (14000-14512, Nomad's defaults) and plugin API v0.1.0.
pub fn set_config_request(msgpack_config: Vec<u8>) -> pb::base::SetConfigRequest {
    pb::base::SetConfigRequest {
        msgpack_config,
        nomad_config: Some(pb::base::NomadConfig {
            driver: Some(pb::base::NomadDriverConfig {
                client_max_port: 14512,
                client_min_port: 14000,
                topology: None,
            }),
        }),
        plugin_api_version: "v0.1.0".into(),
    }
}

/// The running plugin child and its clients.
pub struct Plugin {
    child: Option<Child>,
    /// BasePlugin client.
    pub base: pb::base::base_plugin_client::BasePluginClient<Channel>,
    /// Driver client.
    pub driver: pb::drivers::driver_client::DriverClient<Channel>,
    controller: pb::goplugin::grpc_controller_client::GrpcControllerClient<Channel>,
    notes: Arc<Mutex<VecDeque<String>>>,
}

impl Plugin {
    /// Starts `exe` as Nomad would start a plugin from its plugin_dir (same environment plus
    /// go-plugin's variables), but in its own process group so the terminal's Ctrl-C reaches only
    /// the runner, which then stops the task properly.
    pub async fn launch(exe: &Path, socket_dir: &Path, verbose: bool) -> Result<Self, PluginError> {
        let spawn_err = |source| PluginError::Spawn {
            exe: exe.display().to_string(),
            source,
        };
        std::fs::create_dir_all(socket_dir).map_err(spawn_err)?;
        let mut cmd = Command::new(exe);
        cmd.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("PLUGIN_UNIX_SOCKET_DIR", socket_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let notes = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let notes = notes.clone();
            std::thread::spawn(move || read_plugin_log(stderr, verbose, &notes));
        }
        let Some(stdout) = child.stdout.take() else {
            return Err(PluginError::Handshake("no stdout pipe".into()));
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // go-plugin drains and drops everything after the handshake.
            for _ in lines {}
        });
        let mut guard = Self::reap_on_error(child);
        let line = match tokio::time::timeout(HANDSHAKE_TIMEOUT, rx).await {
            Ok(Ok(Some(Ok(line)))) => line,
            Ok(Ok(Some(Err(e)))) => return Err(PluginError::Handshake(e.to_string())),
            Ok(_) => {
                let status = guard.as_mut().and_then(|c| c.wait().ok());
                return Err(PluginError::Handshake(format!(
                    "plugin exited before the handshake ({})",
                    status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string())
                )));
            }
            Err(_) => {
                return Err(PluginError::Handshake(format!(
                    "no handshake line within {}s",
                    HANDSHAKE_TIMEOUT.as_secs()
                )))
            }
        };
        let hs = parse_handshake(&line).map_err(PluginError::Handshake)?;
        let channel = connect(&hs).await?;
        Ok(Self {
            child: guard.take(),
            base: pb::base::base_plugin_client::BasePluginClient::new(channel.clone())
                .max_decoding_message_size(usize::MAX),
            driver: pb::drivers::driver_client::DriverClient::new(channel.clone())
                .max_decoding_message_size(usize::MAX),
            controller: pb::goplugin::grpc_controller_client::GrpcControllerClient::new(channel),
            notes,
        })
    }

    fn reap_on_error(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// Warnings and errors the plugin logged so far.
    pub fn notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|n| n.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Asks the plugin to exit (tasks are already destroyed by then) and waits for it; kills it
    /// if it is still there after `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = tokio::time::timeout(grace, self.controller.shutdown(pb::goplugin::Empty {})).await;
        if let Some(mut child) = self.child.take() {
            let waited = tokio::task::spawn_blocking(move || {
                let deadline = std::time::Instant::now() + grace;
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => return None,
                        Ok(None) if std::time::Instant::now() >= deadline => return Some(child),
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .await;
            if let Ok(Some(mut still)) = waited {
                let _ = still.kill();
                let _ = still.wait();
            }
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        // Never leave the plugin behind, even on an error path.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills and reaps the child unless taken.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn as_mut(&mut self) -> Option<&mut Child> {
        self.0.as_mut()
    }
    fn take(&mut self) -> Option<Child> {
        self.0.take()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn connect(hs: &Handshake) -> Result<Channel, PluginError> {
    let connect_err = |source| PluginError::Connect {
        addr: hs.addr.clone(),
        source,
    };
    if hs.network == "tcp" {
        return Endpoint::from_shared(format!("http://{}", hs.addr))
            .map_err(connect_err)?
            .connect()
            .await
            .map_err(connect_err);
    }
    let path = PathBuf::from(&hs.addr);
    // go-plugin dials "unused"; the authority is never checked.
    Endpoint::from_static("http://unused")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(connect_err)
}

/// One hclog JSON line, rendered for the terminal: `(level, text)`.
pub fn render_log_line(line: &str) -> (String, String) {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else {
        return ("debug".to_owned(), line.to_owned());
    };
    let level = m
        .get("@level")
        .and_then(|v| v.as_str())
        .unwrap_or("debug")
        .to_owned();
    let mut text = m
        .get("@message")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    for (k, v) in &m {
        if k.starts_with('@') || k == "timestamp" {
            continue;
        }
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        text.push_str(&format!(" {k}={v}"));
    }
    (level, text)
}

fn read_plugin_log(stderr: impl std::io::Read, verbose: bool, notes: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let (level, text) = render_log_line(&line);
        let important = matches!(level.as_str(), "warn" | "error");
        if important || verbose {
            eprintln!("    plugin [{}] {text}", level.to_uppercase());
        }
        if important {
            if let Ok(mut n) = notes.lock() {
                if n.len() == NOTES_KEPT {
                    n.pop_front();
                }
                n.push_back(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines_are_checked_like_go_plugin() {
        assert_eq!(
            parse_handshake("1|2|unix|/tmp/plugin123|grpc|\n"),
            Ok(Handshake {
                network: "unix".into(),
                addr: "/tmp/plugin123".into()
            })
        );
        assert!(parse_handshake("1|2|tcp|127.0.0.1:10000|grpc").is_ok());
        assert!(parse_handshake("1|1|unix|/x|grpc|")
            .expect_err("app")
            .contains("needs 2"));
        assert!(parse_handshake("2|2|unix|/x|grpc|")
            .expect_err("core")
            .contains("core"));
        assert!(parse_handshake("1|2|unix|/x")
            .expect_err("netrpc")
            .contains("not grpc"));
        assert!(parse_handshake("1|2|udp|/x|grpc|")
            .expect_err("net")
            .contains("address type"));
        assert!(parse_handshake("hello").is_err());
        assert!(parse_handshake("1|2|unix|/x|grpc|MIIBcert").is_err());
    }

    #[test]
    fn hclog_json_is_rendered_with_level_and_fields() {
        let (lvl, text) = render_log_line(
            r#"{"@level":"warn","@message":"landlock partly enforced","@module":"pledge","@timestamp":"2026-01-01T00:00:00.000000Z","task_id":"a/b/c"}"#,
        );
        assert_eq!(lvl, "warn");
        assert_eq!(text, "landlock partly enforced task_id=a/b/c");
        assert_eq!(render_log_line("not json").0, "debug");
    }
}
