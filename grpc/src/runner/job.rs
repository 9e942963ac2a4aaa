//! The parts of a Nomad job file the local runner needs, read with hcl-rs: job, groups, their
//! network ports, and each task's driver, user, config body, env, resources, kill settings and
//! templates. Expressions that need the task's environment (config, env, template data) are kept
//! unevaluated; everything else must be a constant.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Why a job file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid HCL.
    #[error("job file {path} is not valid HCL: {source}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        source: hcl::Error,
    },
    /// Valid HCL, but not a job the runner can use.
    #[error("{field}: {reason}")]
    Invalid {
        /// Where, e.g. `job "http" group "web" task "server" kill_timeout`.
        field: String,
        /// Why.
        reason: String,
    },
}

/// A job: the runner uses its name and groups.
#[derive(Clone, Debug)]
pub struct Job {
    /// The job's label (`job "<name>"`), also its id.
    pub name: String,
    /// `type` (service, batch, sysbatch, system).
    pub job_type: String,
    /// Job-level `meta`.
    pub meta: BTreeMap<String, String>,
    /// Task groups, in file order.
    pub groups: Vec<Group>,
}

/// A task group.
#[derive(Clone, Debug)]
pub struct Group {
    /// Group label.
    pub name: String,
    /// The group's `network` block, if any.
    pub network: Option<Network>,
    /// Group-level `meta`.
    pub meta: BTreeMap<String, String>,
    /// Tasks, in file order.
    pub tasks: Vec<Task>,
}

/// A group `network` block.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// `mode` (`host` when unset, `bridge`, …).
    pub mode: String,
    /// Ports, in file order.
    pub ports: Vec<PortSpec>,
}

/// One `port "<label>" { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The label (`NOMAD_PORT_<label>`).
    pub label: String,
    /// `static`: the host port as given.
    pub static_port: Option<u16>,
    /// `to`: the port the task sees (bridge mode).
    pub to: Option<u16>,
}

/// A task's `resources` (Nomad's defaults: cpu 100 MHz, memory 300 MiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// `cpu`, MHz.
    pub cpu: i64,
    /// `cores`, reserved cores.
    pub cores: i64,
    /// `memory`, MiB.
    pub memory: i64,
    /// `memory_max`, MiB (0 = unset, -1 = unlimited).
    pub memory_max: i64,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: 100,
            cores: 0,
            memory: 300,
            memory_max: 0,
        }
    }
}

/// One `template { … }` block.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    /// `destination`, relative to the task dir.
    pub destination: String,
    /// `data`, unevaluated (HCL interpolation happens with the task's variables).
    pub data: Option<hcl::Expression>,
    /// `source`, if the template is read from a file instead.
    pub source: Option<String>,
    /// `perms`, octal (default `644`).
    pub perms: String,
    /// `env = true`: the rendered file is read as KEY=VALUE lines into the task's environment.
    pub env: bool,
    /// `left_delimiter` (default `{{`).
    pub left_delimiter: String,
}

/// A task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Task label.
    pub name: String,
    /// `driver`.
    pub driver: String,
    /// `user`, if set.
    pub user: Option<String>,
    /// The `config { … }` body, unevaluated.
    pub config: hcl::Body,
    /// `env { … }`, unevaluated, in file order.
    pub env: Vec<(String, hcl::Expression)>,
    /// `resources`.
    pub resources: Resources,
    /// `kill_timeout` (default 5 s).
    pub kill_timeout: Duration,
    /// `kill_signal`, if set.
    pub kill_signal: Option<String>,
    /// Task-level `meta`.
    pub meta: BTreeMap<String, String>,
    /// `template` blocks.
    pub templates: Vec<TemplateSpec>,
    /// `logs { disabled = true }`.
    pub logs_disabled: bool,
    /// `lifecycle { hook = "…" }` (None = a main task).
    pub lifecycle_hook: Option<String>,
    /// `lifecycle { sidecar = true }`: stopped once the main tasks have ended.
    pub sidecar: bool,
}

/// Nomad's default `kill_timeout`.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

impl Job {
    /// Reads and parses a job file.
    pub fn from_file(path: &Path) -> Result<Self, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses job file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, JobError> {
        let body = hcl::parse(text).map_err(|source| JobError::Syntax {
            path: origin.to_owned(),
            source,
        })?;
        let jobs: Vec<&hcl::Block> = body
            .blocks()
            .filter(|b| b.identifier.as_str() == "job")
            .collect();
        let [job] = jobs.as_slice() else {
            return Err(invalid(
                origin,
                &format!("expected exactly one job block, found {}", jobs.len()),
            ));
        };
        let name = one_label(job, "job")?;
        let at = format!("job {name:?}");
        let mut groups = Vec::new();
        for g in job
            .body
            .blocks()
            .filter(|b| b.identifier.as_str() == "group")
        {
            groups.push(parse_group(g, &at)?);
        }
        if groups.is_empty() {
            return Err(invalid(&at, "the job has no group"));
        }
        Ok(Self {
            job_type: const_string(&job.body, "type", &at)?.unwrap_or_else(|| "service".into()),
            meta: meta(&job.body, &at)?,
            name,
            groups,
        })
    }

    /// Every (group, task) pair, in file order.
    pub fn tasks(&self) -> impl Iterator<Item = (&Group, &Task)> {
        self.groups
            .iter()
            .flat_map(|g| g.tasks.iter().map(move |t| (g, t)))
    }
}

fn parse_group(g: &hcl::Block, at: &str) -> Result<Group, JobError> {
    let name = one_label(g, &format!("{at} group"))?;
    let at = format!("{at} group {name:?}");
    let mut tasks = Vec::new();
    for t in g.body.blocks().filter(|b| b.identifier.as_str() == "task") {
        tasks.push(parse_task(t, &at)?);
    }
    if tasks.is_empty() {
        return Err(invalid(&at, "the group has no task"));
    }
    let network = match blocks(&g.body, "network").as_slice() {
        [] => None,
        [n] => Some(parse_network(n, &format!("{at} network"))?),
        _ => return Err(invalid(&at, "only one network block is supported")),
    };
    Ok(Group {
        meta: meta(&g.body, &at)?,
        name,
        network,
        tasks,
    })
}

fn parse_network(n: &hcl::Block, at: &str) -> Result<Network, JobError> {
    let mut ports = Vec::new();
    for p in n.body.blocks().filter(|b| b.identifier.as_str() == "port") {
        let label = one_label(p, &format!("{at} port"))?;
        let pat = format!("{at} port {label:?}");
        ports.push(PortSpec {
            static_port: const_port(&p.body, "static", &pat)?,
            to: const_port(&p.body, "to", &pat)?,
            label,
        });
    }
    Ok(Network {
        mode: const_string(&n.body, "mode", at)?.unwrap_or_else(|| "host".into()),
        ports,
    })
}

fn parse_task(t: &hcl::Block, at: &str) -> Result<Task, JobError> {
    let name = one_label(t, &format!("{at} task"))?;
    let at = format!("{at} task {name:?}");
    let driver = const_string(&t.body, "driver", &at)?
        .ok_or_else(|| invalid(&format!("{at} driver"), "required attribute is missing"))?;
    let config = match blocks(&t.body, "config").as_slice() {
        [] => hcl::Body::default(),
        [c] => c.body.clone(),
        _ => return Err(invalid(&at, "only one config block is allowed")),
    };
    let env = match blocks(&t.body, "env").as_slice() {
        [] => Vec::new(),
        [e] => e
            .body
            .attributes()
            .map(|a| (a.key.as_str().to_owned(), a.expr.clone()))
            .collect(),
        _ => return Err(invalid(&at, "only one env block is allowed")),
    };
    let resources = match blocks(&t.body, "resources").as_slice() {
        [] => Resources::default(),
        [r] => {
            let rat = format!("{at} resources");
            let d = Resources::default();
            Resources {
                cpu: const_int(&r.body, "cpu", &rat)?.unwrap_or(d.cpu),
                cores: const_int(&r.body, "cores", &rat)?.unwrap_or(d.cores),
                memory: const_int(&r.body, "memory", &rat)?.unwrap_or(d.memory),
                memory_max: const_int(&r.body, "memory_max", &rat)?.unwrap_or(d.memory_max),
            }
        }
        _ => return Err(invalid(&at, "only one resources block is allowed")),
    };
    let kill_timeout = match const_string(&t.body, "kill_timeout", &at)? {
        None => DEFAULT_KILL_TIMEOUT,
        Some(s) => parse_go_duration(&s)
            .map_err(|reason| invalid(&format!("{at} kill_timeout"), &reason))?,
    };
    let mut templates = Vec::new();
    for (i, b) in blocks(&t.body, "template").iter().enumerate() {
        let tat = format!("{at} template[{i}]");
        templates.push(TemplateSpec {
            destination: const_string(&b.body, "destination", &tat)?.ok_or_else(|| {
                invalid(
                    &format!("{tat} destination"),
                    "required attribute is missing",
                )
            })?,
            data: b
                .body
                .attributes()
                .find(|a| a.key.as_str() == "data")
                .map(|a| a.expr.clone()),
            source: const_string(&b.body, "source", &tat)?,
            perms: const_string(&b.body, "perms", &tat)?.unwrap_or_else(|| "644".into()),
            env: const_bool(&b.body, "env", &tat)?.unwrap_or(false),
            left_delimiter: const_string(&b.body, "left_delimiter", &tat)?
                .unwrap_or_else(|| "{{".into()),
        });
    }
    let (lifecycle_hook, sidecar) = match blocks(&t.body, "lifecycle").as_slice() {
        [] => (None, false),
        [l] => {
            let lat = format!("{at} lifecycle");
            (
                const_string(&l.body, "hook", &lat)?,
                const_bool(&l.body, "sidecar", &lat)?.unwrap_or(false),
            )
        }
        _ => return Err(invalid(&at, "only one lifecycle block is allowed")),
    };
    let logs_disabled = match blocks(&t.body, "logs").as_slice() {
        [l] => const_bool(&l.body, "disabled", &format!("{at} logs"))?.unwrap_or(false),
        _ => false,
    };
    Ok(Task {
        user: const_string(&t.body, "user", &at)?,
        kill_signal: const_string(&t.body, "kill_signal", &at)?,
        meta: meta(&t.body, &at)?,
        name,
        driver,
        config,
        env,
        resources,
        kill_timeout,
        templates,
        logs_disabled,
        lifecycle_hook,
        sidecar,
    })
}

/// Parses Go's `time.ParseDuration` syntax (`5s`, `1m30s`, `1.5h`, `250ms`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!(
            "{text:?} is not a duration (e.g. \"5s\", \"1m30s\")"
        ));
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (e.g. \"5s\", \"1m30s\")"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?}: missing unit (ns, us, ms, s, m, h)")),
            other => return Err(format!("{text:?}: unknown unit {other:?}")),
        };
        total += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("{text:?}: {e}"))
}

fn blocks<'b>(body: &'b hcl::Body, name: &str) -> Vec<&'b hcl::Block> {
    body.blocks()
        .filter(|b| b.identifier.as_str() == name)
        .collect()
}

fn one_label(b: &hcl::Block, what: &str) -> Result<String, JobError> {
    match b.labels.as_slice() {
        [l] if !l.as_str().is_empty() => Ok(l.as_str().to_owned()),
        _ => Err(invalid(what, "needs exactly one non-empty label")),
    }
}

/// A constant attribute (no variables): the value, or an error naming the attribute.
fn const_value(body: &hcl::Body, name: &str, at: &str) -> Result<Option<hcl::Value>, JobError> {
    let Some(a) = body.attributes().find(|a| a.key.as_str() == name) else {
        return Ok(None);
    };
    super::hcl_eval::evaluate(&a.expr, &hcl::eval::Context::new())
        .map(Some)
        .map_err(|e| invalid(&format!("{at} {name}"), &format!("must be a constant: {e}")))
}

fn const_string(body: &hcl::Body, name: &str, at: &str) -> Result<Option<String>, JobError> {
    match const_value(body, name, at)? {
        None | Some(hcl::Value::Null) => Ok(None),
        Some(hcl::Value::String(s)) => Ok(Some(s)),
        Some(hcl::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(hcl::Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(invalid(&format!("{at} {name}"), "must be a string")),
    }
}

fn const_bool(body: &hcl::Body, name: &str, at: &str) -> Result<Option<bool>, JobError> {
    match const_value(body, name, at)? {
        None | Some(hcl::Value::Null) => Ok(None),
        Some(hcl::Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(invalid(&format!("{at} {name}"), "must be true or false")),
    }
}

fn const_int(body: &hcl::Body, name: &str, at: &str) -> Result<Option<i64>, JobError> {
    match const_value(body, name, at)? {
        None | Some(hcl::Value::Null) => Ok(None),
        Some(hcl::Value::Number(n)) if n.as_i64().is_some() && !n.is_f64() => Ok(n.as_i64()),
        Some(v) => Err(invalid(
            &format!("{at} {name}"),
            &format!("must be a whole number, found {v}"),
        )),
    }
}

fn const_port(body: &hcl::Body, name: &str, at: &str) -> Result<Option<u16>, JobError> {
    match const_int(body, name, at)? {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    &format!("{at} {name}"),
                    &format!("{p} is not a port (1-65535)"),
                )
            }),
    }
}

/// `meta { k = "v" }` blocks and the `meta = { "k.x" = "v" }` attribute form.
fn meta(body: &hcl::Body, at: &str) -> Result<BTreeMap<String, String>, JobError> {
    let mut out = BTreeMap::new();
    match const_value(body, "meta", at)? {
        None | Some(hcl::Value::Null) => {}
        Some(hcl::Value::Object(m)) => {
            for (k, v) in m {
                let v = match v {
                    hcl::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(k, v);
            }
        }
        Some(_) => return Err(invalid(&format!("{at} meta"), "must be a map of strings")),
    }
    for b in blocks(body, "meta") {
        for a in b.body.attributes() {
            let key = a.key.as_str();
            let v = const_string(&b.body, key, &format!("{at} meta"))?.unwrap_or_default();
            out.insert(key.to_owned(), v);
        }
    }
    Ok(out)
}

fn invalid(field: &str, reason: &str) -> JobError {
    JobError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: &str = r#"
job "http" {
  group "web" {
    network {
      port "http" {}
      port "admin" { static = 9000 }
    }
    task "server" {
      driver       = "pledge"
      user         = "nobody"
      kill_timeout = "1m30s"
      kill_signal  = "SIGINT"
      config {
        command = "python3"
        args    = ["-m", "http.server", "${NOMAD_PORT_http}"]
      }
      env { GREETING = "hi ${NOMAD_TASK_NAME}" }
      resources {
        memory     = 128
        memory_max = 200
      }
      meta { owner = "ops" }
      template {
        destination = "local/index.html"
        data        = <<EOH
<title>example</title>
EOH
      }
    }
  }
}
"#;

    #[test]
    fn parses_groups_tasks_ports_resources_and_templates() {
        let job = Job::parse(HTTP, "http.hcl").expect("parse");
        assert_eq!(job.name, "http");
        assert_eq!(job.job_type, "service");
        let (g, t) = job.tasks().next().expect("task");
        assert_eq!(g.name, "web");
        let net = g.network.as_ref().expect("network");
        assert_eq!(net.mode, "host");
        assert_eq!(
            net.ports,
            vec![
                PortSpec {
                    label: "http".into(),
                    static_port: None,
                    to: None
                },
                PortSpec {
                    label: "admin".into(),
                    static_port: Some(9000),
                    to: None
                },
            ]
        );
        assert_eq!(t.name, "server");
        assert_eq!(t.driver, "pledge");
        assert_eq!(t.user.as_deref(), Some("nobody"));
        assert_eq!(t.kill_timeout, Duration::from_secs(90));
        assert_eq!(t.kill_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            t.resources,
            Resources {
                cpu: 100,
                cores: 0,
                memory: 128,
                memory_max: 200
            }
        );
        assert_eq!(t.env.len(), 1);
        assert_eq!(t.meta["owner"], "ops");
        assert_eq!(t.templates[0].destination, "local/index.html");
        assert_eq!(t.templates[0].perms, "644");
        assert!(t.config.attributes().any(|a| a.key.as_str() == "args"));
    }

    #[test]
    fn bad_job_files_name_the_problem() {
        let e = Job::parse("job \"x\" {", "a.hcl").expect_err("syntax");
        assert!(e.to_string().contains("a.hcl is not valid HCL"), "{e}");
        let e = Job::parse("group \"g\" {}", "a.hcl").expect_err("no job");
        assert!(
            e.to_string().contains("exactly one job block, found 0"),
            "{e}"
        );
        let e = Job::parse(
            "job \"x\" {\n group \"g\" {\n task \"t\" {}\n }\n }",
            "a.hcl",
        )
        .expect_err("no driver");
        assert!(e.to_string().contains("task \"t\" driver: required"), "{e}");
        let e = Job::parse(
            "job \"x\" {\n group \"g\" {\n task \"t\" {\n driver = \"pledge\"\n kill_timeout = \"5 parsecs\"\n }\n }\n }",
            "a.hcl",
        )
        .expect_err("duration");
        assert!(e.to_string().contains("kill_timeout"), "{e}");
        let e = Job::parse(
            "job \"x\" {\n group \"g\" {\n network {\n port \"p\" {\n static = 70000\n }\n }\n task \"t\" {\n driver = \"pledge\"\n }\n }\n }",
            "a.hcl",
        )
        .expect_err("port");
        assert!(e.to_string().contains("70000 is not a port"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("-5s").is_err());
        assert!(parse_go_duration("5 s").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
