//! # pledge-grpc
//!
//! nomad-pledge-driver's face to Nomad. It owns:
//! - [`pb`]: the protobuf/gRPC types generated from `grpc/proto/` (Nomad's BasePlugin and
//!   Driver services, hclspec, shared structs, go-plugin's GRPCController/GRPCStdio/GRPCBroker,
//!   google.rpc.Status), with servers and clients;
//! - [`plugin`]: the go-plugin serving path of the binary (cookie, protocol negotiation,
//!   socket, handshake line, stdio hygiene, SIGINT) and [`logging`] (hclog JSON on stderr);
//! - [`convert`] (protobuf ↔ core types), [`schema`] (the hclspec trees), [`status`] (the one
//!   error → gRPC status mapping), [`service`] (the tonic services) and [`shell`] (the one
//!   thread that owns the core's `Driver` and the backend).
//!
//! It must not decide lifecycle or sandbox policy: every decision is the core's
//! (`pledge_core::Driver`), every effect the backend's. Handlers only convert, submit a
//! request to the shell, and map the reply.
//!
//! Contract: the binary speaks go-plugin core protocol 1 / Nomad plugin protocol 2 over a unix
//! socket, as Nomad's client expects from any external driver (shared/notes/protocol.md).

pub mod convert;
pub mod learn_job;
pub mod linux;
pub mod logging;
pub mod pb;
pub mod plugin;
pub mod runner;
pub mod schema;
pub mod service;
pub mod shell;
pub mod status;
pub mod unwired;
