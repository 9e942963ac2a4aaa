//! The `TaskConfig` message of StartTask, built as Nomad's task runner builds it
//! (`buildTaskConfig`, protocol.md §4.4): id, names, env, resources (allocated and Linux, with
//! the cgroup path), ports, user, alloc dir and the log FIFOs.

use super::allocdir::TaskDir;
use super::env::NodeFacts;
use super::job::{Group, Job, Task};
use super::ports::AllocatedPort;
use crate::pb;
use std::collections::BTreeMap;

/// Everything [`task_config`] is built from.
pub struct TaskConfigInputs<'a> {
    /// `TaskConfig.id`: `<alloc_id>/<task>/<8 hex>`.
    pub id: &'a str,
    /// The job.
    pub job: &'a Job,
    /// The task's group.
    pub group: &'a Group,
    /// The task.
    pub task: &'a Task,
    /// The allocation id.
    pub alloc_id: &'a str,
    /// The allocation dir.
    pub alloc_dir: &'a std::path::Path,
    /// The task's directories (for the FIFO paths).
    pub dirs: &'a TaskDir,
    /// The task environment.
    pub env: &'a BTreeMap<String, String>,
    /// `msgpack_driver_config`.
    pub msgpack: Vec<u8>,
    /// The group's allocated ports.
    pub ports: &'a [AllocatedPort],
    /// `linux_resources.cpuset_cgroup`.
    pub cgroup: &'a std::path::Path,
    /// The node (name and id).
    pub node: &'a NodeFacts,
}

/// `TaskConfig` as Nomad's task runner builds it (protocol.md §4.4).
pub fn task_config(i: TaskConfigInputs<'_>) -> pb::drivers::TaskConfig {
    const MIB: i64 = 1024 * 1024;
    let r = i.task.resources;
    let (stdout, stderr) = if i.task.logs_disabled {
        ("/dev/null".to_owned(), "/dev/null".to_owned())
    } else {
        (
            i.dirs.stdout_fifo.display().to_string(),
            i.dirs.stderr_fifo.display().to_string(),
        )
    };
    let cpuset_cpus = match r.cores {
        n if n <= 0 => String::new(),
        1 => "0".to_owned(),
        n => format!("0-{}", n - 1),
    };
    pb::drivers::TaskConfig {
        id: i.id.to_owned(),
        name: i.task.name.clone(),
        msgpack_driver_config: i.msgpack,
        env: i.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        resources: Some(pb::drivers::Resources {
            allocated_resources: Some(pb::drivers::AllocatedTaskResources {
                cpu: Some(pb::drivers::AllocatedCpuResources { cpu_shares: r.cpu }),
                memory: Some(pb::drivers::AllocatedMemoryResources {
                    memory_mb: r.memory,
                    memory_max_mb: r.memory_max,
                }),
                networks: Vec::new(),
            }),
            linux_resources: Some(pb::drivers::LinuxResources {
                cpu_shares: r.cpu,
                memory_limit_bytes: r.memory.max(r.memory_max) * MIB,
                cpuset_cpus,
                cpuset_cgroup: i.cgroup.display().to_string(),
                percent_ticks: percent_ticks(r.cpu),
                ..Default::default()
            }),
            ports: i
                .ports
                .iter()
                .map(|p| pb::drivers::PortMapping {
                    label: p.label.clone(),
                    value: i32::from(p.value),
                    to: i32::from(p.to),
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
        }),
        user: i.task.user.clone().unwrap_or_default(),
        alloc_dir: i.alloc_dir.display().to_string(),
        stdout_path: stdout,
        stderr_path: stderr,
        task_group_name: i.group.name.clone(),
        job_name: i.job.name.clone(),
        job_id: i.job.name.clone(),
        alloc_id: i.alloc_id.to_owned(),
        namespace: "default".into(),
        node_name: i.node.name.clone(),
        node_id: i.node.id.clone(),
        ..Default::default()
    }
}

/// `cpu` MHz as a fraction of the node's compute (cores × MHz from /proc/cpuinfo).
fn percent_ticks(cpu_mhz: i64) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("cpu MHz"))
                .filter_map(|l| {
                    l.trim_start_matches([' ', '\t', ':'])
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .reduce(f64::max)
        })
        .unwrap_or(1000.0);
    #[allow(clippy::cast_precision_loss)]
    let total = cores as f64 * mhz;
    #[allow(clippy::cast_precision_loss)]
    let cpu = cpu_mhz as f64;
    if total > 0.0 {
        cpu / total
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::allocdir::RunDir;

    #[test]
    fn resources_ports_and_fifos_are_where_nomad_puts_them() {
        let job = Job::parse(
            "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"pledge\"\n user = \"nobody\"\n resources {\n cpu = 500\n memory = 150\n memory_max = 250\n cores = 2\n }\n }\n }\n}\n",
            "j.hcl",
        )
        .expect("job");
        let (group, task) = job.tasks().next().expect("task");
        let run = RunDir::create(None).expect("run");
        let alloc = run.alloc("a1").expect("alloc");
        let dirs = alloc.task_dir("t").expect("dirs");
        let node = NodeFacts::probe("node-1".into());
        let env: BTreeMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        let ports = [AllocatedPort {
            label: "http".into(),
            value: 8080,
            to: 80,
            host_ip: "127.0.0.1".into(),
        }];
        let cg = std::path::PathBuf::from("/sys/fs/cgroup/nomad.slice/reserve.slice/a1.t.scope");
        let tc = task_config(TaskConfigInputs {
            id: "a1/t/0123abcd",
            job: &job,
            group,
            task,
            alloc_id: "a1",
            alloc_dir: alloc.path(),
            dirs: &dirs,
            env: &env,
            msgpack: vec![0x80],
            ports: &ports,
            cgroup: &cg,
            node: &node,
        });
        assert_eq!(tc.id, "a1/t/0123abcd");
        assert_eq!(tc.user, "nobody");
        assert_eq!(tc.msgpack_driver_config, vec![0x80]);
        assert_eq!(tc.env["A"], "1");
        assert_eq!(tc.stdout_path, dirs.stdout_fifo.display().to_string());
        assert_eq!(tc.alloc_dir, alloc.path().display().to_string());
        let r = tc.resources.expect("resources");
        let mem = r
            .allocated_resources
            .and_then(|a| a.memory)
            .expect("memory");
        assert_eq!((mem.memory_mb, mem.memory_max_mb), (150, 250));
        let lr = r.linux_resources.expect("linux");
        assert_eq!(lr.memory_limit_bytes, 250 * 1024 * 1024);
        assert_eq!(lr.cpu_shares, 500);
        assert_eq!(lr.cpuset_cpus, "0-1");
        assert_eq!(lr.cpuset_cgroup, cg.display().to_string());
        assert!(lr.percent_ticks > 0.0);
        assert_eq!(r.ports[0].value, 8080);
        assert_eq!(r.ports[0].to, 80);
    }

    #[test]
    fn disabled_logs_go_to_dev_null() {
        let job = Job::parse(
            "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"pledge\"\n logs {\n disabled = true\n }\n }\n }\n}\n",
            "j.hcl",
        )
        .expect("job");
        let (group, task) = job.tasks().next().expect("task");
        let run = RunDir::create(None).expect("run");
        let alloc = run.alloc("a2").expect("alloc");
        let dirs = alloc.task_dir("t").expect("dirs");
        let node = NodeFacts::probe("n".into());
        let tc = task_config(TaskConfigInputs {
            id: "a2/t/1",
            job: &job,
            group,
            task,
            alloc_id: "a2",
            alloc_dir: alloc.path(),
            dirs: &dirs,
            env: &BTreeMap::new(),
            msgpack: Vec::new(),
            ports: &[],
            cgroup: std::path::Path::new("/x"),
            node: &node,
        });
        assert_eq!(tc.stdout_path, "/dev/null");
        assert_eq!(tc.stderr_path, "/dev/null");
        let lr = tc.resources.and_then(|r| r.linux_resources).expect("linux");
        assert_eq!(
            lr.memory_limit_bytes,
            300 * 1024 * 1024,
            "Nomad's default memory"
        );
        assert_eq!(lr.cpuset_cpus, "");
    }
}
