//! Criterion micro-benchmarks of the pure hot paths: cty-msgpack decode of a real go-cty
//! config (hack/http), validation, plan_sandbox, argv rendering, and BPF compilation per
//! promise set. Criterion reports its own statistics; there are no assertions on time.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pledge_backend_linux::sandbox::compile_filter;
use pledge_core::config::decode_task_config;
use pledge_core::sandbox::render::builtin_argv;
use pledge_core::{plan_sandbox, HostFacts, PluginConfig, TaskSpec};
use std::hint::black_box;

/// hack/http's config as go-cty encodes it (fuzz/gocty).
const HTTP_CONFIG: &[u8] = include_bytes!("../../fuzz/corpus/task_config/gocty-http.msgpack");

fn host() -> HostFacts {
    HostFacts {
        landlock_abi: 7,
        seccomp: true,
        root: true,
        cpus: vec![0, 1],
        ..HostFacts::default()
    }
}

fn config(c: &mut Criterion) {
    let plugin = PluginConfig::default();
    let host = host();
    c.bench_function("decode_task_config (hack/http, go-cty bytes)", |b| {
        b.iter(|| decode_task_config(black_box(HTTP_CONFIG)))
    });
    let raw = decode_task_config(HTTP_CONFIG).unwrap_or_default();
    c.bench_function("RawTaskConfig::validate (hack/http)", |b| {
        b.iter(|| black_box(raw.clone()).validate(&plugin, &host))
    });
    let Ok(cfg) = raw.clone().validate(&plugin, &host) else {
        return;
    };
    let spec = TaskSpec::default();
    c.bench_function("plan_sandbox (hack/http)", |b| {
        b.iter(|| plan_sandbox(black_box(&spec), &cfg, &plugin, &host))
    });
    let plan = plan_sandbox(&spec, &cfg, &plugin, &host);
    c.bench_function("render::builtin_argv (hack/http)", |b| {
        b.iter(|| builtin_argv(black_box(&plan), "/usr/local/bin/nomad-pledge-driver"))
    });
}

fn bpf(c: &mut Criterion) {
    let opts = pledge_bench::bpf::options();
    let mut g = c.benchmark_group("compile_filter");
    for (name, set) in pledge_bench::bpf::sets() {
        g.bench_with_input(BenchmarkId::from_parameter(&name), &set, |b, set| {
            b.iter(|| compile_filter(black_box(set), &opts))
        });
    }
    g.finish();
}

criterion_group!(benches, config, bpf);
criterion_main!(benches);
