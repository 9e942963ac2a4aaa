//! Stable replay of the grpc-side fuzz targets (issue 7) under `cargo test`: every committed
//! corpus entry and crash artifact of `hcl_config`, `hclspec` and `job_file`, every hack/ job
//! file, and a differential check of the local runner's cty-msgpack encoder against the bytes
//! go-cty's real encoder produced for the same configs (fuzz/gocty/configs.json).
//!
//! `PLEDGE_FUZZ_WRITE_SEEDS=1 cargo test -p pledge-grpc --test fuzz_replay` rewrites the seeds
//! this file derives (hclspec protobufs of our schemas, HCL bodies of configs.json); the hack/
//! jobs are `job_file` seeds where they are, without a copy in fuzz/corpus.

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

#[path = "../../fuzz/src/grpc_targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod grpc_targets;

use pledge_grpc::runner::encode::encode_body;
use pledge_grpc::runner::spec::Spec;
use pledge_grpc::schema;
use prost::Message;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(target: &str) -> PathBuf {
    repo().join("fuzz/corpus").join(target)
}

fn writing_seeds() -> bool {
    std::env::var_os("PLEDGE_FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.retain(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    out.sort();
    out
}

/// Where a target's inputs live: its committed corpus and crash artifacts, and for `job_file`
/// the hack/ jobs themselves (fuzz/run.sh passes hack/ as a second corpus dir, so the jobs are
/// seeds without a copy that could go stale).
fn input_dirs(target: &str) -> Vec<PathBuf> {
    let mut dirs = vec![
        repo().join("fuzz/corpus").join(target),
        repo().join("fuzz/artifacts").join(target),
    ];
    if target == "job_file" {
        dirs.push(repo().join("hack"));
    }
    dirs
}

fn run_all(target: &str, run: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in input_dirs(target) {
        for path in files(&dir) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panicked", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_committed_grpc_corpus_entry_and_artifact_replays_cleanly() {
    for (target, run) in [
        ("hcl_config", grpc_targets::hcl_config as fn(&[u8])),
        ("hclspec", grpc_targets::hclspec),
        ("job_file", grpc_targets::job_file),
    ] {
        let n = run_all(target, run);
        assert!(
            n >= 2,
            "fuzz/corpus/{target} has {n} entries; the seeds are missing"
        );
        println!("{target}: replayed {n}");
    }
}

#[test]
fn every_hack_job_file_goes_through_the_job_file_harness() {
    let jobs: Vec<PathBuf> = files(&repo().join("hack"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hcl") && !p.ends_with("client.hcl"))
        .collect();
    assert!(!jobs.is_empty(), "no hack/*.hcl");
    for job in &jobs {
        let text = std::fs::read(job).unwrap_or_default();
        // The harness returns quietly on a parse error; make sure it got past parsing here.
        let parsed = pledge_grpc::runner::job::Job::parse(&String::from_utf8_lossy(&text), "hack")
            .unwrap_or_else(|e| panic!("{}: {e}", job.display()));
        assert!(
            parsed.tasks().any(|(_, t)| t.driver == "pledge"),
            "{} has no pledge task",
            job.display()
        );
        grpc_targets::job_file(&text);
    }
}

#[test]
fn hclspec_seeds_are_our_current_schemas() {
    for (name, bytes) in grpc_targets::schema_seeds() {
        let file = format!("schema-{name}.pb");
        if writing_seeds() {
            write_seed("hclspec", &file, &bytes);
        }
        // Compared as messages: prost writes map fields in hash order, so bytes vary per run.
        let committed = std::fs::read(corpus("hclspec").join(&file)).unwrap_or_default();
        let committed = pledge_grpc::pb::hclspec::Spec::decode(committed.as_slice()).ok();
        let current = pledge_grpc::pb::hclspec::Spec::decode(bytes.as_slice()).ok();
        assert!(current.is_some(), "{name} does not decode");
        assert_eq!(
            committed, current,
            "fuzz/corpus/hclspec/{file} is stale: PLEDGE_FUZZ_WRITE_SEEDS=1 cargo test -p pledge-grpc --test fuzz_replay"
        );
        grpc_targets::hclspec(&bytes);
    }
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// A JSON config object as an HCL body of attributes, the way a job file would spell it.
fn json_to_body(obj: &serde_json::Map<String, serde_json::Value>) -> Result<hcl::Body, String> {
    let mut b = hcl::Body::builder();
    for (k, v) in obj {
        let value: hcl::Value = hcl::to_value(v).map_err(|e| format!("{k}: {e}"))?;
        b = b.add_attribute(hcl::Attribute::new(
            k.as_str(),
            hcl::Expression::from(value),
        ));
    }
    Ok(b.build())
}

/// configs.json as (target, name, config). (1e400, which serde_json cannot hold, lives in
/// configs-bignum.json and is covered by its go-cty bytes alone.)
fn gocty_configs() -> Vec<(String, String, serde_json::Map<String, serde_json::Value>)> {
    let path = repo().join("fuzz/gocty/configs.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    > = serde_json::from_str(&text).unwrap_or_else(|e| panic!("configs.json: {e}"));
    file.into_iter()
        .flat_map(|(target, configs)| {
            configs
                .into_iter()
                .map(move |(name, c)| (target.clone(), name, c))
        })
        .collect()
}

#[test]
fn runner_encoder_writes_the_bytes_go_cty_writes() {
    // The local runner claims to encode configs exactly as Nomad (go-cty) does. Compare it
    // with go-cty's own output for every config in configs.json.
    let task = Spec::from_proto(&schema::task_config_spec()).unwrap_or_else(|e| panic!("{e}"));
    let plugin = Spec::from_proto(&schema::plugin_config_spec()).unwrap_or_else(|e| panic!("{e}"));
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (target, name, obj) in gocty_configs() {
        let body = json_to_body(&obj).unwrap_or_else(|e| panic!("{name}: {e}"));
        if writing_seeds() {
            write_seed(
                "hcl_config",
                &format!("{name}.hcl"),
                hcl::to_string(&body).unwrap_or_default().as_bytes(),
            );
        }
        let spec = if target == "task_config" {
            &task
        } else {
            &plugin
        };
        let root = if target == "task_config" {
            "config"
        } else {
            "plugin"
        };
        let ours =
            encode_body(spec, &body, root).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        let theirs = std::fs::read(corpus(&target).join(format!("gocty-{name}.msgpack")))
            .unwrap_or_else(|e| panic!("{target}/{name}: {e} (run fuzz/gocty/generate.sh)"));
        compared += 1;
        if ours != theirs {
            mismatches.push(format!(
                "{target}/{name}:\n  ours   {}\n  go-cty {}",
                hex(&ours),
                hex(&theirs)
            ));
        }
        if target == "task_config" {
            grpc_targets::check_task_body(&body);
        }
    }
    assert!(compared >= 29, "only {compared} configs compared");
    assert!(
        mismatches.is_empty(),
        "the runner's encoding differs from go-cty's:\n{}",
        mismatches.join("\n")
    );
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn hcl_arithmetic_that_panics_in_hcl_rs_is_an_error_naming_the_field() {
    // Finding (fuzz target job_file): hcl-primitives 0.1.13 panics on an integer `% 0`, so a
    // job file with `1 % 0` anywhere the runner evaluates took the runner down.
    // fuzz/artifacts/job_file/crash-8c4e7b97-minimized is the fuzzer's input.
    let job = "job \"j\" {\n group \"g\" {\n  task \"t\" {\n   driver = \"pledge\"\n   kill_timeout = 1 % 0\n   config { command = \"true\" }\n  }\n }\n}\n";
    let e = pledge_grpc::runner::job::Job::parse(job, "j.hcl").expect_err("1 % 0");
    let shown = e.to_string();
    assert!(
        shown.contains("kill_timeout") && shown.contains("cannot be evaluated"),
        "{shown}"
    );

    let job = job.replace("kill_timeout = 1 % 0", "").replace(
        "config { command = \"true\" }",
        "config {\n    command = \"true\"\n    pids_limit = -9223372036854775808 % -1\n   }",
    );
    let parsed = pledge_grpc::runner::job::Job::parse(&job, "j.hcl").expect("parses");
    let (_, task) = parsed.tasks().next().expect("one task");
    let e = grpc_targets::task_env()
        .eval_body(&task.config, "config")
        .expect_err("overflowing remainder");
    assert!(e.to_string().starts_with("config:"), "{e}");
    grpc_targets::job_file(job.as_bytes());
}
