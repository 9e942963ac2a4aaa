//! Configuration model: the raw shapes Nomad sends (decoded by the grpc crate from cty-msgpack)
//! and the validated values the rest of the driver uses. Validation reports every error at once.

pub mod number;
pub mod plugin;
pub mod task;

pub use number::CtyNumber;
pub use plugin::{PluginConfig, RawPluginConfig, RlimitDefaults};
pub use task::{Importance, NamespaceMode, RawTaskConfig, SandboxMode, TaskConfig};

pub mod decode;
pub use decode::{decode_plugin_config, decode_task_config};
