//! From a [`Recorder`] to the learned configuration and its two renderings: a ready-to-paste
//! HCL `config { }` block (with the reasons as comments) and JSON (for scripts and tests).

use super::cover::minimal_cover;
use super::paths::collapse;
use super::record::{Recorder, Requirement};
use pledge_core::policy::unveils::{self, TaskDirs};
use pledge_core::{Promise, PromiseSet, UnveilPerm, UnveilRule};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What, besides the recording, decides the output.
#[derive(Clone, Debug, Default)]
pub struct LearnInputs {
    /// Promises the sandbox adds by itself for this program (`rpath prot_exec` for a dynamic
    /// one): free in the cover and not printed.
    pub implicit: PromiseSet,
    /// Unveils the sandbox adds by itself (the program and its interpreter `rx`, the loader's
    /// directories): accesses they cover are not printed.
    pub extra_defaults: Vec<UnveilRule>,
    /// A Nomad task's directories (their default unveils are not printed either).
    pub task_dirs: Option<TaskDirs>,
    /// The tmp dir `tmppath` unveils (the CLI's `$TMPDIR`) when there are no task dirs.
    pub tmp_dir: Option<PathBuf>,
    /// Path prefixes the HCL block names by variable (`${NOMAD_TASK_DIR}` for a `--job` run's
    /// temporary task dir), longest first.
    pub path_names: Vec<(PathBuf, String)>,
    /// A directory whose paths no variable names (a `--job` run's temporary alloc dir): rules
    /// beneath it get a warning comment.
    pub unnamed_root: Option<PathBuf>,
}

/// The learned configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Learned {
    /// The promises to configure (without the implicit ones).
    #[serde(serialize_with = "ser_set")]
    pub promises: PromiseSet,
    /// Added by the sandbox anyway.
    #[serde(serialize_with = "ser_set")]
    pub implicit: PromiseSet,
    /// Unveil rules beyond the defaults, as `perm:path`.
    #[serde(serialize_with = "ser_rules")]
    pub unveil: Vec<UnveilRule>,
    /// Per configured promise: a call that fails without it.
    pub reasons: BTreeMap<String, String>,
    /// Calls no promise allows.
    pub unallowed: Vec<Requirement>,
    /// Calls answered ENOSYS as enforcement does (libc falls back): name → count.
    pub enosys: BTreeMap<String, u64>,
    /// Calls left out because they fail whatever the sandbox does: description → count.
    pub fail_anyway: BTreeMap<String, u64>,
    /// Distinct calls and paths seen.
    pub distinct_calls: usize,
    /// Distinct paths seen.
    pub distinct_paths: usize,
    /// See [`LearnInputs::path_names`].
    #[serde(skip)]
    pub path_names: Vec<(PathBuf, String)>,
    /// See [`LearnInputs::unnamed_root`].
    #[serde(skip)]
    pub unnamed_root: Option<PathBuf>,
}

fn ser_set<S: serde::Serializer>(p: &PromiseSet, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

fn ser_rules<S: serde::Serializer>(r: &[UnveilRule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|r| r.to_string()))
}

/// Computes the learned configuration.
pub fn learn_config(rec: &Recorder, inputs: &LearnInputs) -> Learned {
    let reqs: Vec<&Requirement> = rec.requirements().collect();
    let alts: Vec<Vec<PromiseSet>> = reqs.iter().map(|r| r.alternatives.clone()).collect();
    let promises = minimal_cover(&alts, &inputs.implicit);
    let all: PromiseSet = promises.iter().chain(inputs.implicit.iter()).collect();

    let mut reasons = BTreeMap::new();
    for p in promises.iter() {
        let without: PromiseSet = all.iter().filter(|q| *q != p).collect();
        let need = reqs.iter().find(|r| {
            !r.alternatives.is_empty()
                && !r
                    .alternatives
                    .iter()
                    .any(|alt| alt.iter().all(|q| without.contains(q)))
        });
        if let Some(r) = need {
            reasons.insert(
                p.name().to_string(),
                format!("{} (seen {}x)", r.example, r.count),
            );
        }
    }

    let mut defaults = match &inputs.task_dirs {
        Some(d) => unveils::default_unveils(&all, d),
        None => {
            let mut v = unveils::promise_unveils(&all);
            if let (true, Some(t)) = (all.contains(Promise::Tmppath), &inputs.tmp_dir) {
                v.push(UnveilRule::new(
                    t.clone(),
                    UnveilPerm::READ | UnveilPerm::WRITE | UnveilPerm::CREATE,
                ));
            }
            v
        }
    };
    defaults.extend(inputs.extra_defaults.iter().cloned());
    let unveil = collapse(&rec.accesses, &defaults);
    Learned {
        promises,
        implicit: inputs.implicit.clone(),
        unveil,
        reasons,
        unallowed: reqs
            .iter()
            .filter(|r| r.alternatives.is_empty())
            .map(|r| (*r).clone())
            .collect(),
        enosys: rec.enosys.clone(),
        fail_anyway: {
            let mut f = rec.fail_anyway.clone();
            if rec.unix_only_probed() {
                f.insert("socket(AF_UNIX): only used for those connects".into(), 1);
            }
            f
        },
        distinct_calls: reqs.len(),
        distinct_paths: rec.accesses.len(),
        path_names: inputs.path_names.clone(),
        unnamed_root: inputs.unnamed_root.clone(),
    }
}

fn hcl_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Learned {
    /// `rule` as the HCL block writes it: a named prefix replaced by its variable.
    fn hcl_rule(&self, rule: &UnveilRule) -> (String, bool) {
        for (prefix, var) in &self.path_names {
            if let Ok(rest) = rule.path.strip_prefix(prefix) {
                let tail = if rest.as_os_str().is_empty() {
                    String::new()
                } else {
                    format!("/{}", rest.display())
                };
                return (format!("{}:{var}{tail}", rule.perm_letters()), false);
            }
        }
        let unnamed = self
            .unnamed_root
            .as_ref()
            .is_some_and(|r| rule.path.starts_with(r));
        (rule.to_string(), unnamed)
    }

    /// The ready-to-paste block, reasons and warnings as `#` comments.
    pub fn to_hcl(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "# learned by nomad-pledge-driver learn: {} distinct calls, {} paths\n",
            self.distinct_calls, self.distinct_paths
        ));
        if !self.implicit.is_empty() {
            s.push_str(&format!(
                "# added by the sandbox itself for this program (not listed): {}\n",
                self.implicit
            ));
        }
        for (p, why) in &self.reasons {
            s.push_str(&format!("#   {p:<9} needed for {why}\n"));
        }
        if !self.enosys.is_empty() {
            let names: Vec<&str> = self.enosys.keys().map(String::as_str).collect();
            s.push_str(&format!(
                "# answered ENOSYS as when enforced (libc falls back): {}\n",
                names.join(" ")
            ));
        }
        if !self.fail_anyway.is_empty() {
            s.push_str("# left out, they fail even without a sandbox (the program copes):\n");
            for (what, n) in &self.fail_anyway {
                s.push_str(&format!("#   {what} x{n}\n"));
            }
        }
        if !self.unallowed.is_empty() {
            s.push_str("# NOT ALLOWED BY ANY PROMISE (enforced, these fail with EPERM, or kill with -k):\n");
            for r in &self.unallowed {
                s.push_str(&format!(
                    "#   {} x{}: {}\n",
                    r.example,
                    r.count,
                    r.why_not.as_deref().unwrap_or("")
                ));
            }
        }
        s.push_str("config {\n");
        s.push_str(&format!(
            "  promises = {}\n",
            hcl_string(&self.promises.to_string())
        ));
        if self.unveil.is_empty() {
            s.push_str("  unveil   = []\n");
        } else {
            s.push_str("  unveil   = [\n");
            for r in &self.unveil {
                let (text, unnamed) = self.hcl_rule(r);
                // The variable syntax must survive: only quotes and backslashes are escaped.
                let quoted = format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
                s.push_str(&format!(
                    "    {quoted},{}\n",
                    if unnamed {
                        "  # in this run's temporary alloc dir: no Nomad variable names it"
                    } else {
                        ""
                    }
                ));
            }
            s.push_str("  ]\n");
        }
        s.push_str("}\n");
        s
    }

    /// JSON rendering.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }

    /// The `sandbox` subcommand's flags for this configuration (`-p`, `-v`).
    pub fn sandbox_args(&self) -> Vec<String> {
        let mut v = vec!["-p".to_string(), self.promises.to_string()];
        for r in &self.unveil {
            v.push("-v".into());
            v.push(r.to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::record::MemReader;
    use crate::sandbox::FilterArch;

    struct NoMem;
    impl MemReader for NoMem {
        fn read(&mut self, _: u32, _: u64, _: &mut [u8]) -> usize {
            0
        }
    }

    #[test]
    fn block_and_reasons() {
        let arch = FilterArch::native();
        let nr = |n: &str| crate::sandbox::syscall_number(arch, n).map_or(-1, |x| x as i32);
        let mut rec = Recorder::new();
        rec.set_root(50, 0);
        let aa = arch.audit_arch();
        rec.on_call(50, nr("write"), aa, [1, 0, 0, 0, 0, 0], &mut NoMem);
        rec.on_call(50, nr("socket"), aa, [2, 1, 0, 0, 0, 0], &mut NoMem);
        rec.on_call(50, nr("listen"), aa, [3, 1, 0, 0, 0, 0], &mut NoMem);
        rec.on_call(50, nr("ptrace"), aa, [0; 6], &mut NoMem);
        let l = learn_config(
            &rec,
            &LearnInputs {
                implicit: [Promise::Rpath, Promise::ProtExec].into_iter().collect(),
                ..LearnInputs::default()
            },
        );
        assert_eq!(l.promises.to_string(), "stdio inet");
        assert!(
            l.reasons.contains_key("inet") && l.reasons.contains_key("stdio"),
            "{:?}",
            l.reasons
        );
        let hcl = l.to_hcl();
        assert!(
            hcl.contains("config {\n  promises = \"stdio inet\"\n"),
            "{hcl}"
        );
        assert!(
            hcl.contains("NOT ALLOWED") && hcl.contains("ptrace()"),
            "{hcl}"
        );
        assert_eq!(l.sandbox_args(), vec!["-p", "stdio inet"]);
    }
}
