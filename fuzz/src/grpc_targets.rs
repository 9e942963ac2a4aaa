//! Fuzz harness bodies for the grpc crate's parsers: the hclspec schema language (protobuf
//! `Spec` trees → the runner's spec → its cty-msgpack encoder), HCL config bodies encoded
//! against our own ConfigSchema/TaskConfigSchema and decoded back by the core, and the local
//! runner's job files.
//!
//! Shared by the libFuzzer targets and the stable replay in `grpc/tests/fuzz_replay.rs` (via
//! `#[path]`, next to `targets.rs`), so it uses only `pledge_grpc`, `pledge_core`, `hcl`,
//! `prost` and its sibling module `targets`.
//!
//! Invariants checked:
//! - the runner's encoder never emits bytes the core cannot read as msgpack, and a body it
//!   accepts under our schema decodes in the core with exactly the strings, lists and bools
//!   the body held (number attributes may still be rejected: `1.5` is no pids limit);
//! - every encoder error names a field under its root;
//! - hclspec trees round-trip through protobuf, and any tree (however odd) converts or errors;
//! - a job file parses or errors, and every pledge task's config goes through the same checks.

use super::targets;
use pledge_core::config::{decode_plugin_config, decode_task_config};
use pledge_core::{ConfigErrors, RawTaskConfig};
use pledge_grpc::pb::hclspec;
use pledge_grpc::runner::encode::{decode_body, encode_body, Cty, EncodeErrors};
use pledge_grpc::runner::env::TaskEnv;
use pledge_grpc::runner::job::{parse_go_duration, Job};
use pledge_grpc::runner::spec::Spec;
use pledge_grpc::schema;
use prost::Message;
use std::collections::BTreeMap;

/// Attributes whose values the core may reject after a successful encode (cty numbers that
/// are not whole, negative or out of range).
const NUMERIC: &[&str] = &["pids_limit", "rlimit_", "bind_ports", "connect_ports"];

/// An HCL body (the text of a `config { }` block) → the runner's encoder under our task and
/// plugin schemas → the core's decoder, validation and plan.
pub fn hcl_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(body) = hcl::parse(&text) else {
        return;
    };
    check_task_body(&body);
    check_plugin_body(&body);
}

/// Encodes `body` as the runner (and Nomad) would for StartTask, and checks the core reads
/// back what the body said.
pub fn check_task_body(body: &hcl::Body) {
    let spec = task_spec();
    let bytes = match encode_body(&spec, body, "config") {
        Ok(bytes) => bytes,
        Err(errs) => return check_encode_errors(&errs, "config"),
    };
    let value = decode_body(&spec, body, "config")
        .unwrap_or_else(|e| panic!("encode_body accepted what decode_body rejects: {e}"));
    match decode_task_config(&bytes) {
        Ok(raw) => compare_task(&value, &raw),
        Err(e) => only_numeric_errors(&e, "config"),
    }
    targets::task_config(&bytes);
}

fn check_plugin_body(body: &hcl::Body) {
    let spec = Spec::from_proto(&schema::plugin_config_spec())
        .unwrap_or_else(|e| panic!("our ConfigSchema does not convert: {e}"));
    match encode_body(&spec, body, "plugin") {
        Ok(bytes) => {
            if let Err(e) = decode_plugin_config(&bytes) {
                only_numeric_errors(&e, "plugin");
            }
            targets::plugin_config(&bytes);
        }
        Err(errs) => check_encode_errors(&errs, "plugin"),
    }
}

fn task_spec() -> Spec {
    Spec::from_proto(&schema::task_config_spec())
        .unwrap_or_else(|e| panic!("our TaskConfigSchema does not convert: {e}"))
}

/// A schema-conformant encoding can only fail in the core on number values.
fn only_numeric_errors(e: &ConfigErrors, root: &str) {
    for err in &e.0 {
        let attr = err
            .field
            .strip_prefix(root)
            .and_then(|f| f.strip_prefix('.'))
            .unwrap_or("");
        assert!(
            NUMERIC.iter().any(|n| attr.starts_with(n)),
            "the core rejects the runner's encoding of a non-numeric attribute: {err}"
        );
    }
}

/// The strings, string lists and bools the body held are exactly what the core decoded.
fn compare_task(value: &Cty, raw: &RawTaskConfig) {
    let Cty::Map(attrs) = value else {
        panic!("an object spec decoded to {value:?}");
    };
    let strings: [(&str, &Option<String>); 6] = [
        ("command", &raw.command),
        ("promises", &raw.promises),
        ("importance", &raw.importance),
        ("pid_mode", &raw.pid_mode),
        ("ipc_mode", &raw.ipc_mode),
        ("sandbox_mode", &raw.sandbox_mode),
    ];
    for (k, got) in strings {
        let want = match attrs.get(k) {
            Some(Cty::String(s)) => Some(s.clone()),
            Some(Cty::Null) | None => None,
            other => panic!("{k} encoded as {other:?}"),
        };
        assert_eq!(
            &want, got,
            "config.{k} changed between the runner and the core"
        );
    }
    for (k, got) in [("args", &raw.args), ("unveil", &raw.unveil)] {
        let want = match attrs.get(k) {
            Some(Cty::List(items)) => Some(
                items
                    .iter()
                    .map(|i| match i {
                        Cty::String(s) => s.clone(),
                        other => panic!("{k} item encoded as {other:?}"),
                    })
                    .collect::<Vec<_>>(),
            ),
            Some(Cty::Null) | None => None,
            other => panic!("{k} encoded as {other:?}"),
        };
        assert_eq!(
            &want, got,
            "config.{k} changed between the runner and the core"
        );
    }
    for (k, got) in [
        ("kill_on_violation", raw.kill_on_violation),
        ("net_bind_service", raw.net_bind_service),
    ] {
        let want = match attrs.get(k) {
            Some(Cty::Bool(b)) => Some(*b),
            Some(Cty::Null) | None => None,
            other => panic!("{k} encoded as {other:?}"),
        };
        assert_eq!(
            want, got,
            "config.{k} changed between the runner and the core"
        );
    }
}

fn check_encode_errors(errs: &EncodeErrors, root: &str) {
    assert!(!errs.0.is_empty(), "empty EncodeErrors");
    for e in &errs.0 {
        let rest = e
            .field
            .strip_prefix(root)
            .unwrap_or_else(|| panic!("encode error field {:?} is not under {root:?}", e.field));
        assert!(
            rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
            "encode error field {:?}",
            e.field
        );
        assert!(
            !e.reason.trim().is_empty(),
            "encode error without reason: {e:?}"
        );
    }
}

/// Bodies every fuzzed schema is tried on: hack/http's config, nothing, nested blocks.
const BODIES: &[&str] = &[
    "command = \"python3\"\nargs = [\"-m\", \"http.server\", \"8181\"]\npromises = \"stdio rpath inet\"\nunveil = [\"r:/srv\"]\nimportance = \"low\"\n",
    "",
    "a = 1\nb = \"x\"\nc = [1, 2.5, \"3\"]\nd = { k = true }\nblk { x = 1 }\nblk { x = 2 }\nlab \"one\" \"two\" { y = null }\n",
];

/// Protobuf bytes of an hclspec `Spec` → the runner's spec → the encoder on a few bodies.
pub fn hclspec(data: &[u8]) {
    let Ok(proto) = hclspec::Spec::decode(data) else {
        return;
    };
    let again = hclspec::Spec::decode(proto.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("re-encoded spec does not decode: {e}"));
    assert_eq!(again, proto, "hclspec protobuf round trip");
    let Ok(spec) = Spec::from_proto(&proto) else {
        return;
    };
    for text in BODIES {
        let Ok(body) = hcl::parse(text) else {
            panic!("fixed body does not parse: {text:?}");
        };
        match encode_body(&spec, &body, "config") {
            Ok(bytes) => {
                // Whatever the schema, the bytes are one well-formed msgpack value.
                if let Err(e) = decode_task_config(&bytes) {
                    for err in &e.0 {
                        assert!(
                            !err.reason.starts_with("malformed msgpack"),
                            "the encoder wrote malformed msgpack: {err}"
                        );
                    }
                }
            }
            Err(errs) => check_encode_errors(&errs, "config"),
        }
    }
}

/// A job file, as `nomad-pledge-driver run` reads it: parse, then for every pledge task
/// interpolate its config with a task environment and encode it as StartTask would.
pub fn job_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // kill_timeout and friends are Go durations; the parser must take any text.
    let _ = parse_go_duration(&text);
    let Ok(job) = Job::parse(&text, "fuzz.hcl") else {
        return;
    };
    let env = task_env();
    for (_, task) in job.tasks() {
        if task.driver != "pledge" {
            continue;
        }
        if let Ok(body) = env.eval_body(&task.config, "config") {
            check_task_body(&body);
        }
    }
}

/// A task environment like the runner builds for hack/http.
pub fn task_env() -> TaskEnv {
    let base = "/tmp/nomad-pledge-run/alloc/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30";
    let env: BTreeMap<String, String> = [
        ("NOMAD_TASK_DIR", format!("{base}/http/local")),
        ("NOMAD_ALLOC_DIR", format!("{base}/alloc")),
        ("NOMAD_SECRETS_DIR", format!("{base}/http/secrets")),
        (
            "NOMAD_ALLOC_ID",
            "5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30".into(),
        ),
        ("NOMAD_TASK_NAME", "http".into()),
        ("NOMAD_PORT_http", "8181".into()),
        ("NOMAD_ADDR_http", "127.0.0.1:8181".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let node_attrs = [("node.unique.name", "fuzz"), ("attr.kernel.name", "linux")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TaskEnv { env, node_attrs }
}

/// The protobuf encodings of our own schemas, for seeding the `hclspec` corpus.
pub fn schema_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "task_config_spec",
            schema::task_config_spec().encode_to_vec(),
        ),
        (
            "plugin_config_spec",
            schema::plugin_config_spec().encode_to_vec(),
        ),
    ]
}
