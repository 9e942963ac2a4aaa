//! `template` blocks, as far as the runner can honour them without consul-template: inline
//! `data` with no template actions is written to its destination (relative to the task dir,
//! never outside the task or alloc dir) with its `perms`; `env = true` files also feed the task
//! environment. Anything that needs consul-template is a clear error naming the limitation.

use super::allocdir::TaskDir;
use super::env::TaskEnv;
use super::job::TemplateSpec;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a template could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template needs consul-template.
    #[error(
        "template {destination:?}: {what}; the local runner renders only literal templates \
         (no {{{{ … }}}} actions, no source files). Run this job under Nomad, or inline the \
         content"
    )]
    NeedsConsulTemplate {
        /// Destination of the template.
        destination: String,
        /// What it needs.
        what: String,
    },
    /// The destination escapes the task and alloc directories, or is malformed.
    #[error("template {destination:?}: {reason}")]
    BadDestination {
        /// Destination.
        destination: String,
        /// Why.
        reason: String,
    },
    /// Interpolation, permissions or IO failed.
    #[error("template {destination:?}: {reason}")]
    Write {
        /// Destination.
        destination: String,
        /// Why.
        reason: String,
    },
}

/// What rendering produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Variables from `env = true` templates.
    pub env: BTreeMap<String, String>,
}

/// Writes every template of a task.
pub fn render_all(
    templates: &[TemplateSpec],
    env: &TaskEnv,
    dirs: &TaskDir,
) -> Result<Rendered, TemplateError> {
    let mut out = Rendered::default();
    for t in templates {
        let dest = &t.destination;
        if let Some(src) = &t.source {
            return Err(TemplateError::NeedsConsulTemplate {
                destination: dest.clone(),
                what: format!("it reads source {src:?}"),
            });
        }
        let data = match &t.data {
            None => String::new(),
            Some(expr) => env
                .eval_string(expr, &format!("template {dest:?} data"))
                .map_err(|e| TemplateError::Write {
                    destination: dest.clone(),
                    reason: e.to_string(),
                })?,
        };
        if let Some(at) = data.find(t.left_delimiter.as_str()) {
            let line = data[..at].matches('\n').count() + 1;
            return Err(TemplateError::NeedsConsulTemplate {
                destination: dest.clone(),
                what: format!(
                    "its data has a template action ({:?} on line {line})",
                    t.left_delimiter
                ),
            });
        }
        let path = destination(dirs, dest)?;
        let mode = u32::from_str_radix(t.perms.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| TemplateError::Write {
                destination: dest.clone(),
                reason: format!("perms {:?} is not an octal mode like \"644\"", t.perms),
            })?;
        let io = |e: std::io::Error| TemplateError::Write {
            destination: dest.clone(),
            reason: format!("{}: {e}", path.display()),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, data.as_bytes()).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        if t.env {
            out.env.extend(parse_env_file(&data));
        }
        out.files.push(path);
    }
    Ok(out)
}

/// Resolves a destination against the task dir; it must stay inside the task or alloc dir.
fn destination(dirs: &TaskDir, dest: &str) -> Result<PathBuf, TemplateError> {
    let bad = |reason: &str| TemplateError::BadDestination {
        destination: dest.to_owned(),
        reason: reason.to_owned(),
    };
    if dest.is_empty() {
        return Err(bad("destination is empty"));
    }
    if dest.contains('\0') {
        return Err(bad("destination contains a NUL byte"));
    }
    let joined = dirs.dir.join(dest);
    let mut clean = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let inside = |root: &Path| clean.starts_with(root) && clean != root;
    if inside(&dirs.dir) || inside(&dirs.shared) {
        Ok(clean)
    } else {
        Err(bad("destination escapes the task and alloc directories"))
    }
}

/// `KEY=VALUE` lines (blank lines and `#` comments skipped), as Nomad reads env templates.
fn parse_env_file(data: &str) -> BTreeMap<String, String> {
    data.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::allocdir::RunDir;

    fn spec(dest: &str, data: &str) -> TemplateSpec {
        let body = hcl::parse(&format!("data = <<EOH\n{data}\nEOH\n")).expect("hcl");
        TemplateSpec {
            destination: dest.into(),
            data: body.attributes().next().map(|a| a.expr.clone()),
            source: None,
            perms: "644".into(),
            env: false,
            left_delimiter: "{{".into(),
        }
    }

    fn env_of(dirs: &TaskDir) -> TaskEnv {
        TaskEnv {
            env: [(
                "NOMAD_TASK_DIR".to_owned(),
                dirs.local.display().to_string(),
            )]
            .into(),
            node_attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn literal_templates_are_written_with_their_perms() {
        let run = RunDir::create(None).expect("run");
        let a = run
            .alloc("aaaaaaaa-0000-0000-0000-000000000000")
            .expect("dir");
        let d = a.task_dir("t").expect("task");
        let mut s = spec(
            "local/index.html",
            "<title>example</title> in ${NOMAD_TASK_DIR}",
        );
        s.perms = "600".into();
        let r = render_all(&[s], &env_of(&d), &d).expect("render");
        let text = std::fs::read_to_string(d.local.join("index.html")).expect("file");
        assert_eq!(
            text,
            format!("<title>example</title> in {}\n", d.local.display())
        );
        let mode = std::fs::metadata(&r.files[0])
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn template_actions_and_sources_are_refused_with_the_reason() {
        let run = RunDir::create(None).expect("run");
        let a = run
            .alloc("bbbbbbbb-0000-0000-0000-000000000000")
            .expect("dir");
        let d = a.task_dir("t").expect("task");
        let e = render_all(
            &[spec(
                "local/a.conf",
                "line one\nport = {{ env \"NOMAD_PORT_http\" }}",
            )],
            &env_of(&d),
            &d,
        )
        .expect_err("action");
        let text = e.to_string();
        assert!(text.contains("template \"local/a.conf\""), "{text}");
        assert!(
            text.contains("template action (\"{{\" on line 2)"),
            "{text}"
        );
        assert!(text.contains("renders only literal templates"), "{text}");
        assert!(!d.local.join("a.conf").exists());
        let mut s = spec("local/b", "x");
        s.source = Some("/etc/hosts".into());
        assert!(render_all(&[s], &env_of(&d), &d)
            .expect_err("source")
            .to_string()
            .contains("reads source"));
    }

    #[test]
    fn destinations_cannot_escape_and_env_templates_feed_the_environment() {
        let run = RunDir::create(None).expect("run");
        let a = run
            .alloc("cccccccc-0000-0000-0000-000000000000")
            .expect("dir");
        let d = a.task_dir("t").expect("task");
        let e = render_all(&[spec("../../../etc/x", "x")], &env_of(&d), &d).expect_err("escape");
        assert!(e.to_string().contains("escapes"), "{e}");
        let mut s = spec("secrets/app.env", "# c\nA=1\nB = two\n");
        s.env = true;
        let r = render_all(&[s], &env_of(&d), &d).expect("env");
        assert_eq!(r.env["A"], "1");
        assert_eq!(r.env["B"], "two");
        // Into the shared alloc dir is allowed.
        render_all(&[spec("../alloc/data/x", "x")], &env_of(&d), &d).expect("alloc");
    }
}
