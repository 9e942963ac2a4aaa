//! Translation between protobuf messages and the core's types. Raw protobuf never reaches the
//! core: ids are validated here, and every error names the request field.

use crate::pb::drivers as pb;
use crate::status::RpcError;
use pledge_core::{
    CpuPercent, DriverState, ExitResult, PhaseName, TaskEvent, TaskId, TaskResources, TaskSpec,
    TaskView, Usage,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `TaskHandle.version` of the handles we write (0 is reserved by Nomad).
pub const HANDLE_VERSION: i32 = 1;

/// Seconds from 0001-01-01 to 1970-01-01: Go's zero `time.Time`, which Nomad accepts as
/// "not set" for `completed_at`.
const GO_ZERO_TIME_SECS: i64 = -62_135_596_800;

fn bad(field: &str, reason: impl Into<String>) -> RpcError {
    RpcError::BadRequest {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Validates a task id from request field `field`.
pub fn task_id(field: &str, raw: &str) -> Result<TaskId, RpcError> {
    TaskId::parse(raw).map_err(|e| bad(field, e.to_string()))
}

/// Nomad's facts about a task, from `StartTaskRequest.task`.
pub fn task_spec(cfg: &pb::TaskConfig) -> Result<TaskSpec, RpcError> {
    let id = task_id("task.id", &cfg.id)?;
    let resources = cfg.resources.as_ref();
    let linux = resources.and_then(|r| r.linux_resources.as_ref());
    let alloc = resources.and_then(|r| r.allocated_resources.as_ref());
    let memory = alloc.and_then(|a| a.memory.as_ref());
    let cpu_shares = match linux.map(|l| l.cpu_shares) {
        Some(s) if s > 0 => s,
        _ => alloc
            .and_then(|a| a.cpu.as_ref())
            .map_or(0, |c| c.cpu_shares),
    };
    let netns_path = cfg
        .network_isolation_spec
        .as_ref()
        .filter(|n| {
            n.mode == pb::network_isolation_spec::NetworkIsolationMode::Group as i32
                && !n.path.is_empty()
        })
        .map(|n| PathBuf::from(&n.path));
    Ok(TaskSpec {
        id,
        name: cfg.name.clone(),
        alloc_id: cfg.alloc_id.clone(),
        job_name: cfg.job_name.clone(),
        task_group_name: cfg.task_group_name.clone(),
        alloc_dir: PathBuf::from(&cfg.alloc_dir),
        env: cfg
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        user: Some(cfg.user.clone()).filter(|u| !u.is_empty()),
        stdout_path: PathBuf::from(&cfg.stdout_path),
        stderr_path: PathBuf::from(&cfg.stderr_path),
        resources: TaskResources {
            cpu_shares,
            memory_mb: memory.map_or(0, |m| m.memory_mb),
            memory_max_mb: memory.map_or(0, |m| m.memory_max_mb),
            cpuset_cpus: linux.map(|l| l.cpuset_cpus.clone()).unwrap_or_default(),
            cpuset_cgroup: linux.map(|l| l.cpuset_cgroup.clone()).unwrap_or_default(),
        },
        netns_path,
    })
}

/// `TaskHandle` for a started task: `config` echoed, `driver_state` self-sufficient.
pub fn task_handle(
    config: pb::TaskConfig,
    state: &DriverState,
) -> Result<pb::TaskHandle, RpcError> {
    let driver_state = serde_json::to_vec(state)
        .map_err(|e| RpcError::Internal(format!("encoding driver_state: {e}")))?;
    Ok(pb::TaskHandle {
        version: HANDLE_VERSION,
        config: Some(config),
        state: pb::TaskState::Running as i32,
        driver_state,
    })
}

/// The driver state inside a handle given to RecoverTask.
pub fn driver_state(handle: &pb::TaskHandle) -> Result<DriverState, RpcError> {
    if handle.version != HANDLE_VERSION {
        return Err(bad(
            "handle.version",
            format!(
                "handle version {} is not one this plugin wrote (expected {HANDLE_VERSION})",
                handle.version
            ),
        ));
    }
    if handle.driver_state.is_empty() {
        return Err(bad("handle.driver_state", "empty"));
    }
    let state: DriverState = serde_json::from_slice(&handle.driver_state)
        .map_err(|e| bad("handle.driver_state", format!("not a driver state: {e}")))?;
    if state.version != DriverState::VERSION {
        return Err(bad(
            "handle.driver_state.version",
            format!(
                "version {} is not supported (expected {})",
                state.version,
                DriverState::VERSION
            ),
        ));
    }
    Ok(state)
}

/// A Duration field; absent or negative means zero.
pub fn duration(d: Option<&prost_types::Duration>) -> Duration {
    match d {
        Some(d) if d.seconds >= 0 && d.nanos >= 0 => {
            Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs())
        }
        _ => Duration::ZERO,
    }
}

/// A wall-clock time as a protobuf Timestamp (pre-1970 times clamp to the epoch).
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Go's zero time, which Nomad converts without error.
pub fn zero_timestamp() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: GO_ZERO_TIME_SECS,
        nanos: 0,
    }
}

/// ExitResult for WaitTask/ExecTask/InspectTask.
pub fn exit_result(r: &ExitResult) -> pb::ExitResult {
    pb::ExitResult {
        exit_code: r.exit_code,
        signal: r.signal,
        oom_killed: r.oom_killed,
    }
}

/// InspectTask's `task`: timestamps and result are always present (Nomad dereferences them).
pub fn task_status(v: &TaskView) -> pb::TaskStatus {
    let state = match v.phase {
        PhaseName::Exited => pb::TaskState::Exited,
        PhaseName::Starting | PhaseName::Running | PhaseName::Stopping => pb::TaskState::Running,
        PhaseName::Destroying => pb::TaskState::Unknown,
    };
    pb::TaskStatus {
        id: v.id.to_string(),
        name: v.name.clone(),
        state: state as i32,
        started_at: Some(v.started_at.map_or_else(zero_timestamp, timestamp)),
        completed_at: Some(v.completed_at.map_or_else(zero_timestamp, timestamp)),
        result: Some(v.result.as_ref().map(exit_result).unwrap_or_default()),
    }
}

/// One TaskStats sample; `timestamp` and `agg_resource_usage` always set. `total_ticks` is the
/// MHz used (percent of one core × MHz per core, as Nomad's executor reports it) when the
/// host's MHz per core is known.
pub fn task_stats(
    id: &TaskId,
    usage: &Usage,
    cpu: CpuPercent,
    mhz_per_core: u64,
    now: SystemTime,
) -> pb::TaskStats {
    use pb::cpu_usage::Fields as C;
    use pb::memory_usage::Fields as M;
    let agg = pb::TaskResourceUsage {
        cpu: Some(pb::CpuUsage {
            system_mode: cpu.system,
            user_mode: cpu.user,
            total_ticks: cpu.total / 100.0 * mhz_per_core as f64,
            throttled_periods: usage.throttled_periods,
            throttled_time: usage.throttled_ns,
            percent: cpu.total,
            measured_fields: [
                C::SystemMode,
                C::UserMode,
                C::Percent,
                C::ThrottledPeriods,
                C::ThrottledTime,
            ]
            .into_iter()
            .chain((mhz_per_core > 0).then_some(C::TotalTicks))
            .map(|f| f as i32)
            .collect(),
        }),
        memory: Some(pb::MemoryUsage {
            rss: usage.memory_rss,
            cache: usage.memory_cache,
            max_usage: usage.memory_max_usage,
            kernel_usage: usage.memory_kernel,
            kernel_max_usage: 0,
            usage: usage.memory_usage,
            swap: usage.memory_swap,
            measured_fields: vec![
                M::Rss as i32,
                M::Cache as i32,
                M::Swap as i32,
                M::Usage as i32,
                M::MaxUsage as i32,
                M::KernelUsage as i32,
            ],
        }),
    };
    pb::TaskStats {
        id: id.to_string(),
        timestamp: Some(timestamp(usage.at.unwrap_or(now))),
        agg_resource_usage: Some(agg),
        resource_usage_by_pid: Default::default(),
    }
}

/// A core task event for the TaskEvents stream.
pub fn task_event(e: &TaskEvent, now: SystemTime) -> pb::DriverTaskEvent {
    pb::DriverTaskEvent {
        task_id: e.task.to_string(),
        alloc_id: e.alloc_id.clone(),
        task_name: e.task_name.clone(),
        timestamp: Some(timestamp(now)),
        message: e.message.clone(),
        annotations: e
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> pb::TaskConfig {
        pb::TaskConfig {
            id: "alloc1/web/0a1b2c3d".into(),
            name: "web".into(),
            alloc_id: "alloc1".into(),
            alloc_dir: "/var/nomad/alloc/alloc1".into(),
            user: String::new(),
            stdout_path: "/x/.web.stdout.fifo".into(),
            resources: Some(pb::Resources {
                allocated_resources: Some(pb::AllocatedTaskResources {
                    cpu: Some(pb::AllocatedCpuResources { cpu_shares: 500 }),
                    memory: Some(pb::AllocatedMemoryResources {
                        memory_mb: 256,
                        memory_max_mb: 512,
                    }),
                    networks: vec![],
                }),
                linux_resources: Some(pb::LinuxResources {
                    cpu_shares: 0,
                    cpuset_cgroup: "/sys/fs/cgroup/nomad.slice/share.slice/x.scope".into(),
                    ..Default::default()
                }),
                ports: vec![],
            }),
            network_isolation_spec: Some(pb::NetworkIsolationSpec {
                mode: pb::network_isolation_spec::NetworkIsolationMode::Group as i32,
                path: "/var/run/netns/alloc1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn task_spec_takes_nomads_facts() {
        let s = task_spec(&cfg());
        let s = match s {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.id.as_str(), "alloc1/web/0a1b2c3d");
        assert_eq!(s.user, None);
        assert_eq!(s.resources.cpu_shares, 500, "falls back to allocated cpu");
        assert_eq!(s.resources.memory_max_mb, 512);
        assert_eq!(s.netns_path, Some(PathBuf::from("/var/run/netns/alloc1")));
        assert!(s.resources.cpuset_cgroup.ends_with("x.scope"));
    }

    #[test]
    fn host_network_mode_has_no_netns() {
        let mut c = cfg();
        c.network_isolation_spec = Some(pb::NetworkIsolationSpec::default());
        assert_eq!(task_spec(&c).ok().and_then(|s| s.netns_path), None);
    }

    #[test]
    fn bad_task_id_names_the_field() {
        let mut c = cfg();
        c.id = String::new();
        let e = task_spec(&c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("task.id:"), "{e}");
        c.id = "a\0b".into();
        assert!(task_spec(&c).is_err());
    }

    #[test]
    fn handle_without_state_or_wrong_version_is_rejected_with_field() {
        let mut h = pb::TaskHandle {
            version: HANDLE_VERSION,
            ..Default::default()
        };
        let e = driver_state(&h)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("handle.driver_state"), "{e}");
        h.driver_state = b"{not json".to_vec();
        assert!(driver_state(&h).is_err());
        h.version = 0;
        let e = driver_state(&h)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("handle.version"), "{e}");
    }

    #[test]
    fn inspect_always_sets_timestamps_and_result() {
        let v = TaskView {
            id: TaskId::parse("a/b/c").unwrap_or_default(),
            name: "b".into(),
            phase: PhaseName::Running,
            started_at: Some(UNIX_EPOCH + Duration::from_secs(10)),
            completed_at: None,
            result: None,
            attributes: Default::default(),
        };
        let s = task_status(&v);
        assert_eq!(s.state, pb::TaskState::Running as i32);
        assert_eq!(s.started_at.map(|t| t.seconds), Some(10));
        assert_eq!(s.completed_at.map(|t| t.seconds), Some(GO_ZERO_TIME_SECS));
        assert!(s.result.is_some());
    }

    #[test]
    fn durations_clamp_negative_to_zero() {
        let d = prost_types::Duration {
            seconds: 5,
            nanos: 500,
        };
        assert_eq!(duration(Some(&d)), Duration::new(5, 500));
        let n = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert_eq!(duration(Some(&n)), Duration::ZERO);
        assert_eq!(duration(None), Duration::ZERO);
    }

    #[test]
    fn total_ticks_are_mhz_used() {
        let id = TaskId::parse("a/b/c").unwrap_or_default();
        let cpu = CpuPercent {
            user: 30.0,
            system: 20.0,
            total: 50.0,
        };
        let s = task_stats(&id, &Usage::default(), cpu, 2000, UNIX_EPOCH);
        let c = s.agg_resource_usage.and_then(|a| a.cpu).unwrap_or_default();
        assert!((c.total_ticks - 1000.0).abs() < 1e-9);
        assert!((c.percent - 50.0).abs() < 1e-9);
        assert!(c
            .measured_fields
            .contains(&(pb::cpu_usage::Fields::TotalTicks as i32)));
    }

    #[test]
    fn stats_always_have_timestamp_and_aggregate() {
        let id = TaskId::parse("a/b/c").unwrap_or_default();
        let s = task_stats(&id, &Usage::default(), CpuPercent::default(), 0, UNIX_EPOCH);
        assert!(s.timestamp.is_some());
        assert!(s
            .agg_resource_usage
            .as_ref()
            .and_then(|a| a.cpu.as_ref())
            .is_some());
        assert!(s
            .agg_resource_usage
            .as_ref()
            .and_then(|a| a.memory.as_ref())
            .is_some());
    }
}
