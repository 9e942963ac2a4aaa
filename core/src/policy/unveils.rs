//! Default unveils per promise and per task, as one table (pledge.md a.9, plus the task's own
//! Nomad directories).
//!
//! [`DEFAULT_UNVEILS`] holds every fixed path; [`default_unveils`] picks the rows a promise set
//! needs and adds the task's directories. Rows that need IO to resolve — the program itself
//! (`rx`), its ELF interpreter from PT_INTERP (`rx`), the controlling tty — are added by the
//! backend at launch; the library directories a dynamic program needs are the
//! [`When::DynamicProgram`] rows, which the backend adds after reading the ELF header.
//! Paths that do not exist on a host are skipped by the backend (and reported), as pledge.com
//! does.

use crate::sandbox::{Promise, PromiseSet, UnveilPerm, UnveilRule};
use std::path::{Path, PathBuf};

/// When a default row applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum When {
    /// The promise is in the set.
    Promise(Promise),
    /// The program is dynamically linked (has PT_INTERP); decided by the backend.
    DynamicProgram,
}

/// One row of the default-unveil table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DefaultUnveil {
    /// Absolute path.
    pub path: &'static str,
    /// Permission letters (`r`, `rw`, `rx`, ...).
    pub perm: &'static str,
    /// When it applies.
    pub when: When,
}

const fn row(path: &'static str, perm: &'static str, when: When) -> DefaultUnveil {
    DefaultUnveil { path, perm, when }
}

use Promise as P;
use When::{DynamicProgram as Dyn, Promise as If};

/// Every fixed default unveil.
pub const DEFAULT_UNVEILS: &[DefaultUnveil] = &[
    // The loader and libraries of dynamic programs.
    row("/lib", "rx", Dyn),
    row("/lib64", "rx", Dyn),
    row("/usr/lib", "rx", Dyn),
    row("/usr/lib64", "rx", Dyn),
    row("/usr/local/lib", "rx", Dyn),
    row("/usr/local/lib64", "rx", Dyn),
    row("/etc/ld.so.conf", "r", Dyn),
    row("/etc/ld.so.conf.d", "r", Dyn),
    row("/etc/ld.so.cache", "r", Dyn),
    row("/etc/ld.so.preload", "r", Dyn),
    // stdio: standard devices and the /proc files libcs read.
    row("/dev/null", "rw", If(P::Stdio)),
    row("/dev/full", "rw", If(P::Stdio)),
    row("/dev/stdin", "rw", If(P::Stdio)),
    row("/dev/stdout", "rw", If(P::Stdio)),
    row("/dev/stderr", "rw", If(P::Stdio)),
    row("/proc/self/fd", "rw", If(P::Stdio)),
    row("/dev/log", "w", If(P::Stdio)),
    row("/dev/fd", "r", If(P::Stdio)),
    row("/dev/zero", "r", If(P::Stdio)),
    row("/dev/random", "r", If(P::Stdio)),
    row("/dev/urandom", "r", If(P::Stdio)),
    row("/etc/localtime", "r", If(P::Stdio)),
    row("/proc/self/stat", "r", If(P::Stdio)),
    row("/proc/self/status", "r", If(P::Stdio)),
    row("/proc/self/cmdline", "r", If(P::Stdio)),
    row("/proc/sys/kernel/version", "r", If(P::Stdio)),
    row("/proc/sys/kernel/ngroups_max", "r", If(P::Stdio)),
    row("/proc/sys/kernel/cap_last_cap", "r", If(P::Stdio)),
    row("/proc/sys/vm/overcommit_memory", "r", If(P::Stdio)),
    row("/usr/share/locale", "r", If(P::Stdio)),
    row("/usr/lib/locale", "r", If(P::Stdio)),
    row("/usr/share/zoneinfo", "r", If(P::Stdio)),
    row("/usr/share/common-licenses", "r", If(P::Stdio)),
    // rpath
    row("/proc/filesystems", "r", If(P::Rpath)),
    // inet: CA certificates, the TLS library's config, MIME types servers look up.
    row("/etc/ssl/certs", "r", If(P::Inet)),
    row("/etc/ssl/openssl.cnf", "r", If(P::Inet)),
    row("/etc/mime.types", "r", If(P::Inet)),
    row("/etc/pki/tls/certs", "r", If(P::Inet)),
    row("/usr/share/ca-certificates", "r", If(P::Inet)),
    // dns: resolver files.
    row("/etc/hosts", "r", If(P::Dns)),
    row("/etc/hostname", "r", If(P::Dns)),
    row("/etc/services", "r", If(P::Dns)),
    row("/etc/protocols", "r", If(P::Dns)),
    row("/etc/resolv.conf", "r", If(P::Dns)),
    row("/etc/nsswitch.conf", "r", If(P::Dns)),
    row("/etc/host.conf", "r", If(P::Dns)),
    row("/etc/gai.conf", "r", If(P::Dns)),
    row("/run/systemd/resolve", "r", If(P::Dns)),
    // tty: the terminal devices and terminfo (the backend adds ttyname(0)).
    row("/dev/tty", "rw", If(P::Tty)),
    row("/dev/console", "rw", If(P::Tty)),
    row("/etc/terminfo", "r", If(P::Tty)),
    row("/lib/terminfo", "r", If(P::Tty)),
    row("/usr/lib/terminfo", "r", If(P::Tty)),
    row("/usr/share/terminfo", "r", If(P::Tty)),
    // vminfo: what `top`-like programs read.
    row("/proc/stat", "r", If(P::Vminfo)),
    row("/proc/meminfo", "r", If(P::Vminfo)),
    row("/proc/cpuinfo", "r", If(P::Vminfo)),
    row("/proc/diskstats", "r", If(P::Vminfo)),
    row("/proc/self/maps", "r", If(P::Vminfo)),
    row("/sys/devices/system/cpu", "r", If(P::Vminfo)),
];

/// A task's own directories (Nomad's layout: `<alloc_dir>/<task>/{local,secrets,tmp}` and the
/// shared `<alloc_dir>/alloc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDirs {
    /// `NOMAD_TASK_DIR`, `<alloc_dir>/<task>/local`, `rwc`.
    pub local_dir: PathBuf,
    /// `NOMAD_SECRETS_DIR`, `r`.
    pub secrets_dir: PathBuf,
    /// `NOMAD_ALLOC_DIR`, the allocation's shared data dir, `rwc`.
    pub alloc_data_dir: PathBuf,
    /// The task's private tmp dir (TMPDIR), `rwc` with `tmppath`.
    pub tmp_dir: PathBuf,
}

impl TaskDirs {
    /// Nomad's layout for task `task_name` in `alloc_dir`, with the given tmp dir.
    pub fn nomad(alloc_dir: &Path, task_name: &str, tmp_dir: &Path) -> Self {
        let task_dir = alloc_dir.join(task_name);
        Self {
            local_dir: task_dir.join("local"),
            secrets_dir: task_dir.join("secrets"),
            alloc_data_dir: alloc_dir.join("alloc"),
            tmp_dir: tmp_dir.to_path_buf(),
        }
    }
}

/// Parses the table's perm letters (a unit test checks every row parses).
pub fn perm_from_letters(letters: &str) -> UnveilPerm {
    let mut p = UnveilPerm::empty();
    for c in letters.chars() {
        p |= match c {
            'r' => UnveilPerm::READ,
            'w' => UnveilPerm::WRITE,
            'x' => UnveilPerm::EXEC,
            'c' => UnveilPerm::CREATE,
            _ => UnveilPerm::empty(),
        };
    }
    p
}

fn rule(path: &Path, perm: UnveilPerm) -> UnveilRule {
    UnveilRule {
        path: path.to_path_buf(),
        perm,
    }
}

/// The rows of the table that apply to `promises` (not the [`When::DynamicProgram`] ones), in
/// table order.
pub fn promise_unveils(promises: &PromiseSet) -> Vec<UnveilRule> {
    DEFAULT_UNVEILS
        .iter()
        .filter(|r| matches!(r.when, When::Promise(p) if promises.contains(p)))
        .map(|r| rule(Path::new(r.path), perm_from_letters(r.perm)))
        .collect()
}

/// [`promise_unveils`], then the task's directories: `local/` rwc, `secrets/` r, the shared
/// alloc dir rwc, and with `tmppath` the task's tmp dir rwc. Deterministic.
pub fn default_unveils(promises: &PromiseSet, dirs: &TaskDirs) -> Vec<UnveilRule> {
    let rwc = UnveilPerm::READ | UnveilPerm::WRITE | UnveilPerm::CREATE;
    let mut out = promise_unveils(promises);
    out.push(rule(&dirs.local_dir, rwc));
    out.push(rule(&dirs.secrets_dir, UnveilPerm::READ));
    out.push(rule(&dirs.alloc_data_dir, rwc));
    if promises.contains(Promise::Tmppath) {
        out.push(rule(&dirs.tmp_dir, rwc));
    }
    out
}

/// The [`When::DynamicProgram`] rows: what ld.so needs besides the interpreter itself.
pub fn loader_unveils() -> Vec<UnveilRule> {
    DEFAULT_UNVEILS
        .iter()
        .filter(|r| r.when == When::DynamicProgram)
        .map(|r| rule(Path::new(r.path), perm_from_letters(r.perm)))
        .collect()
}

/// Merges rules: same path → union of perms; sorted by path. Used by the plan and the backend.
pub fn merge(rules: impl IntoIterator<Item = UnveilRule>) -> Vec<UnveilRule> {
    let mut map: std::collections::BTreeMap<PathBuf, UnveilPerm> = Default::default();
    for r in rules {
        *map.entry(r.path).or_insert(UnveilPerm::empty()) |= r.perm;
    }
    map.into_iter()
        .map(|(path, perm)| UnveilRule { path, perm })
        .collect()
}

/// The README's default-unveil table (a test in backend-linux checks the README holds exactly
/// this).
pub fn markdown_table() -> String {
    let mut s = String::from("| when | perm | paths |\n|---|---|---|\n");
    let mut groups: Vec<(String, &str, Vec<&str>)> = Vec::new();
    for r in DEFAULT_UNVEILS {
        let when = match r.when {
            When::Promise(p) => format!("`{p}`"),
            When::DynamicProgram => "dynamic program".to_string(),
        };
        match groups
            .iter_mut()
            .find(|(w, perm, _)| *w == when && *perm == r.perm)
        {
            Some(g) => g.2.push(r.path),
            None => groups.push((when, r.perm, vec![r.path])),
        }
    }
    s.push_str(
        "| always | rx | the program; its `#!` interpreter; its ELF interpreter (PT_INTERP) |\n",
    );
    for (when, perm, paths) in groups {
        let paths: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
        s.push_str(&format!("| {when} | {perm} | {} |\n", paths.join(" ")));
    }
    s.push_str("| `tty` | rw | the terminal on stdin (`/proc/self/fd/0` → `/dev/pts/N`) |\n");
    s.push_str("| every task | rwc | `NOMAD_TASK_DIR` (`<task>/local`), `NOMAD_ALLOC_DIR` (`<alloc>/alloc`) |\n");
    s.push_str("| every task | r | `NOMAD_SECRETS_DIR` (`<task>/secrets`) |\n");
    s.push_str("| `tmppath` | rwc | the task's `TMPDIR` (`<task>/tmp`) |\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> TaskDirs {
        TaskDirs::nomad(
            Path::new("/var/nomad/alloc/a1"),
            "web",
            Path::new("/var/nomad/alloc/a1/web/tmp"),
        )
    }

    #[test]
    fn every_row_is_absolute_with_valid_letters() {
        for r in DEFAULT_UNVEILS {
            assert!(r.path.starts_with('/'), "{}", r.path);
            assert!(
                !r.perm.is_empty() && r.perm.chars().all(|c| "rwxc".contains(c)),
                "{}",
                r.perm
            );
            assert!(
                !r.path.split('/').any(|c| c == ".." || c == "."),
                "{}",
                r.path
            );
        }
    }

    #[test]
    fn promises_pick_their_rows() {
        let s: PromiseSet = [Promise::Stdio, Promise::Dns].into_iter().collect();
        let u = default_unveils(&s, &dirs());
        let has = |p: &str| u.iter().any(|r| r.path == Path::new(p));
        assert!(has("/dev/null") && has("/etc/resolv.conf"));
        assert!(!has("/etc/ssl/certs") && !has("/proc/meminfo") && !has("/usr/lib"));
        assert!(has("/var/nomad/alloc/a1/web/local") && has("/var/nomad/alloc/a1/alloc"));
        assert!(!has("/var/nomad/alloc/a1/web/tmp"), "tmp only with tmppath");
        let secrets = u.iter().find(|r| r.path.ends_with("secrets"));
        assert_eq!(secrets.map(|r| r.perm), Some(UnveilPerm::READ));
    }

    #[test]
    fn tmppath_unveils_the_task_tmp_dir_rwc() {
        let s: PromiseSet = [Promise::Tmppath].into_iter().collect();
        let u = default_unveils(&s, &dirs());
        let tmp = u
            .iter()
            .find(|r| r.path == Path::new("/var/nomad/alloc/a1/web/tmp"));
        assert_eq!(
            tmp.map(|r| r.perm),
            Some(UnveilPerm::READ | UnveilPerm::WRITE | UnveilPerm::CREATE)
        );
    }

    #[test]
    fn loader_rows_are_rx_dirs_and_r_files() {
        let l = loader_unveils();
        assert!(l
            .iter()
            .any(|r| r.path == Path::new("/usr/lib")
                && r.perm == UnveilPerm::READ | UnveilPerm::EXEC));
        assert!(l.iter().all(|r| !r.perm.contains(UnveilPerm::WRITE)));
    }

    #[test]
    fn merge_unions_and_sorts() {
        let m = merge([
            rule(Path::new("/b"), UnveilPerm::READ),
            rule(Path::new("/a"), UnveilPerm::WRITE),
            rule(Path::new("/b"), UnveilPerm::EXEC),
        ]);
        assert_eq!(
            m,
            vec![
                rule(Path::new("/a"), UnveilPerm::WRITE),
                rule(Path::new("/b"), UnveilPerm::READ | UnveilPerm::EXEC),
            ]
        );
    }
}
