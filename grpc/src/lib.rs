//! # pledge-grpc
//!
//! nomad-pledge-driver's face to Nomad. It owns:
//! - [`pb`]: the protobuf/gRPC types generated from `grpc/proto/` (Nomad's BasePlugin and
//!   Driver services, hclspec, shared structs, go-plugin's GRPCController/GRPCStdio/GRPCBroker,
//!   google.rpc.Status), with servers and clients;
//! - the go-plugin serving path of the binary (handshake, socket, stdio hygiene, logging);
//! - translation between protobuf and the core's types, and the one shell thread that owns the
//!   core's `Driver` and the backend.
//!
//! It must not decide lifecycle or sandbox policy: every decision is the core's
//! (`pledge_core::Driver`), every effect the backend's. Handlers only convert, submit a
//! request to the shell, and map the reply (errors via one function).
//!
//! Contract: the binary speaks go-plugin protocol 1 / Nomad plugin protocol 2 over a unix
//! socket, as Nomad's client expects from any external driver (see shared/notes/protocol.md).

pub mod pb;
