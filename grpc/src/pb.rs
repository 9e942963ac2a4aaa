//! Protobuf messages, tonic servers and tonic clients generated from `grpc/proto/` (see
//! `grpc/proto/UPSTREAM.md` for the upstream files they match). Modules mirror the protobuf
//! packages, because prost's cross-package references are relative (`super::super::...`);
//! the short aliases below are what the rest of the workspace uses.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]

/// `hashicorp.*` packages.
pub mod hashicorp {
    /// `hashicorp.nomad.*`.
    pub mod nomad {
        /// `hashicorp.nomad.plugins.*`.
        pub mod plugins {
            /// `hashicorp.nomad.plugins.base.*`.
            pub mod base {
                /// `hashicorp.nomad.plugins.base.proto`: the BasePlugin service.
                pub mod proto {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/hashicorp.nomad.plugins.base.proto.rs"
                    ));
                }
            }
            /// `hashicorp.nomad.plugins.drivers.*`.
            pub mod drivers {
                /// `hashicorp.nomad.plugins.drivers.proto`: the Driver service.
                pub mod proto {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/hashicorp.nomad.plugins.drivers.proto.rs"
                    ));
                }
            }
            /// `hashicorp.nomad.plugins.shared.*`.
            pub mod shared {
                /// `hashicorp.nomad.plugins.shared.hclspec`: the config schema language.
                pub mod hclspec {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/hashicorp.nomad.plugins.shared.hclspec.rs"
                    ));
                }
                /// `hashicorp.nomad.plugins.shared.structs`: Attribute, RecoverableError, stats.
                pub mod structs {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/hashicorp.nomad.plugins.shared.structs.rs"
                    ));
                }
            }
        }
    }
}

/// `google.*` packages.
pub mod google {
    /// `google.rpc`: the rich error model (`Status`).
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// `plugin`: go-plugin's own services (GRPCController, GRPCStdio, GRPCBroker).
pub mod goplugin {
    include!(concat!(env!("OUT_DIR"), "/plugin.rs"));
}

pub use google::rpc as rpc_status;
pub use hashicorp::nomad::plugins::base::proto as base;
pub use hashicorp::nomad::plugins::drivers::proto as drivers;
pub use hashicorp::nomad::plugins::shared::hclspec;
pub use hashicorp::nomad::plugins::shared::structs;

/// grpc.health.v1, from tonic-health (server and client).
pub use tonic_health::pb as health;

/// Full name of the Driver service.
pub const NOMAD_DRIVER_SERVICE: &str = "hashicorp.nomad.plugins.drivers.proto.Driver";
/// Full name of the BasePlugin service.
pub const NOMAD_BASE_SERVICE: &str = "hashicorp.nomad.plugins.base.proto.BasePlugin";
