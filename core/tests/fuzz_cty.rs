//! The stable, time-boxed fuzz pass (issue 7) that runs with `cargo test`:
//! - replay of every committed fuzz corpus entry and crash artifact (`fuzz/corpus/<target>/`,
//!   `fuzz/artifacts/<target>/`) through the same harness the libFuzzer targets use;
//! - the go-cty seeds (bytes from go-cty's real encoder, `fuzz/gocty/`) decode as Nomad means;
//! - proptest over msgpack values shaped like go-cty's output (every schema key, nil for unset
//!   attributes, ints of every width, floats, numeric strings, nested lists and maps, wrong
//!   types, huge strings, NUL, unicode) and over mutated seeds: no panic, every error names a
//!   field.
//!
//! Bounded by case counts, not by time. For longer, coverage-guided runs see fuzz/run.sh.

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod harness;

use pledge_core::config::{decode_plugin_config, decode_task_config};
use pledge_core::{Importance, PluginConfig, Promise, RawPluginConfig, RawTaskConfig};
use proptest::prelude::*;
use rmpv::Value;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The harness for a fuzz target directory name, if the core owns it.
fn core_target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "plugin_config" => harness::plugin_config,
        "task_config" => harness::task_config,
        "promises" => harness::promises,
        "unveil" => harness::unveil,
        _ => return None,
    })
}

/// Targets whose parsers live in the grpc crate; their corpora are replayed by its tests.
const GRPC_TARGETS: &[&str] = &["hcl_config", "hclspec", "job_file"];

/// Every file under `fuzz/<kind>/<target>/`, as (target, path).
fn entries(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return out;
    };
    for target in targets.flatten() {
        let name = target.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(target.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if p.is_file() && !hidden {
                out.push((name.clone(), p));
            }
        }
    }
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (target, path) in entries(kind) {
        let Some(run) = core_target(&target) else {
            assert!(
                GRPC_TARGETS.contains(&target.as_str()),
                "fuzz/{kind}/{target} has no replay: add the target to core_target or GRPC_TARGETS"
            );
            continue;
        };
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{} ({} bytes) panicked",
            path.display(),
            data.len()
        );
        n += 1;
    }
    n
}

#[test]
fn every_committed_corpus_entry_replays_cleanly() {
    let n = replay("corpus");
    for target in ["plugin_config", "task_config", "promises", "unveil"] {
        let count = entries("corpus")
            .iter()
            .filter(|(t, _)| t == target)
            .count();
        assert!(
            count >= 5,
            "fuzz/corpus/{target} has {count} entries; the seeds are missing"
        );
    }
    println!("replayed {n} corpus entries");
}

#[test]
fn every_committed_crash_artifact_replays_cleanly() {
    // Empty until the fuzzer finds something; each fixed crash is committed here for good.
    let n = replay("artifacts");
    println!("replayed {n} crash artifacts");
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let p = fuzz_dir()
        .join("corpus")
        .join(target)
        .join(format!("gocty-{name}.msgpack"));
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run fuzz/gocty/generate.sh)", p.display()))
}

#[test]
fn gocty_http_seed_decodes_and_validates_as_the_job_says() {
    let raw = decode_task_config(&seed("task_config", "http")).expect("go-cty bytes decode");
    assert_eq!(raw.command.as_deref(), Some("python3"));
    let (plugin, host) = harness::environments().remove(0);
    let cfg = raw.validate(&plugin, &host).expect("hack/http validates");
    let promises: Vec<Promise> = cfg.promises.iter().collect();
    assert_eq!(promises, [Promise::Stdio, Promise::Rpath, Promise::Inet]);
    assert_eq!(cfg.importance, Importance::Low);
    assert!(
        cfg.unveil.iter().any(|r| r.path.ends_with("http/local")),
        "{:?}",
        cfg.unveil
    );
    assert_eq!(cfg.args[..2], ["-m", "http.server"]);
}

#[test]
fn every_gocty_seed_matches_the_raw_struct_keys() {
    // go-cty sends every schema key; with deny_unknown_fields a drift between fuzz/gocty's
    // spec and the structs shows up as an unknown-attribute error here.
    for (target, path) in entries("corpus") {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !name.starts_with("gocty-") {
            continue;
        }
        let data = std::fs::read(&path).unwrap_or_default();
        let errors = match target.as_str() {
            "task_config" => decode_task_config(&data).err(),
            "plugin_config" => decode_plugin_config(&data).err(),
            _ => continue,
        };
        if let Some(e) = errors {
            for err in &e.0 {
                assert!(
                    !err.reason.contains("unknown field"),
                    "{name}: schema drift between fuzz/gocty/main.go and the struct: {err}"
                );
            }
        }
    }
}

#[test]
fn gocty_number_encodings_reach_the_right_fields() {
    // 0.1 arrives as the string "0.1", 1.5 as float64, 2^64-1 as a string (protocol.md §3.3).
    let e = decode_task_config(&seed("task_config", "numbers-decimal"))
        .expect_err("fractional limits are rejected");
    for field in [
        "config.pids_limit",
        "config.rlimit_nofile",
        "config.rlimit_as",
    ] {
        assert!(
            e.for_field(field).next().is_some(),
            "no error for {field}: {e}"
        );
    }
    assert!(
        e.for_field("config.rlimit_fsize").next().is_none(),
        "300 is a fine limit: {e}"
    );
    let raw = decode_plugin_config(&seed("plugin_config", "every-option")).expect("decodes");
    let cfg = raw.validate().expect("validates");
    assert_eq!(cfg.pids_limit, Some(PluginConfig::DEFAULT_PIDS_LIMIT));
    assert_eq!(cfg.rlimits.nproc, None, "0 means unlimited");
}

// ---- generators -------------------------------------------------------------------------

/// Words operators and Nomad put in these strings, so generated configs often get past
/// decoding into validation and planning.
const WORDS: &[&str] = &[
    "stdio",
    "rpath",
    "wpath",
    "cpath",
    "inet",
    "dns",
    "exec",
    "proc",
    "prot_exec",
    "tmppath",
    "unveil",
    "STDIO",
    "inett",
    "low",
    "lowest",
    "high",
    "normal",
    "host",
    "private",
    "enforce",
    "complain",
    "r:",
    "rw:",
    "rwxc:",
    "x:",
    "q:",
    "/",
    "/usr",
    "/tmp/",
    "/etc/mime.types",
    "..",
    ".",
    "//",
    "a:b",
    "python3",
    "-m",
    "http.server",
    "${NOMAD_TASK_DIR}",
    "\0",
    "ü",
    "😀",
    " ",
    ",",
    "\t",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(WORDS), 0..8).prop_map(|w| w.concat()),
        2 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => (prop::sample::select(WORDS), 1usize..3_000).prop_map(|(w, n)| w.repeat(n)),
    ]
}

fn numeric_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,25}",
        "-?[0-9]{1,6}\\.[0-9]{1,6}",
        "-?[0-9]\\.[0-9]{0,3}e[+-]?[0-9]{1,4}",
        Just("18446744073709551615".to_string()),
        Just("9223372036854775808".to_string()),
        Just(" 5 ".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..70_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::F64),
        prop::sample::select(vec![
            0.5,
            1.5,
            -2.75,
            9.223_372_036_854_776e18,
            f64::INFINITY,
            f64::NAN,
            -0.0
        ])
        .prop_map(Value::F64),
        any::<f32>().prop_map(Value::F32),
        numeric_string().prop_map(Value::from),
    ]
}

/// Any msgpack value, nested a few levels: the wrong-type cases.
fn anything() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        number(),
        text().prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
        // go-cty's unknown value: fixext1 type 0.
        Just(Value::Ext(0, vec![0])),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text().prop_map(Value::from), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// The cty type of each attribute as our schemas declare it.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    StrList,
    Num,
    NumList,
    Bool,
}

fn shape_of(key: &str) -> Shape {
    match key {
        "args" | "unveil" => Shape::StrList,
        "bind_ports" | "connect_ports" => Shape::NumList,
        "kill_on_violation"
        | "net_bind_service"
        | "cpu_hard_limit"
        | "allow_net_bind_service"
        | "unveil_best_effort" => Shape::Bool,
        k if k == "pids_limit" || k.starts_with("rlimit_") => Shape::Num,
        _ => Shape::Str,
    }
}

/// A value for an attribute: mostly nil or well-typed (as go-cty sends), sometimes wrong.
fn attribute(shape: Shape) -> BoxedStrategy<Value> {
    let typed: BoxedStrategy<Value> = match shape {
        Shape::Str => text().prop_map(Value::from).boxed(),
        Shape::StrList => prop::collection::vec(text().prop_map(Value::from), 0..12)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Num => number().boxed(),
        Shape::NumList => prop::collection::vec(number(), 0..6)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Bool => any::<bool>().prop_map(Value::Boolean).boxed(),
    };
    prop_oneof![4 => Just(Value::Nil), 5 => typed, 1 => anything()].boxed()
}

/// A cty object for `keys`: every key present (sorted, like go-cty), sometimes one dropped,
/// sometimes an extra key, sometimes a key repeated.
fn cty_object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let values: Vec<BoxedStrategy<Value>> = keys.iter().map(|k| attribute(shape_of(k))).collect();
    (
        values,
        prop::option::weighted(0.1, (text(), anything())),
        prop::option::weighted(0.05, any::<prop::sample::Index>()),
        prop::option::weighted(0.05, any::<prop::sample::Index>()),
    )
        .prop_map(move |(vals, extra, drop, repeat)| {
            let mut entries: Vec<(Value, Value)> =
                keys.iter().map(|k| Value::from(*k)).zip(vals).collect();
            entries.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
            if let Some(i) = repeat {
                let e = entries[i.index(entries.len())].clone();
                entries.push(e);
            }
            if let Some(i) = drop {
                entries.remove(i.index(entries.len()));
            }
            if let Some((k, v)) = extra {
                entries.push((Value::from(k), v));
            }
            Value::Map(entries)
        })
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap_or_else(|e| panic!("encoding to a Vec: {e}"));
    out
}

/// A committed seed with a few byte-level mutations (flip, insert, truncate).
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = entries("corpus")
        .into_iter()
        .filter(|(t, _)| t == target)
        .filter_map(|(_, p)| std::fs::read(p).ok())
        .collect();
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(mut bytes, edits)| {
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn cty_shaped_task_configs_never_panic(v in cty_object(harness::struct_fields::<RawTaskConfig>())) {
        harness::task_config(&encode(&v));
    }

    #[test]
    fn cty_shaped_plugin_configs_never_panic(v in cty_object(harness::struct_fields::<RawPluginConfig>())) {
        harness::plugin_config(&encode(&v));
    }

    #[test]
    fn any_msgpack_value_as_a_config_never_panics(v in anything()) {
        let bytes = encode(&v);
        harness::task_config(&bytes);
        harness::plugin_config(&bytes);
    }

    #[test]
    fn mutated_task_seeds_never_panic(bytes in mutated("task_config")) {
        harness::task_config(&bytes);
    }

    #[test]
    fn mutated_plugin_seeds_never_panic(bytes in mutated("plugin_config")) {
        harness::plugin_config(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        harness::task_config(&bytes);
        harness::plugin_config(&bytes);
        harness::promises(&bytes);
        harness::unveil(&bytes);
    }

    #[test]
    fn promise_strings_never_panic(s in text()) {
        harness::promises(s.as_bytes());
    }

    #[test]
    fn unveil_strings_never_panic(s in text()) {
        harness::unveil(s.as_bytes());
    }
}

#[test]
fn struct_field_probe_reads_the_schema_keys() {
    // The generators and the error checks rely on it; an empty list would hollow them out.
    let task = harness::struct_fields::<RawTaskConfig>();
    assert!(
        task.contains(&"command") && task.contains(&"unveil"),
        "{task:?}"
    );
    let plugin = harness::struct_fields::<RawPluginConfig>();
    assert!(plugin.contains(&"pledge_executable"), "{plugin:?}");
}

// ---- regressions for findings (each was a fuzzer or proptest failure first) ---------------

#[test]
fn unveil_rule_at_the_length_limit_prints_in_a_form_that_parses_back() {
    // Finding: a 4096-byte rule without a perm prefix parsed, but its Display (`r:` + path)
    // was 4098 bytes and was rejected when re-parsed, e.g. by the sandbox subcommand reading
    // the rendered `-v` argument. fuzz/artifacts/unveil/crash-ef3835cd...
    for path in [
        "/".to_string() + &"a".repeat(4095),
        "/".to_string() + &"b/".repeat(2047),
    ] {
        harness::unveil(path.as_bytes());
        harness::unveil(format!("rwxc:{path}").as_bytes());
    }
}

#[test]
fn a_huge_unknown_attribute_name_gives_a_short_error() {
    // Finding: the field of an unknown-attribute error was the whole key, unshortened, so a
    // 100 KB key made a 100 KB error message (and a 1 MB config a 1 MB one).
    let key = "stdio".repeat(20_000);
    let v = Value::Map(vec![(Value::from(key.as_str()), Value::Nil)]);
    let bytes = encode(&v);
    for e in [
        decode_task_config(&bytes).expect_err("unknown attribute"),
        decode_plugin_config(&bytes).expect_err("unknown attribute"),
    ] {
        for err in &e.0 {
            assert!(
                err.to_string().len() < 1024,
                "{} bytes: {:.200}",
                err.to_string().len(),
                err
            );
        }
    }
    harness::task_config(&bytes);
    harness::plugin_config(&bytes);
}

#[test]
fn many_distinct_unknown_promises_are_reported_without_quadratic_work() {
    // 100k distinct unknown words (what a 1 MB config can hold): one bounded error. A quadratic
    // duplicate check would make this test take minutes; it takes milliseconds.
    let s: String = (0..100_000).map(|i| format!("w{i} ")).collect();
    harness::promises(s.as_bytes());
    let e = pledge_core::PromiseSet::parse(&s).expect_err("unknown words");
    assert!(e.reason.contains("and 99992 more"), "{}", e.reason);
}
