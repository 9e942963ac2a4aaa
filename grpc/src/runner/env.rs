//! The task environment Nomad's client builds (client/taskenv `Builder.buildEnv`, with
//! `fs_isolation = NONE`, so directories are host paths) and the HCL evaluation context made from
//! it (`TaskEnv.AllValues`: each variable by name, `env["…"]`, `node.*`, `attr.*`, `meta.*`).

use super::allocdir::TaskDir;
use super::job::{Group, Job, JobError, Task};
use super::ports::AllocatedPort;
use std::collections::BTreeMap;

/// Host variables Nomad's client never passes to tasks (`env.denylist` default), plus the
/// go-plugin handshake variables of the runner's own plugin child.
pub const ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_AUTH",
    "VAULT_TOKEN",
    "NOMAD_LICENSE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "NOMAD_PLUGIN_MAGIC_COOKIE",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_MIN_PORT",
    "PLUGIN_MAX_PORT",
    "PLUGIN_UNIX_SOCKET_DIR",
];

/// What the runner knows about "the node" (this machine), as Nomad's node attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// `node.unique.id`.
    pub id: String,
    /// `node.unique.name` (the hostname).
    pub name: String,
    /// `node.datacenter`.
    pub datacenter: String,
    /// `node.region`.
    pub region: String,
    /// `attr.*` without the prefix (`kernel.name`, `unique.hostname`, …).
    pub attrs: BTreeMap<String, String>,
}

impl NodeFacts {
    /// Facts of this machine, as a `nomad agent -dev` would report the main ones.
    pub fn probe(id: String) -> Self {
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned());
        let mut attrs = BTreeMap::new();
        attrs.insert("kernel.name".into(), "linux".into());
        if let Ok(u) = nix::sys::utsname::uname() {
            attrs.insert(
                "kernel.version".into(),
                u.release().to_string_lossy().into_owned(),
            );
        }
        attrs.insert(
            "cpu.arch".into(),
            std::env::consts::ARCH.replace("x86_64", "amd64"),
        );
        attrs.insert("os.name".into(), "linux".into());
        attrs.insert("unique.hostname".into(), name.clone());
        attrs.insert("driver.pledge".into(), "1".into());
        Self {
            id,
            name,
            datacenter: "dc1".into(),
            region: "global".into(),
            attrs,
        }
    }
}

/// Everything the environment is built from.
#[derive(Clone, Debug)]
pub struct EnvInputs<'a> {
    /// The job.
    pub job: &'a Job,
    /// The task's group.
    pub group: &'a Group,
    /// The task.
    pub task: &'a Task,
    /// Allocation id (a UUID).
    pub alloc_id: &'a str,
    /// The task's directories.
    pub dirs: &'a TaskDir,
    /// The group's allocated ports.
    pub ports: &'a [AllocatedPort],
    /// The node.
    pub node: &'a NodeFacts,
    /// The runner's own environment (host env), before the denylist.
    pub host_env: BTreeMap<String, String>,
    /// `NOMAD_PARENT_CGROUP` (`nomad.slice` on v2, `/nomad` on v1).
    pub cgroup_parent: &'a str,
}

/// The task's environment and node attributes, ready for interpolation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnv {
    /// Environment variables passed to the task (`TaskConfig.env`).
    pub env: BTreeMap<String, String>,
    /// Node attributes by full key (`node.unique.id`, `attr.kernel.name`).
    pub node_attrs: BTreeMap<String, String>,
}

impl TaskEnv {
    /// Builds the environment in Nomad's order: directories, limits, ids, ports, meta, host
    /// variables (never overriding), then the task's `env` block (interpolated).
    pub fn build(inp: &EnvInputs<'_>) -> Result<Self, JobError> {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("NOMAD_ALLOC_DIR", inp.dirs.shared.display().to_string());
        set("NOMAD_TASK_DIR", inp.dirs.local.display().to_string());
        set("NOMAD_SECRETS_DIR", inp.dirs.secrets.display().to_string());
        let r = inp.task.resources;
        if r.memory != 0 {
            set("NOMAD_MEMORY_LIMIT", r.memory.to_string());
        }
        if r.memory_max != 0 {
            set("NOMAD_MEMORY_MAX_LIMIT", r.memory_max.to_string());
        }
        if r.cpu != 0 {
            set("NOMAD_CPU_LIMIT", r.cpu.to_string());
        }
        if r.cores > 0 {
            set("NOMAD_CPU_CORES", cores_list(r.cores));
        }
        set("NOMAD_ALLOC_ID", inp.alloc_id.to_owned());
        set(
            "NOMAD_SHORT_ALLOC_ID",
            inp.alloc_id.chars().take(8).collect(),
        );
        set(
            "NOMAD_ALLOC_NAME",
            format!("{}.{}[0]", inp.job.name, inp.group.name),
        );
        set("NOMAD_GROUP_NAME", inp.group.name.clone());
        set("NOMAD_ALLOC_INDEX", "0".into());
        set("NOMAD_TASK_NAME", inp.task.name.clone());
        set("NOMAD_JOB_ID", inp.job.name.clone());
        set("NOMAD_JOB_NAME", inp.job.name.clone());
        set("NOMAD_DC", inp.node.datacenter.clone());
        set("NOMAD_PARENT_CGROUP", inp.cgroup_parent.to_owned());
        set("NOMAD_NAMESPACE", "default".into());
        set("NOMAD_REGION", inp.node.region.clone());
        for p in inp.ports {
            let host = p.value.to_string();
            let addr = format!("{}:{}", p.host_ip, host);
            let seen = if p.to > 0 {
                p.to.to_string()
            } else {
                host.clone()
            };
            set(&format!("NOMAD_ADDR_{}", p.label), addr.clone());
            set(&format!("NOMAD_HOST_ADDR_{}", p.label), addr);
            set(&format!("NOMAD_IP_{}", p.label), p.host_ip.clone());
            set(&format!("NOMAD_HOST_IP_{}", p.label), p.host_ip.clone());
            set(&format!("NOMAD_PORT_{}", p.label), seen.clone());
            set(&format!("NOMAD_ALLOC_PORT_{}", p.label), seen);
            set(&format!("NOMAD_HOST_PORT_{}", p.label), host);
        }
        // Job, then group, then task meta: the more specific wins (Job.CombinedTaskMeta).
        let mut meta = inp.job.meta.clone();
        meta.extend(inp.group.meta.clone());
        meta.extend(inp.task.meta.clone());
        for (k, v) in &meta {
            set(&format!("NOMAD_META_{}", k.to_uppercase()), v.clone());
            set(&format!("NOMAD_META_{k}"), v.clone());
        }
        for (k, v) in &inp.host_env {
            if !ENV_DENYLIST.contains(&k.as_str()) {
                env.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut node_attrs = BTreeMap::new();
        node_attrs.insert("node.unique.id".to_owned(), inp.node.id.clone());
        node_attrs.insert("node.unique.name".to_owned(), inp.node.name.clone());
        node_attrs.insert("node.datacenter".to_owned(), inp.node.datacenter.clone());
        node_attrs.insert("node.region".to_owned(), inp.node.region.clone());
        node_attrs.insert("node.class".to_owned(), String::new());
        for (k, v) in &inp.node.attrs {
            node_attrs.insert(format!("attr.{k}"), v.clone());
        }
        let mut out = Self {
            env: clean_keys(env),
            node_attrs,
        };
        // The task's env block may use everything above.
        let ctx_env = out.clone();
        for (k, expr) in &inp.task.env {
            let v = ctx_env.eval_string(expr, &format!("task {:?} env.{k}", inp.task.name))?;
            out.env.insert(k.clone(), v);
        }
        out.env = clean_keys(out.env);
        Ok(out)
    }

    /// The HCL evaluation context: every variable, `env`, `node`, `attr`, `meta`.
    pub fn context(&self) -> hcl::eval::Context<'static> {
        let mut tree = hcl::Map::new();
        for (k, v) in self.env.iter().chain(self.node_attrs.iter()) {
            add_nested(&mut tree, k, v);
        }
        tree.insert(
            "env".into(),
            hcl::Value::Object(
                self.env
                    .iter()
                    .map(|(k, v)| (k.clone(), hcl::Value::String(v.clone())))
                    .collect(),
            ),
        );
        // node.attr / node.meta alias attr.* / meta.*, as in Nomad.
        let attr = tree.get("attr").cloned();
        let meta = tree.get("meta").cloned();
        if let Some(hcl::Value::Object(node)) = tree.get_mut("node") {
            if let Some(a) = attr {
                node.insert("attr".into(), a);
            }
            if let Some(m) = meta {
                node.insert("meta".into(), m);
            }
        }
        let mut ctx = hcl::eval::Context::new();
        for (k, v) in tree {
            ctx.declare_var(k, v);
        }
        ctx
    }

    /// Interpolates every expression of a body (a task's `config { }`).
    pub fn eval_body(&self, body: &hcl::Body, field: &str) -> Result<hcl::Body, JobError> {
        super::hcl_eval::evaluate(body, &self.context()).map_err(|e| JobError::Invalid {
            field: field.to_owned(),
            reason: format!("interpolation failed: {e}"),
        })
    }

    /// Interpolates one expression that must yield a string (numbers and bools are converted).
    pub fn eval_string(&self, expr: &hcl::Expression, field: &str) -> Result<String, JobError> {
        let v =
            super::hcl_eval::evaluate(expr, &self.context()).map_err(|e| JobError::Invalid {
                field: field.to_owned(),
                reason: format!("interpolation failed: {e}"),
            })?;
        match v {
            hcl::Value::String(s) => Ok(s),
            hcl::Value::Number(n) => Ok(n.to_string()),
            hcl::Value::Bool(b) => Ok(b.to_string()),
            other => Err(JobError::Invalid {
                field: field.to_owned(),
                reason: format!("must be a string, found {other}"),
            }),
        }
    }
}

/// `addNestedKey`: `a.b.c = v` becomes `{a = {b = {c = v}}}`; keys that collide with an
/// existing leaf or object are left out, as Nomad does.
fn add_nested(tree: &mut hcl::Map<String, hcl::Value>, key: &str, value: &str) {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return;
    }
    let mut cur = tree;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            if !cur.contains_key(*part) {
                cur.insert((*part).to_owned(), hcl::Value::String(value.to_owned()));
            }
            return;
        }
        let slot = cur
            .entry((*part).to_owned())
            .or_insert_with(|| hcl::Value::Object(hcl::Map::new()));
        match slot {
            hcl::Value::Object(m) => cur = m,
            _ => return,
        }
    }
}

/// Nomad's `helper.CleanEnvVar` on port and meta variable names: anything other than
/// `[A-Za-z0-9_]` (and not a leading digit) becomes `_`.
fn clean_keys(env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    const PREFIXES: &[&str] = &[
        "NOMAD_ADDR_",
        "NOMAD_IP_",
        "NOMAD_PORT_",
        "NOMAD_HOST_PORT_",
        "NOMAD_META_",
    ];
    env.into_iter()
        .map(|(k, v)| {
            if PREFIXES.iter().any(|p| k.starts_with(p)) {
                let cleaned = k
                    .char_indices()
                    .map(|(i, c)| {
                        if c.is_ascii_alphanumeric() && !(i == 0 && c.is_ascii_digit()) || c == '_'
                        {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                (cleaned, v)
            } else {
                (k, v)
            }
        })
        .collect()
}

/// The first `n` cpus as Nomad's cpuset string (`0-1`); the runner does not reserve cores.
fn cores_list(n: i64) -> String {
    match n {
        1 => "0".to_owned(),
        n => format!("0-{}", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::allocdir::RunDir;

    const JOB: &str = r#"
job "web" {
  meta { team = "ops" }
  group "g" {
    network {
      port "http" {
        static = 8181
      }
    }
    task "t" {
      driver = "pledge"
      meta = { "build.id" = "7" }
      env {
        URL   = "http://${NOMAD_ADDR_http}/"
        WHERE = "${node.unique.name}-${attr.kernel.name}"
        DIR   = "${env["NOMAD_TASK_DIR"]}"
      }
      config {
        args = ["${NOMAD_PORT_http}", "${NOMAD_TASK_DIR}/x", "${NOMAD_META_team}"]
      }
    }
  }
}
"#;

    #[test]
    fn builds_nomad_variables_and_interpolates_config_and_env() {
        let job = Job::parse(JOB, "web.hcl").expect("job");
        let (g, t) = job.tasks().next().expect("task");
        let run = RunDir::create(None).expect("run");
        let alloc = run
            .alloc("11112222-3333-4444-5555-666677778888")
            .expect("dir");
        let dirs = alloc.task_dir(&t.name).expect("task dir");
        let ports = [AllocatedPort {
            label: "http".into(),
            value: 8181,
            to: 0,
            host_ip: "127.0.0.1".into(),
        }];
        let node = NodeFacts {
            id: "node-id".into(),
            name: "box".into(),
            datacenter: "dc1".into(),
            region: "global".into(),
            attrs: [("kernel.name".to_owned(), "linux".to_owned())].into(),
        };
        let mut host_env = BTreeMap::new();
        host_env.insert("HOME".to_owned(), "/root".to_owned());
        host_env.insert("VAULT_TOKEN".to_owned(), "secret".to_owned());
        host_env.insert("NOMAD_TASK_DIR".to_owned(), "/not/this".to_owned());
        let env = TaskEnv::build(&EnvInputs {
            job: &job,
            group: g,
            task: t,
            alloc_id: "11112222-3333-4444-5555-666677778888",
            dirs: &dirs,
            ports: &ports,
            node: &node,
            host_env,
            cgroup_parent: "nomad.slice",
        })
        .expect("env");
        let e = &env.env;
        assert_eq!(e["NOMAD_SHORT_ALLOC_ID"], "11112222");
        assert_eq!(e["NOMAD_ALLOC_NAME"], "web.g[0]");
        assert_eq!(e["NOMAD_TASK_DIR"], dirs.local.display().to_string());
        assert_eq!(e["NOMAD_ALLOC_DIR"], dirs.shared.display().to_string());
        assert_eq!(e["NOMAD_ADDR_http"], "127.0.0.1:8181");
        assert_eq!(e["NOMAD_PORT_http"], "8181");
        assert_eq!(e["NOMAD_MEMORY_LIMIT"], "300");
        assert_eq!(e["NOMAD_META_TEAM"], "ops");
        assert_eq!(e["NOMAD_META_build_id"], "7");
        assert_eq!(e["HOME"], "/root");
        assert!(!e.contains_key("VAULT_TOKEN"));
        assert_eq!(e["URL"], "http://127.0.0.1:8181/");
        assert_eq!(e["WHERE"], "box-linux");
        assert_eq!(e["DIR"], dirs.local.display().to_string());
        let cfg = env.eval_body(&t.config, "config").expect("eval");
        let args = cfg
            .attributes()
            .find(|a| a.key.as_str() == "args")
            .map(|a| hcl::Value::from(a.expr.clone()))
            .expect("args");
        assert_eq!(
            args,
            hcl::Value::Array(vec![
                "8181".into(),
                format!("{}/x", dirs.local.display()).into(),
                "ops".into(),
            ])
        );
    }

    #[test]
    fn unknown_variables_are_errors_naming_the_field() {
        let env = TaskEnv {
            env: BTreeMap::new(),
            node_attrs: BTreeMap::new(),
        };
        let body = hcl::parse("command = \"${NOMAD_NOPE}\"\n").expect("hcl");
        let e = env
            .eval_body(&body, "task \"t\" config")
            .expect_err("unknown");
        assert!(
            e.to_string()
                .contains("task \"t\" config: interpolation failed"),
            "{e}"
        );
        assert!(e.to_string().contains("NOMAD_NOPE"), "{e}");
    }
}
