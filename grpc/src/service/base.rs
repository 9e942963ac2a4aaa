//! `hashicorp.nomad.plugins.base.proto.BasePlugin`: identity, config schema, SetConfig.

use crate::pb::base::{
    base_plugin_server::BasePlugin, ConfigSchemaRequest, ConfigSchemaResponse, PluginInfoRequest,
    PluginInfoResponse, PluginType, SetConfigRequest, SetConfigResponse,
};
use crate::schema;
use crate::shell::Shell;
use crate::status::RpcError;
use pledge_core::{config::decode_plugin_config, DriverError, RawPluginConfig, Reply, Request};
use tonic::{Request as TonicRequest, Response, Status};

/// The driver's name in jobs (`driver = "pledge"`) and node attributes.
pub const DRIVER_NAME: &str = "pledge";
/// The only driver API version Nomad 1.6–2.0 speaks.
pub const DRIVER_API_VERSION: &str = "v0.1.0";

/// The BasePlugin service.
#[derive(Debug)]
pub struct BaseService<B> {
    shell: Shell<B>,
}

impl<B> BaseService<B> {
    /// Serves BasePlugin through `shell`.
    pub fn new(shell: Shell<B>) -> Self {
        Self { shell }
    }
}

/// PluginInfo's answer.
pub fn plugin_info() -> PluginInfoResponse {
    PluginInfoResponse {
        r#type: PluginType::Driver as i32,
        plugin_api_versions: vec![DRIVER_API_VERSION.to_owned()],
        plugin_version: env!("CARGO_PKG_VERSION").to_owned(),
        name: DRIVER_NAME.to_owned(),
    }
}

/// Decodes SetConfig's msgpack into the raw plugin config; empty bytes mean "no block".
pub fn decode_set_config(msgpack: &[u8]) -> Result<RawPluginConfig, RpcError> {
    if msgpack.is_empty() {
        return Ok(RawPluginConfig::default());
    }
    decode_plugin_config(msgpack).map_err(|e| RpcError::from(DriverError::InvalidConfig(e)))
}

#[tonic::async_trait]
impl<B: 'static> BasePlugin for BaseService<B> {
    async fn plugin_info(
        &self,
        _req: TonicRequest<PluginInfoRequest>,
    ) -> Result<Response<PluginInfoResponse>, Status> {
        Ok(Response::new(plugin_info()))
    }

    async fn config_schema(
        &self,
        _req: TonicRequest<ConfigSchemaRequest>,
    ) -> Result<Response<ConfigSchemaResponse>, Status> {
        Ok(Response::new(ConfigSchemaResponse {
            spec: Some(schema::plugin_config_spec()),
        }))
    }

    async fn set_config(
        &self,
        req: TonicRequest<SetConfigRequest>,
    ) -> Result<Response<SetConfigResponse>, Status> {
        let req = req.into_inner();
        if !req.plugin_api_version.is_empty()
            && req.plugin_api_version.trim_start_matches('v') != "0.1.0"
        {
            tracing::warn!(version = %req.plugin_api_version, "unexpected plugin API version");
        }
        let raw = decode_set_config(&req.msgpack_config).map_err(|e| {
            tracing::error!(error = %e, "SetConfig rejected");
            Status::from(e)
        })?;
        match self.shell.call(Request::SetConfig(Box::new(raw))).await {
            Ok(Reply::Configured(cfg)) => {
                tracing::info!(
                    nomad_config = req.nomad_config.is_some(),
                    external_pledge = cfg.pledge_executable.is_some(),
                    "plugin configured"
                );
                Ok(Response::new(SetConfigResponse {}))
            }
            Ok(_) => Err(RpcError::UnexpectedReply("SetConfig").into()),
            Err(e) => {
                tracing::error!(error = %e, "SetConfig rejected");
                Err(RpcError::Shell(e).into())
            }
        }
    }
}
