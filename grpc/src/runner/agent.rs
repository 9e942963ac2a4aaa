//! Reads the plugin's config block from a Nomad agent config file (`hack/client.hcl`):
//! `plugin "nomad-pledge-driver" { config { … } }`, the block Nomad selects by the plugin's file
//! name in plugin_dir.

use super::job::JobError;
use std::path::Path;

/// The plugin's config-name in agent configs (the binary's file name).
pub const PLUGIN_CONFIG_NAME: &str = "nomad-pledge-driver";

/// The body of `plugin "nomad-pledge-driver" { config { … } }` in `path` (empty when the block
/// has no `config`), evaluated as a constant (Nomad passes no variables to plugin configs).
pub fn plugin_config_body(path: &Path) -> Result<hcl::Body, JobError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
        path: origin.clone(),
        source,
    })?;
    parse(&text, &origin)
}

/// As [`plugin_config_body`], from text.
pub fn parse(text: &str, origin: &str) -> Result<hcl::Body, JobError> {
    let body = hcl::parse(text).map_err(|source| JobError::Syntax {
        path: origin.to_owned(),
        source,
    })?;
    let blocks: Vec<&hcl::Block> = body
        .blocks()
        .filter(|b| {
            b.identifier.as_str() == "plugin"
                && b.labels.first().map(hcl::BlockLabel::as_str) == Some(PLUGIN_CONFIG_NAME)
        })
        .collect();
    let invalid = |reason: String| JobError::Invalid {
        field: format!("{origin}: plugin {PLUGIN_CONFIG_NAME:?}"),
        reason,
    };
    let [plugin] = blocks.as_slice() else {
        return Err(invalid(format!(
            "expected exactly one such block, found {}",
            blocks.len()
        )));
    };
    let configs: Vec<&hcl::Block> = plugin
        .body
        .blocks()
        .filter(|b| b.identifier.as_str() == "config")
        .collect();
    let config = match configs.as_slice() {
        [] => hcl::Body::default(),
        [c] => c.body.clone(),
        _ => return Err(invalid("more than one config block".into())),
    };
    super::hcl_eval::evaluate(&config, &hcl::eval::Context::new())
        .map_err(|e| invalid(format!("config must be constant: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_plugin_block_by_its_config_name() {
        let body = parse(
            r#"
plugin_dir = "/tmp/plugins"
plugin "other" {
  config {
    x = 1
  }
}
plugin "nomad-pledge-driver" {
  config {
    pids_limit = 512
  }
}
"#,
            "client.hcl",
        )
        .expect("parse");
        let a = body.attributes().next().expect("attr");
        assert_eq!(a.key.as_str(), "pids_limit");
        let e = parse("plugin \"other\" {}", "c.hcl").expect_err("missing");
        assert!(e.to_string().contains("found 0"), "{e}");
    }
}
