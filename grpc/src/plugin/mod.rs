//! Serving the plugin the way go-plugin's Go servers do (protocol.md §1, §6): cookie check,
//! protocol negotiation, a private unix socket, the handshake line, stdio hygiene, SIGINT
//! ignored, and the go-plugin + Nomad services on one tonic server until Shutdown.

pub mod goplugin;
pub mod handshake;
pub mod socket;
pub mod stdio;

use crate::pb::base::base_plugin_server::BasePluginServer;
use crate::pb::drivers::driver_server::DriverServer;
use crate::pb::goplugin::{
    grpc_broker_server::GrpcBrokerServer, grpc_controller_server::GrpcControllerServer,
    grpc_stdio_server::GrpcStdioServer,
};
use crate::service::base::BaseService;
use crate::service::driver::DriverService;
use crate::service::exec::ExecRunner;
use crate::shell::{Shell, ShellStarter, Waker};
use pledge_core::Backend;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::wrappers::UnixListenerStream;

/// How long after Shutdown we keep serving so its reply can be flushed.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(100);
/// Largest request accepted (Nomad sends whole task environments).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Why serving failed after the handshake checks.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Socket setup failed.
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    /// Stdio could not be rearranged.
    #[error(transparent)]
    Stdio(#[from] stdio::StdioError),
    /// The shell thread could not start.
    #[error("starting the driver shell thread")]
    Shell(#[source] std::io::Error),
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// SIGINT could not be ignored.
    #[error("installing the SIGINT handler")]
    Signal(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server")]
    Server(#[source] tonic::transport::Error),
}

/// What the binary plugs into the server, built once the handshake checks passed.
pub struct Wired<B> {
    /// The backend the shell thread will own.
    pub backend: B,
    /// Whether that backend runs real tasks.
    pub runtime: bool,
    /// Runs exec plans (ExecTask / ExecTaskStreaming), if available.
    pub exec: Option<Arc<dyn ExecRunner>>,
}

/// The plugin's main: returns the process exit code. Everything before the handshake line
/// that fails is reported on stderr as plain text (the host shows it); afterwards logs are
/// hclog JSON.
pub fn main<B, F>(wire: F) -> i32
where
    B: Backend + Send + 'static,
    F: FnOnce(Waker) -> Wired<B>,
{
    let env = |k: &str| std::env::var(k).ok();
    if handshake::check_cookie(env(handshake::MAGIC_COOKIE_KEY).as_deref()).is_err() {
        eprint!("{}", handshake::NOT_A_PLUGIN_MESSAGE);
        return 1;
    }
    let negotiated =
        match handshake::negotiate_protocol(env(handshake::PROTOCOL_VERSIONS_ENV).as_deref()) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("nomad-pledge-driver: {e}");
                return 1;
            }
        };
    let starter = Shell::<B>::prepare();
    let wiring = wire(starter.waker());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let e = ServeError::Runtime(e);
            eprintln!(
                "nomad-pledge-driver: {}",
                pledge_core::backend::error_chain(&e)
            );
            return 1;
        }
    };
    let code = runtime.block_on(async move {
        match serve(negotiated, starter, wiring).await {
            Ok(()) => 0,
            Err(e) => {
                let msg = pledge_core::backend::error_chain(&e);
                tracing::error!(error = %msg, "plugin failed");
                eprintln!("nomad-pledge-driver: {msg}");
                1
            }
        }
    });
    // Streams and blocked calls (WaitTask) must not keep the process alive after Shutdown.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn serve<B>(
    negotiated: handshake::Negotiated,
    starter: ShellStarter<B>,
    wiring: Wired<B>,
) -> Result<(), ServeError>
where
    B: Backend + Send + 'static,
{
    // Like go-plugin: a terminal Ctrl-C reaches the whole agent process group; the agent
    // decides when we stop. A handled (not ignored) SIGINT resets to default in children.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(ServeError::Signal)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;

    let base = socket::base_dir(
        std::env::var(handshake::UNIX_SOCKET_DIR_ENV)
            .ok()
            .as_deref(),
        std::env::var("TMPDIR").ok().as_deref(),
    );
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let dir = socket::SocketDir::create(&base, &cwd)?;
    let listener = dir.bind()?;

    let shell = starter.start(wiring.backend).map_err(ServeError::Shell)?;
    let (trigger, mut shutdown) = goplugin::ShutdownTrigger::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    stdio::print_handshake(&handshake::handshake_line(negotiated.version, dir.socket()))?;
    let log = stdio::detach_stdio()?;
    crate::logging::install(log);
    for bad in &negotiated.ignored {
        tracing::warn!(entry = %bad, "ignoring a non-numeric PLUGIN_PROTOCOL_VERSIONS entry");
    }
    tracing::info!(
        socket = %dir.socket().display(),
        version = env!("CARGO_PKG_VERSION"),
        runtime = wiring.runtime,
        "plugin serving"
    );

    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(goplugin::Controller {
            shutdown: trigger.clone(),
        }))
        .add_service(GrpcStdioServer::new(goplugin::Stdio))
        .add_service(GrpcBrokerServer::new(goplugin::Broker))
        .add_service(
            BasePluginServer::new(BaseService::new(shell.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            DriverServer::new(DriverService::new(
                shell.clone(),
                wiring.runtime,
                wiring.exec,
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming(UnixListenerStream::new(listener));
    tokio::pin!(server);

    let result = loop {
        tokio::select! {
            r = &mut server => break r.map_err(ServeError::Server),
            _ = shutdown.changed() => {
                // Let the Shutdown reply reach the host, then stop; open streams are dropped.
                tokio::time::sleep(SHUTDOWN_FLUSH).await;
                break Ok(());
            }
            _ = sigint.recv() => tracing::debug!("ignoring SIGINT"),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: exiting; tasks keep running");
                break Ok(());
            }
        }
    };
    shell.stop();
    drop(dir); // removes the socket and its directory
    tracing::info!("plugin exiting");
    result
}
