//! Decoding of cty-msgpack bytes (SetConfig's `msgpack_config`, StartTask's
//! `msgpack_driver_config`) into the raw config shapes. rmp-serde is pure (no IO), so the one
//! decoder lives here and the grpc crate, the local runner and the fuzzers all share it.

use crate::config::{RawPluginConfig, RawTaskConfig};
use crate::error::ConfigErrors;

/// Largest config accepted, in bytes; Nomad's are a few KiB.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Decodes the plugin config; errors name the field (`plugin.pids_limit: ...`).
pub fn decode_plugin_config(bytes: &[u8]) -> Result<RawPluginConfig, ConfigErrors> {
    let _ = bytes;
    todo!("core helper")
}

/// Decodes a task's `config {}` block; errors name the field (`config.args: ...`).
pub fn decode_task_config(bytes: &[u8]) -> Result<RawTaskConfig, ConfigErrors> {
    let _ = bytes;
    todo!("core helper")
}
