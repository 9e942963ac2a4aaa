//! go-plugin's own services (protocol.md §1.8): GRPCController (Shutdown), GRPCStdio (a stream
//! that never sends: we print nothing to stdout after the handshake and log to stderr), and
//! GRPCBroker (Nomad never brokers sub-connections for drivers: read until the host closes).

use crate::pb::goplugin::{
    grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio, ConnInfo, Empty, StdioData,
};
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Tells the server loop to stop (Shutdown was called).
#[derive(Clone, Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// A trigger and the receiver the server loop waits on.
    pub fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), rx)
    }

    /// Requests shutdown.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

/// `plugin.GRPCController`.
#[derive(Debug)]
pub struct Controller {
    /// Fired by Shutdown.
    pub shutdown: ShutdownTrigger,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("host requested shutdown; tasks keep running");
        self.shutdown.fire();
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`.
#[derive(Debug, Default)]
pub struct Stdio;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<StdioData>;

    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        // Nothing is ever written to our stdout/stderr besides the log lines the host already
        // reads from the pipe; keep the stream open until the host goes away.
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// `plugin.GRPCBroker`.
#[derive(Debug, Default)]
pub struct Broker;

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        req: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = req.into_inner();
        // The response ends when the host's side ends (the sender is dropped with the task);
        // we never offer connections.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ConnInfo, Status>>(1);
        tokio::spawn(async move {
            let _keep_open = tx;
            while let Some(Ok(info)) = inbound.next().await {
                tracing::debug!(
                    service_id = info.service_id,
                    "ignoring broker connection info"
                );
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
