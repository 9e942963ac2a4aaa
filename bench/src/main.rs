//! `pledge-bench [all|bpf|launch|filter|scale] [--quick] [--driver PATH]`: whole-process
//! comparisons against baselines measured in the same run. Prints Markdown; exits non-zero
//! only when the harness itself cannot run (never because a goal is missed).

use pledge_bench::measure::{human_ns, ratio, Summary};
use pledge_bench::report::Table;
use pledge_bench::{bpf, driver, filter, launch, machine, plugin};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: pledge-bench [all|bpf|launch|filter|scale] [--quick] [--driver PATH]\n\
     all = bpf launch filter scale; --quick = tiny counts, to smoke-test the harness";

struct Opts {
    phases: Vec<String>,
    quick: bool,
    driver: Option<PathBuf>,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        phases: Vec::new(),
        quick: false,
        driver: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--driver" => o.driver = Some(args.next().ok_or("--driver needs a path")?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            "all" | "bpf" | "launch" | "filter" | "scale" => o.phases.push(a),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.phases.is_empty() || o.phases.iter().any(|p| p == "all") {
        o.phases = ["bpf", "launch", "filter", "scale"]
            .map(String::from)
            .to_vec();
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pledge-bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pledge-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "# pledge-bench{}\n",
        if opts.quick { " --quick" } else { "" }
    );
    println!("Machine: {}\n", machine::describe());
    let mut goals: Vec<String> = Vec::new();
    let needs_driver = opts.phases.iter().any(|p| p != "bpf");
    let drv = if needs_driver {
        Some(driver::locate(opts.driver.as_deref())?)
    } else {
        None
    };
    for phase in &opts.phases {
        match (phase.as_str(), &drv) {
            ("bpf", _) => println!("## BPF program length\n\n{}", bpf::table()),
            ("launch", Some(d)) => goals.extend(launch_phase(d, opts.quick).await?),
            ("filter", Some(d)) => {
                let dir = scratch_dir()?;
                let exe = filter::build_loop(&dir)?;
                let (iters, runs) = if opts.quick {
                    (20_000, 2)
                } else {
                    (100_000, 7)
                };
                let r = filter::run(d, &exe, iters, runs);
                let _ = std::fs::remove_dir_all(&dir);
                let r = r?;
                println!(
                    "## Filter cost ({iters} iterations x {runs} runs, interleaved)\n\n{}",
                    r.table
                );
                goals.extend(r.goals);
            }
            ("scale", Some(d)) => {
                let (small, large, secs) = if opts.quick {
                    (5, 10, 3)
                } else {
                    (50, 200, 30)
                };
                let r = plugin::memory_and_scale(d, small, large, secs).await?;
                println!("## Memory\n\n{}", r.memory);
                println!(
                    "## Scale ({large} tasks of `sleep 3600` as nobody)\n\n{}",
                    r.scale
                );
                goals.extend(r.goals);
            }
            _ => {}
        }
    }
    if !goals.is_empty() {
        println!("## Goals\n");
        for g in goals {
            println!("- {g}");
        }
    }
    Ok(())
}

/// The launch table, then the full task through the plugin compared with the same baselines.
async fn launch_phase(d: &Path, quick: bool) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    if let Some(note) = driver::ensure_bwrap() {
        println!("({note})\n");
    }
    let rounds = if quick { 10 } else { 300 };
    let r = launch::run(d, rounds)?;
    println!("## Launch ({rounds} rounds, interleaved)\n\n{}", r.table);
    let mut goals = r.goals;
    let p50 = |prefix: &str| {
        r.summaries
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map_or(0.0, |(_, s)| s.p50)
    };
    let full_rounds = if quick { 3 } else { 50 };
    let mut bench = plugin::Bench::launch(d).await?;
    let samples = plugin::full_launch(&mut bench, full_rounds).await;
    let leaks = bench.shutdown().await;
    let s = Summary::of(&samples?);
    let mut t = Table::new(&[
        "full task via the plugin",
        "p50",
        "p99",
        "vs unshare",
        "vs bwrap",
    ]);
    t.row(vec![
        "StartTask→WaitTask of `true` (user nobody, pid/ipc/mount ns, cgroup, seccomp, Landlock)"
            .into(),
        human_ns(s.p50),
        human_ns(s.p99),
        ratio(s.p50, p50("unshare")),
        ratio(s.p50, p50("bwrap")),
    ]);
    println!("{full_rounds} rounds; {}\n\n{t}", leaks.summary());
    goals.push(format!(
        "full task via the plugin / unshare = {}, / bwrap = {} (informational: it includes \
         gRPC, the supervisor and the cgroup)",
        ratio(s.p50, p50("unshare")),
        ratio(s.p50, p50("bwrap"))
    ));
    Ok(goals)
}

fn scratch_dir() -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("pledge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
