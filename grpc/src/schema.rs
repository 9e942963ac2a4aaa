//! The hclspec trees Nomad decodes configs with: ConfigSchema (the agent's plugin block) and
//! TaskConfigSchema (a job's `config {}`). Every attribute is optional at the HCL level except
//! `command`; unset attributes arrive as nil and the core applies defaults and validation, so
//! errors are reported by one validator, all at once. Attribute names are unit-tested against
//! the serde fields of `RawPluginConfig` / `RawTaskConfig`.

use crate::pb::hclspec::{spec::Block, Attr, Object, Spec};

/// Plugin config attributes: (name, HCL type).
pub const PLUGIN_ATTRS: &[(&str, &str)] = &[
    ("pledge_executable", "string"),
    ("state_dir", "string"),
    ("cpu_hard_limit", "bool"),
    ("pids_limit", "number"),
    ("allow_net_bind_service", "bool"),
    ("unveil_best_effort", "bool"),
    ("rlimit_nofile", "number"),
    ("rlimit_nproc", "number"),
    ("rlimit_fsize", "number"),
    ("rlimit_cpu", "number"),
    ("rlimit_as", "number"),
];

/// Task config attributes: (name, HCL type, required).
pub const TASK_ATTRS: &[(&str, &str, bool)] = &[
    ("command", "string", true),
    ("args", "list(string)", false),
    ("promises", "string", false),
    ("unveil", "list(string)", false),
    ("importance", "string", false),
    ("pid_mode", "string", false),
    ("ipc_mode", "string", false),
    ("bind_ports", "list(number)", false),
    ("connect_ports", "list(number)", false),
    ("sandbox_mode", "string", false),
    ("kill_on_violation", "bool", false),
    ("net_bind_service", "bool", false),
    ("pids_limit", "number", false),
    ("rlimit_nofile", "number", false),
    ("rlimit_nproc", "number", false),
    ("rlimit_fsize", "number", false),
    ("rlimit_cpu", "number", false),
    ("rlimit_as", "number", false),
];

fn attr(name: &str, ty: &str, required: bool) -> Spec {
    Spec {
        block: Some(Block::Attr(Attr {
            name: name.to_owned(),
            r#type: ty.to_owned(),
            required,
        })),
    }
}

fn object<'a>(attrs: impl Iterator<Item = (&'a str, &'a str, bool)>) -> Spec {
    Spec {
        block: Some(Block::Object(Object {
            attributes: attrs
                .map(|(n, t, r)| (n.to_owned(), attr(n, t, r)))
                .collect(),
        })),
    }
}

/// ConfigSchema's spec.
pub fn plugin_config_spec() -> Spec {
    object(PLUGIN_ATTRS.iter().map(|&(n, t)| (n, t, false)))
}

/// TaskConfigSchema's spec.
pub fn task_config_spec() -> Spec {
    object(TASK_ATTRS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pledge_core::{RawPluginConfig, RawTaskConfig};
    use serde::de::{self, Deserialize, Visitor};

    /// A deserializer that only records the field list serde derives for a struct.
    struct FieldNames(Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> de::Deserializer<'de> for &mut FieldNames {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let mut names = FieldNames(Vec::new());
        let _ = T::deserialize(&mut names);
        let mut v = names.0;
        v.sort_unstable();
        v
    }

    fn spec_names(spec: &Spec) -> Vec<String> {
        match &spec.block {
            Some(Block::Object(o)) => {
                for (k, v) in &o.attributes {
                    match &v.block {
                        Some(Block::Attr(a)) => {
                            assert_eq!(&a.name, k, "attribute name must equal its key");
                            assert!(!a.r#type.is_empty(), "{k} needs a type");
                        }
                        other => panic!("{k}: expected Attr, got {other:?}"),
                    }
                }
                let mut names: Vec<String> = o.attributes.keys().cloned().collect();
                names.sort_unstable();
                names
            }
            other => panic!("expected Object root, got {other:?}"),
        }
    }

    #[test]
    fn task_schema_names_equal_raw_task_config_fields() {
        let fields = fields_of::<RawTaskConfig>();
        assert!(fields.contains(&"command"), "field capture works");
        assert_eq!(spec_names(&task_config_spec()), fields);
    }

    #[test]
    fn plugin_schema_names_equal_raw_plugin_config_fields() {
        let fields = fields_of::<RawPluginConfig>();
        assert!(fields.contains(&"state_dir"), "field capture works");
        assert_eq!(spec_names(&plugin_config_spec()), fields);
    }

    #[test]
    fn only_command_is_required() {
        let required: Vec<&str> = TASK_ATTRS.iter().filter(|a| a.2).map(|a| a.0).collect();
        assert_eq!(required, vec!["command"]);
    }
}
