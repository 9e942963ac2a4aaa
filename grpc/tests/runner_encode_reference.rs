//! The runner's cty-msgpack encoder against the real thing: HashiCorp's hcldec + go-cty msgpack
//! (tests/ctyref, built from Debian's Go packages in GOPATH mode), the code Nomad's client runs.
//! For every pledge task of every hack/ job (after the runner's interpolation) and for a set of
//! edge cases (number forms, conversions, unicode, missing and unknown attributes), both must
//! produce the same bytes, or both refuse. Skips without the Go toolchain, except under CI=true.

use pledge_grpc::runner::allocdir::RunDir;
use pledge_grpc::runner::cgroup;
use pledge_grpc::runner::encode::encode_body;
use pledge_grpc::runner::env::NodeFacts;
use pledge_grpc::runner::job::Job;
use pledge_grpc::runner::ports::{AllocatedPort, HOST_IP};
use pledge_grpc::runner::session::{prepare_task, PrepareInputs};
use pledge_grpc::runner::spec::Spec;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GOCODE: &str = "/usr/share/gocode";

fn missing_toolchain() -> Option<String> {
    let go = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("go").is_file()))
        .unwrap_or(false);
    if !go {
        return Some("go not found in PATH (apt-get install golang-go)".into());
    }
    for pkg in [
        "github.com/hashicorp/hcl/v2/hcldec",
        "github.com/hashicorp/hcl/v2/ext/typeexpr",
        "github.com/zclconf/go-cty/cty/msgpack",
    ] {
        if !Path::new(GOCODE).join("src").join(pkg).is_dir() {
            return Some(format!("Go package {pkg} is not installed under {GOCODE}"));
        }
    }
    None
}

/// Builds tests/ctyref; None (after printing why) when the toolchain is missing outside CI.
fn reference_encoder(dir: &Path) -> Option<PathBuf> {
    if let Some(why) = missing_toolchain() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the go-cty reference cannot be built: {why}"
        );
        eprintln!("SKIP: {why}");
        return None;
    }
    let src = dir.join("src/ctyref");
    std::fs::create_dir_all(&src).expect("gopath");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ctyref/main.go"),
        src.join("main.go"),
    )
    .expect("copy main.go");
    let bin = dir.join("ctyref");
    let out = Command::new("go")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:{GOCODE}", dir.display()))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env(
            "GOCACHE",
            std::env::var("GOCACHE").map_or_else(|_| dir.join("gocache"), PathBuf::from),
        )
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .expect("run go build");
    assert!(
        out.status.success(),
        "go build of ctyref failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

/// The schema as JSON for ctyref: (name, type, required).
fn spec_json(attrs: &[(&str, &str, bool)]) -> String {
    let items: Vec<String> = attrs
        .iter()
        .map(|(n, t, r)| format!(r#"{{"name":"{n}","type":"{t}","required":{r}}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

fn spec_of(attrs: &[(&str, &str, bool)]) -> Spec {
    Spec::Object(
        attrs
            .iter()
            .map(|(n, t, r)| {
                (
                    (*n).to_owned(),
                    Spec::Attr {
                        name: (*n).to_owned(),
                        ty: pledge_grpc::runner::spec::CtyType::parse(t).expect("type"),
                        required: *r,
                    },
                )
            })
            .collect(),
    )
}

/// Runs ctyref once over all bodies; one answer per body.
fn reference(bin: &Path, attrs: &[(&str, &str, bool)], bodies: &[String]) -> Vec<String> {
    let mut child = Command::new(bin)
        .arg(spec_json(attrs))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctyref");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for (i, b) in bodies.iter().enumerate() {
            if i > 0 {
                stdin.write_all(b"----\n").expect("write");
            }
            stdin.write_all(b.as_bytes()).expect("write");
            if !b.ends_with('\n') {
                stdin.write_all(b"\n").expect("write");
            }
        }
    }
    let out = child.wait_with_output().expect("ctyref");
    assert!(
        out.status.success(),
        "ctyref failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), bodies.len(), "one answer per body: {lines:?}");
    lines
}

fn ours(spec: &Spec, body: &hcl::Body) -> String {
    match encode_body(spec, body, "config") {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(e) => format!("error: {e}"),
    }
}

fn compare(bin: &Path, attrs: &[(&str, &str, bool)], cases: &[(String, hcl::Body)]) {
    let spec = spec_of(attrs);
    let texts: Vec<String> = cases.iter().map(|(t, _)| t.clone()).collect();
    let theirs = reference(bin, attrs, &texts);
    let mut mismatches = Vec::new();
    for ((text, body), want) in cases.iter().zip(&theirs) {
        let got = ours(&spec, body);
        let same = if want.starts_with("error:") {
            got.starts_with("error:")
        } else {
            &got == want
        };
        if !same {
            mismatches.push(format!("body:\n{text}\n  go-cty: {want}\n  ours:   {got}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn hack_job_configs_encode_exactly_as_go_cty_does() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(bin) = reference_encoder(dir.path()) else {
        return;
    };
    let attrs = pledge_grpc::schema::TASK_ATTRS;
    let spec = spec_of(attrs);
    let run = RunDir::create(None).expect("run dir");
    let node = NodeFacts::probe("ref".into());
    let hack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack");
    let mut cases = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&hack)
        .expect("hack")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl") && !p.ends_with("client.hcl"))
        .collect();
    files.sort();
    for file in files {
        let job = Job::from_file(&file).expect("job");
        for (group, task) in job.tasks().filter(|(_, t)| t.driver == "pledge") {
            let alloc_id = uuid::Uuid::new_v4().to_string();
            let alloc = run.alloc(&alloc_id).expect("alloc dir");
            let ports: Vec<AllocatedPort> = group
                .network
                .iter()
                .flat_map(|n| n.ports.iter())
                .map(|p| AllocatedPort {
                    label: p.label.clone(),
                    value: p.static_port.unwrap_or(23456),
                    to: 0,
                    host_ip: HOST_IP.into(),
                })
                .collect();
            let prepared = prepare_task(&PrepareInputs {
                job: &job,
                group,
                task,
                alloc: &alloc,
                alloc_id: &alloc_id,
                ports: &ports,
                node: &node,
                host_env: &BTreeMap::new(),
                cgroup_mode: cgroup::Mode::V2,
                spec: &spec,
            })
            .expect("prepare");
            // The same interpolation, as text for the Go side.
            let env = prepared.env.clone();
            let body = env.eval_body(&task.config, "config").expect("eval");
            let text = hcl::format::to_string(&body).expect("format");
            cases.push((text, body));
        }
    }
    assert!(cases.len() >= 15, "only {} task configs", cases.len());
    compare(&bin, attrs, &cases);
}

#[test]
fn edge_cases_encode_exactly_as_go_cty_does() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(bin) = reference_encoder(dir.path()) else {
        return;
    };
    let attrs: &[(&str, &str, bool)] = &[
        ("command", "string", true),
        ("args", "list(string)", false),
        ("n", "number", false),
        ("ports", "list(number)", false),
        ("flag", "bool", false),
        ("labels", "map(string)", false),
        ("tags", "set(string)", false),
        ("nums", "set(number)", false),
        ("obj", "object({a = number, b = list(string)})", false),
        ("anything", "any", false),
    ];
    let bodies = [
        "command = \"x\"",
        "command = \"x\"\nn = 5",
        "command = \"x\"\nn = 200",
        "command = \"x\"\nn = 300",
        "command = \"x\"\nn = 70000",
        "command = \"x\"\nn = 5000000000",
        "command = \"x\"\nn = -1",
        "command = \"x\"\nn = -100",
        "command = \"x\"\nn = -40000",
        "command = \"x\"\nn = 1.5",
        "command = \"x\"\nn = 0.1",
        "command = \"x\"\nn = 0.25",
        "command = \"x\"\nn = 2.0",
        "command = \"x\"\nn = 1e3",
        "command = \"x\"\nn = 9223372036854775807",
        "command = \"x\"\nn = 18446744073709551615",
        "command = \"x\"\nn = \"42\"",
        "command = \"x\"\nn = \"0.5\"",
        "command = \"x\"\nn = \"nope\"",
        "command = \"x\"\nn = true",
        "command = 7",
        "command = 1.5",
        "command = true",
        "command = \"héllo ☃ \\u00e9\"",
        "command = \"\"",
        "command = \"x\"\nargs = []",
        "command = \"x\"\nargs = [\"a\", 1, true]",
        "command = \"x\"\nargs = \"a\"",
        "command = \"x\"\nports = [80, 443, 8080.5]",
        "command = \"x\"\nflag = \"true\"",
        "command = \"x\"\nflag = \"false\"",
        "command = \"x\"\nflag = \"yes\"",
        "command = \"x\"\nlabels = { b = \"2\", a = \"1\", c = 3 }",
        "command = \"x\"\ntags = [\"b\", \"a\", \"b\", \"c\"]",
        "command = \"x\"\nnums = [3, 1, 2, 1]",
        "command = \"x\"\nobj = { a = 1, b = [\"x\"] }",
        "command = \"x\"\nobj = { a = 1 }",
        "command = \"x\"\nanything = { z = 1, a = [true, \"s\"] }",
        "command = \"x\"\nanything = [1, 2.5, \"three\"]",
        "command = \"x\"\nunknown = 1",
        "args = [\"no command\"]",
        "command = null",
        "command = \"x\"\nn = null",
    ];
    let cases: Vec<(String, hcl::Body)> = bodies
        .iter()
        .map(|t| {
            (
                (*t).to_owned(),
                hcl::parse(t).expect("hcl-rs parses the case"),
            )
        })
        .collect();
    compare(&bin, attrs, &cases);
}
