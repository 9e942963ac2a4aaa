//! Decoding of cty-msgpack bytes (SetConfig's `msgpack_config`, StartTask's
//! `msgpack_driver_config`) into the raw config shapes. rmp-serde is pure (no IO), so the one
//! decoder lives here and the grpc crate, the local runner and the fuzzers all share it.
//!
//! How: the bytes are read into an [`rmpv::Value`] first (depth-limited, whole input consumed),
//! then deserialized into the raw struct. When that fails, every attribute is tried on its own,
//! so each bad attribute is reported with its own path (`config.args[1]: invalid type: ...`),
//! not just the first one serde stumbled on.
//!
//! go-cty's encoding (protocol.md §3.3): a map with every schema key, nil for unset attributes
//! (every raw field is an `Option`), numbers as int, float64 or decimal string
//! ([`super::CtyNumber`]). Empty bytes mean "no config" and decode to all-unset.

use crate::config::{RawPluginConfig, RawTaskConfig};
use crate::error::{ConfigError, ConfigErrors};
use serde::de::DeserializeOwned;

/// Largest config accepted, in bytes; Nomad's are a few KiB.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Deepest nesting accepted; the schemas are at most three levels deep.
const MAX_DEPTH: usize = 32;

/// Decodes the plugin config; errors name the field (`plugin.pids_limit: ...`).
pub fn decode_plugin_config(bytes: &[u8]) -> Result<RawPluginConfig, ConfigErrors> {
    decode_object(bytes, "plugin")
}

/// Decodes a task's `config {}` block; errors name the field (`config.args: ...`).
pub fn decode_task_config(bytes: &[u8]) -> Result<RawTaskConfig, ConfigErrors> {
    decode_object(bytes, "config")
}

/// Decodes a cty object into `T`, naming fields below `root`.
fn decode_object<T: DeserializeOwned + Default>(
    bytes: &[u8],
    root: &str,
) -> Result<T, ConfigErrors> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigErrors::one(ConfigError::new(
            root,
            None,
            format!(
                "encoded config is {} bytes; at most {MAX_CONFIG_BYTES} are accepted",
                bytes.len()
            ),
        )));
    }
    // rmpv reads the reserved marker 0xc1 as nil; a config that is nothing but it is garbage.
    if bytes[0] == 0xc1 {
        return Err(ConfigErrors::one(ConfigError::new(
            root,
            None,
            "malformed msgpack: reserved marker 0xc1",
        )));
    }
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH).map_err(|e| {
        ConfigErrors::one(ConfigError::new(
            root,
            None,
            format!("malformed msgpack: {e}"),
        ))
    })?;
    if !rest.is_empty() {
        return Err(ConfigErrors::one(ConfigError::new(
            root,
            None,
            format!(
                "malformed msgpack: {} trailing bytes after the config map",
                rest.len()
            ),
        )));
    }
    let entries = match value {
        rmpv::Value::Map(entries) => entries,
        rmpv::Value::Nil => return Ok(T::default()),
        other => {
            return Err(ConfigErrors::one(ConfigError::new(
                root,
                None,
                format!("expected a map of attributes, got {}", kind(&other)),
            )))
        }
    };
    let whole = rmpv::Value::Map(entries.clone());
    let first = match serde_path_to_error::deserialize::<_, T>(whole) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // Find every bad attribute: each one alone must decode into T (all fields are optional).
    let mut errors = Vec::new();
    for (key, val) in entries {
        let name = match &key {
            rmpv::Value::String(s) => match s.as_str() {
                Some(s) => s.to_string(),
                None => {
                    errors.push(ConfigError::new(root, None, "attribute name is not UTF-8"));
                    continue;
                }
            },
            other => {
                errors.push(ConfigError::new(
                    root,
                    None,
                    format!("attribute name must be a string, got {}", kind(other)),
                ));
                continue;
            }
        };
        let single = rmpv::Value::Map(vec![(key, val)]);
        if let Err(e) = serde_path_to_error::deserialize::<_, T>(single) {
            errors.push(path_error(root, &name, &e));
        }
    }
    if errors.is_empty() {
        // Each attribute is fine alone, so the map as a whole is wrong (a repeated key).
        errors.push(path_error(root, "", &first));
    }
    Err(ConfigErrors(errors))
}

/// `root.path: message`, where the path comes from serde (`args[1]`) or, for errors raised on
/// the map itself (unknown or repeated key), from the attribute name.
fn path_error(
    root: &str,
    name: &str,
    e: &serde_path_to_error::Error<rmpv::ext::Error>,
) -> ConfigError {
    let path = e.path().to_string();
    let field = if path == "." || path.is_empty() {
        if name.is_empty() {
            root.to_string()
        } else {
            format!("{root}.{}", crate::error::shorten(name))
        }
    } else {
        // The path holds the attribute name as sent: an unknown 1 MB key is a 1 MB path.
        format!("{root}.{}", crate::error::shorten(&path))
    };
    let msg = e.inner().to_string();
    let msg = msg
        .strip_prefix("error while decoding value: ")
        .unwrap_or(&msg);
    ConfigError::new(field, None, cap_message(msg))
}

/// Serde messages quote the offending value; a 1 MB string must not make a 1 MB error.
fn cap_message(msg: &str) -> String {
    const MAX: usize = 300;
    if msg.chars().count() <= MAX {
        return msg.to_string();
    }
    let head: String = msg.chars().take(MAX).collect();
    format!("{head}...")
}

/// A short name for a msgpack value's type, for error messages.
fn kind(v: &rmpv::Value) -> &'static str {
    match v {
        rmpv::Value::Nil => "nil",
        rmpv::Value::Boolean(_) => "a bool",
        rmpv::Value::Integer(_) => "an integer",
        rmpv::Value::F32(_) | rmpv::Value::F64(_) => "a float",
        rmpv::Value::String(_) => "a string",
        rmpv::Value::Binary(_) => "binary data",
        rmpv::Value::Array(_) => "a list",
        rmpv::Value::Map(_) => "a map",
        rmpv::Value::Ext(..) => "a msgpack extension (an unknown cty value?)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    }

    #[test]
    fn raw_exec_worked_example_bytes_decode() {
        // protocol.md §3.4, adapted to our schema: sorted keys, nils for unset attributes.
        let v = map(vec![
            ("args", Value::Array(vec![Value::from("10")])),
            ("command", Value::from("/bin/sleep")),
            ("importance", Value::Nil),
            ("promises", Value::Nil),
            ("unveil", Value::Nil),
        ]);
        let raw = decode_task_config(&enc(&v)).unwrap();
        assert_eq!(raw.command.as_deref(), Some("/bin/sleep"));
        assert_eq!(raw.args, Some(vec!["10".to_string()]));
        assert_eq!(raw.promises, None);
    }

    #[test]
    fn numbers_as_int_float_and_string() {
        let v = map(vec![
            ("pids_limit", Value::from(300)),
            ("rlimit_nofile", Value::F64(1024.0)),
            ("rlimit_cpu", Value::from("60")),
        ]);
        let raw = decode_task_config(&enc(&v)).unwrap();
        assert_eq!(raw.pids_limit.map(|n| n.0), Some(300));
        assert_eq!(raw.rlimit_nofile.map(|n| n.0), Some(1024));
        assert_eq!(raw.rlimit_cpu.map(|n| n.0), Some(60));
    }

    #[test]
    fn wrong_type_names_every_bad_field() {
        let v = map(vec![
            ("args", Value::from("not a list")),
            ("command", Value::from("/bin/true")),
            ("importance", Value::from(5)),
        ]);
        let errs = decode_task_config(&enc(&v)).unwrap_err();
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["config.args", "config.importance"], "{errs}");
        assert!(
            errs.to_string().contains("config.args: invalid type"),
            "{errs}"
        );
    }

    #[test]
    fn nested_element_path_is_named() {
        let v = map(vec![(
            "args",
            Value::Array(vec![Value::from("a"), Value::from(7)]),
        )]);
        let errs = decode_task_config(&enc(&v)).unwrap_err();
        assert_eq!(errs.0[0].field, "config.args[1]", "{errs}");
    }

    #[test]
    fn unknown_attribute_and_bad_number_for_plugin() {
        let v = map(vec![
            ("bogus", Value::from(true)),
            ("pids_limit", Value::from("many")),
        ]);
        let errs = decode_plugin_config(&enc(&v)).unwrap_err();
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["plugin.bogus", "plugin.pids_limit"], "{errs}");
        assert!(errs.0[0].reason.contains("unknown field"), "{errs}");
    }

    #[test]
    fn malformed_truncated_trailing_and_non_map() {
        let good = enc(&map(vec![("command", Value::from("/bin/true"))]));
        let e = decode_task_config(&good[..good.len() - 2]).unwrap_err();
        assert!(e.to_string().contains("malformed msgpack"), "{e}");
        let mut trailing = good.clone();
        trailing.push(0xc0);
        let e = decode_task_config(&trailing).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
        let e = decode_task_config(&enc(&Value::from(5))).unwrap_err();
        assert!(e.to_string().contains("expected a map"), "{e}");
        let e = decode_task_config(&[0xc1]).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
    }

    #[test]
    fn non_string_key_and_repeated_key() {
        let v = Value::Map(vec![(Value::from(1), Value::from("x"))]);
        let e = decode_task_config(&enc(&v)).unwrap_err();
        assert!(
            e.to_string().contains("attribute name must be a string"),
            "{e}"
        );
        let v = map(vec![
            ("command", Value::from("/a")),
            ("command", Value::from("/b")),
        ]);
        let e = decode_task_config(&enc(&v)).unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
    }

    #[test]
    fn deep_nesting_and_huge_input_are_errors() {
        let mut deep = vec![0x91u8; 10_000];
        deep.push(0xc0);
        let e = decode_task_config(&deep).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        let huge = vec![0u8; MAX_CONFIG_BYTES + 1];
        let e = decode_task_config(&huge).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }

    #[test]
    fn empty_bytes_and_nil_mean_unset() {
        assert_eq!(
            decode_plugin_config(&[]).unwrap(),
            RawPluginConfig::default()
        );
        assert_eq!(
            decode_task_config(&[0xc0]).unwrap(),
            RawTaskConfig::default()
        );
    }
}
