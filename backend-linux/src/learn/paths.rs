//! Paths: what Landlock would check for each observed path call, and the collapse of many
//! accesses into a few unveil rules.
//!
//! Resolution happens in the observer's view of the file system, which is the program's when
//! they share the mount namespace and root (the CLI and `--job` run it that way). Paths are
//! canonical (symlinks followed as the call follows them) because Landlock checks the file
//! reached, not the name used; `/proc/self`, `/proc/thread-self` and `/proc/<own pid>` are kept
//! as `/proc/self/...` (they mean the task's own entries when enforced).
//!
//! What needs which letter (the sandbox's mapping, landlock_rules.rs): reading a file or
//! listing a directory `r`; opening for writing or truncating `w`; executing `rx` (execve opens
//! the file for reading too); creating,
//! removing or renaming an entry `c` on its directory. An open of a file that does not exist
//! (without O_CREAT) fails with ENOENT under Landlock too, so it needs nothing.

use pledge_core::policy::promises::consts;
use pledge_core::{UnveilPerm, UnveilRule};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where a relative path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// A dirfd of the calling thread (`AT_FDCWD` = its cwd).
    Fd(i32),
}

/// The kind of path operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// open/openat/creat with these flags.
    Open {
        /// Open flags.
        flags: u64,
    },
    /// execve.
    Exec,
    /// A new entry (mkdir, mknod, symlink, link target, rename target, socket bind).
    Make,
    /// An entry removed (unlink, rmdir, rename source).
    Remove,
    /// truncate(path).
    Truncate,
}

/// One path and the letters an access to it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Canonical absolute path.
    pub path: PathBuf,
    /// Letters needed.
    #[serde(serialize_with = "ser_perm")]
    pub perm: UnveilPerm,
    /// Whether the path is a directory (a rule for a directory covers what is beneath it).
    pub is_dir: bool,
}

fn ser_perm<S: serde::Serializer>(p: &UnveilPerm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&UnveilRule::new("/", *p).perm_letters())
}

/// All accesses, merged per path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accesses(BTreeMap<PathBuf, (UnveilPerm, bool)>);

impl Accesses {
    /// Adds one access (same path: union of letters).
    pub fn add(&mut self, a: Access) {
        let e = self
            .0
            .entry(a.path)
            .or_insert((UnveilPerm::empty(), a.is_dir));
        e.0 |= a.perm;
        e.1 |= a.is_dir;
    }

    /// Every access, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = Access> + '_ {
        self.0.iter().map(|(p, (perm, d))| Access {
            path: p.clone(),
            perm: *perm,
            is_dir: *d,
        })
    }

    /// Number of distinct paths.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was accessed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `/proc/self/...` form of a path in the caller's own /proc entry, if it is one.
fn proc_self(path: &Path, tid: u32, tgid: u32) -> Option<PathBuf> {
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir)
        || comps.next() != Some(Component::Normal(OsStr::new("proc")))
    {
        return None;
    }
    let who = comps.next()?;
    let who = who.as_os_str().to_str()?;
    let rest: PathBuf = comps.collect();
    let own = [tgid.to_string()];
    if who == "self" || own.iter().any(|o| o == who) {
        Some(Path::new("/proc/self").join(rest))
    } else if who == "thread-self" || who == tid.to_string() {
        // A thread's own entry; as an unveil the process's is the usable name.
        Some(Path::new("/proc/self").join(rest))
    } else {
        None
    }
}

/// Lexical normalization (`.` and `..`) of an absolute path.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Resolves `raw` as the calling thread would: relative to `base`, symlinks followed in the
/// directories (and in the last component when `follow`). `None` when the directory does not
/// exist (the call fails before any Landlock check).
pub fn resolve(base: Base, raw: &[u8], tid: u32, tgid: u32, follow: bool) -> Option<PathBuf> {
    let raw = Path::new(OsStr::from_bytes(raw));
    let full = if raw.is_absolute() {
        raw.to_path_buf()
    } else {
        let Base::Fd(fd) = base;
        let link = if fd == libc::AT_FDCWD {
            format!("/proc/{tid}/cwd")
        } else {
            format!("/proc/{tid}/fd/{fd}")
        };
        std::fs::read_link(link).ok()?.join(raw)
    };
    resolve_abs(&full, tid, tgid, follow, 0)
}

fn resolve_abs(full: &Path, tid: u32, tgid: u32, follow: bool, depth: u32) -> Option<PathBuf> {
    if depth > 40 {
        return None;
    }
    let norm = lexical(full);
    if let Some(p) = proc_self(&norm, tid, tgid) {
        return Some(p);
    }
    let (parent, name) = match (full.parent(), full.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return std::fs::canonicalize(full).ok(),
    };
    // `..` as the last component, or a parent inside /proc/self: canonicalize the whole path
    // in /proc/<tgid> terms.
    let parent_canon = match proc_self(&lexical(parent), tid, tgid) {
        Some(p) => return Some(p.join(name)),
        None => std::fs::canonicalize(parent).ok()?,
    };
    let cand = parent_canon.join(name);
    if let Some(p) = proc_self(&cand, tid, tgid) {
        return Some(p);
    }
    if follow {
        if let Ok(meta) = std::fs::symlink_metadata(&cand) {
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&cand).ok()?;
                let next = if target.is_absolute() {
                    target
                } else {
                    parent_canon.join(target)
                };
                return resolve_abs(&next, tid, tgid, follow, depth + 1);
            }
        }
    }
    Some(cand)
}

fn is_dir(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// The accesses Landlock would check for `op` on `raw`.
pub fn resolve_access(base: Base, raw: &[u8], tid: u32, tgid: u32, op: Op) -> Option<Vec<Access>> {
    const O_PATH: u64 = 0o10000000;
    const O_NOFOLLOW: u64 = 0o400000;
    let r = UnveilPerm::READ;
    let w = UnveilPerm::WRITE;
    let c = UnveilPerm::CREATE;
    let access = |path: PathBuf, perm: UnveilPerm| {
        let d = is_dir(&path);
        Access {
            path,
            perm,
            is_dir: d,
        }
    };
    let parent_of = |p: &Path| -> Option<PathBuf> { p.parent().map(Path::to_path_buf) };
    let out = match op {
        Op::Open { flags } => {
            let flags = flags & 0xffff_ffff;
            if flags & O_PATH != 0 {
                return None;
            }
            let path = resolve(base, raw, tid, tgid, flags & O_NOFOLLOW == 0)?;
            let mut perm = UnveilPerm::empty();
            match flags & consts::O_ACCMODE {
                consts::O_RDONLY => perm |= r,
                consts::O_WRONLY => perm |= w,
                _ => perm |= r | w,
            }
            if flags & consts::O_TRUNC != 0 {
                perm |= w;
            }
            if flags & consts::O_TMPFILE_BIT != 0 {
                // An unnamed file in this directory.
                return Some(vec![access(path, c | w)]);
            }
            if path.starts_with("/proc/self") {
                return Some(vec![Access {
                    path,
                    perm,
                    is_dir: false,
                }]);
            }
            if exists(&path) {
                vec![access(path, perm)]
            } else if flags & consts::O_CREAT != 0 {
                // The new file's own rule could not be opened before it exists (the sandbox
                // skips missing paths), so its directory carries the access too.
                vec![Access {
                    path: parent_of(&path)?,
                    perm: c | perm,
                    is_dir: true,
                }]
            } else {
                return None;
            }
        }
        Op::Exec => {
            let path = resolve(base, raw, tid, tgid, true)?;
            if !exists(&path) {
                return None;
            }
            // The kernel opens the binary O_RDONLY|__FMODE_EXEC: Landlock checks READ_FILE too.
            vec![access(path, r | UnveilPerm::EXEC)]
        }
        Op::Truncate => {
            let path = resolve(base, raw, tid, tgid, true)?;
            if !exists(&path) {
                return None;
            }
            vec![access(path, w)]
        }
        Op::Make | Op::Remove => {
            let path = resolve(base, raw, tid, tgid, false)?;
            if op == Op::Remove && !exists(&path) {
                return None;
            }
            vec![Access {
                path: parent_of(&path)?,
                perm: c,
                is_dir: true,
            }]
        }
    };
    Some(out)
}

/// Whether every letter of `perm` on `path` is granted by some rule on `path` or above it
/// (Landlock grants the union of the rules on a path's ancestors).
pub fn covered(path: &Path, perm: UnveilPerm, rules: &[UnveilRule]) -> bool {
    uncovered(path, perm, rules).is_empty()
}

/// The letters of `perm` on `path` no rule grants.
fn uncovered(path: &Path, perm: UnveilPerm, rules: &[UnveilRule]) -> UnveilPerm {
    let mut granted = UnveilPerm::empty();
    for r in rules {
        if path.starts_with(&r.path) {
            granted |= r.perm;
        }
    }
    perm - granted
}

/// Directories too broad to stand in for two files read in them.
const NO_COLLAPSE: &[&str] = &[
    "/",
    "/etc",
    "/dev",
    "/proc",
    "/proc/self",
    "/sys",
    "/run",
    "/var",
    "/usr",
    "/home",
    "/root",
    "/tmp",
    "/opt",
    "/srv",
    "/mnt",
    "/media",
    "/boot",
    "/usr/bin",
    "/bin",
    "/usr/sbin",
    "/sbin",
];

/// The unveil rules for `accesses` beyond `defaults`:
/// 1. letters the defaults grant are dropped (default paths are canonicalized first);
/// 2. a directory access is a rule on the directory; files are a rule each, except that two or
///    more files of one directory needing the same letters become one rule on the directory
///    (unless it is a top-level system directory, see [`NO_COLLAPSE`]);
/// 3. same path → union of letters; a rule an ancestor rule already covers is dropped.
pub fn collapse(accesses: &Accesses, defaults: &[UnveilRule]) -> Vec<UnveilRule> {
    let defaults: Vec<UnveilRule> = defaults
        .iter()
        .flat_map(|r| {
            let canon = std::fs::canonicalize(&r.path).ok();
            std::iter::once(r.clone()).chain(canon.map(|c| UnveilRule::new(c, r.perm)))
        })
        .collect();
    let mut files: BTreeMap<(PathBuf, u8), Vec<PathBuf>> = BTreeMap::new();
    let mut targets: Vec<UnveilRule> = Vec::new();
    // Directories the program creates entries in: files there may not exist yet when the next
    // run starts (a rule on a missing path is skipped), so their accesses go to the directory.
    let creating: Vec<PathBuf> = accesses
        .iter()
        .filter(|a| a.is_dir && a.perm.contains(UnveilPerm::CREATE))
        .map(|a| a.path)
        .collect();
    for a in accesses.iter() {
        let perm = uncovered(&a.path, a.perm, &defaults);
        if perm.is_empty() {
            continue;
        }
        if a.is_dir {
            targets.push(UnveilRule::new(a.path, perm));
            continue;
        }
        if let Some(dir) = a.path.parent().filter(|d| creating.iter().any(|c| c == d)) {
            targets.push(UnveilRule::new(dir, perm));
            continue;
        }
        match a.path.parent() {
            Some(dir) => files
                .entry((dir.to_path_buf(), perm.bits()))
                .or_default()
                .push(a.path),
            None => targets.push(UnveilRule::new(a.path, perm)),
        }
    }
    for ((dir, bits), paths) in files {
        let perm = UnveilPerm::from_bits_truncate(bits);
        let broad = NO_COLLAPSE.iter().any(|d| Path::new(d) == dir);
        if paths.len() >= 2 && !broad {
            targets.push(UnveilRule::new(dir, perm));
        } else {
            targets.extend(paths.into_iter().map(|p| UnveilRule::new(p, perm)));
        }
    }
    let merged = pledge_core::policy::unveils::merge(targets);
    // Shorter paths first, so ancestors are kept before their descendants are checked.
    let mut by_depth = merged;
    by_depth.sort_by_key(|r| (r.path.components().count(), r.path.clone()));
    let mut kept: Vec<UnveilRule> = Vec::new();
    for r in by_depth {
        if !covered(&r.path, r.perm, &kept) {
            kept.push(r);
        }
    }
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(path: &str, perm: &str, is_dir: bool) -> Access {
        Access {
            path: PathBuf::from(path),
            perm: UnveilPerm::from_letters(perm).unwrap_or(UnveilPerm::READ),
            is_dir,
        }
    }

    #[test]
    fn collapses_siblings_and_drops_what_defaults_cover() {
        let mut a = Accesses::default();
        a.add(acc("/srv/app/conf/a.toml", "r", false));
        a.add(acc("/srv/app/conf/b.toml", "r", false));
        a.add(acc("/srv/app/conf/c.toml", "rw", false));
        a.add(acc("/srv/app/data", "c", true));
        a.add(acc("/srv/app/data/x", "rw", false));
        a.add(acc("/etc/passwd", "r", false));
        a.add(acc("/etc/group", "r", false));
        a.add(acc("/dev/null", "rw", false));
        let defaults = vec![UnveilRule::new(
            "/dev/null",
            UnveilPerm::READ | UnveilPerm::WRITE,
        )];
        let rules = collapse(&a, &defaults);
        let shown: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "r:/etc/group",
                "r:/etc/passwd",
                "r:/srv/app/conf",
                "rw:/srv/app/conf/c.toml",
                // x may be recreated by the next run: its access goes to the directory.
                "rwc:/srv/app/data",
            ]
        );
    }

    #[test]
    fn ancestor_rules_absorb_descendants() {
        let mut a = Accesses::default();
        a.add(acc("/srv/d", "rwc", true));
        a.add(acc("/srv/d/sub/f", "rw", false));
        a.add(acc("/srv/d/g", "r", false));
        let rules = collapse(&a, &[]);
        assert_eq!(
            rules,
            vec![UnveilRule::new(
                "/srv/d",
                UnveilPerm::READ | UnveilPerm::WRITE | UnveilPerm::CREATE
            )]
        );
    }

    #[test]
    fn proc_self_names() {
        assert_eq!(
            proc_self(Path::new("/proc/77/fd/3"), 78, 77),
            Some(PathBuf::from("/proc/self/fd/3"))
        );
        assert_eq!(
            proc_self(Path::new("/proc/thread-self/attr"), 78, 77),
            Some(PathBuf::from("/proc/self/attr"))
        );
        assert_eq!(proc_self(Path::new("/proc/1/fd"), 78, 77), None);
        assert_eq!(proc_self(Path::new("/etc/passwd"), 78, 77), None);
    }

    #[test]
    fn resolution_follows_symlinks_like_the_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::write(&real, b"x").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let me = std::process::id();
        let canon_real = std::fs::canonicalize(&real).expect("canon");
        let got = resolve(
            Base::Fd(libc::AT_FDCWD),
            link.as_os_str().as_bytes(),
            me,
            me,
            true,
        );
        assert_eq!(got, Some(canon_real.clone()));
        let nofollow = resolve(
            Base::Fd(libc::AT_FDCWD),
            link.as_os_str().as_bytes(),
            me,
            me,
            false,
        );
        assert_eq!(nofollow, Some(canon_real.with_file_name("link")));
        // A missing file opened without O_CREAT needs nothing; with O_CREAT, c on its dir.
        let missing = dir.path().join("missing");
        let raw = missing.as_os_str().as_bytes();
        assert_eq!(
            resolve_access(Base::Fd(libc::AT_FDCWD), raw, me, me, Op::Open { flags: 0 }),
            None
        );
        let made = resolve_access(
            Base::Fd(libc::AT_FDCWD),
            raw,
            me,
            me,
            Op::Open { flags: 0o101 },
        )
        .expect("create");
        assert_eq!(made[0].perm, UnveilPerm::CREATE | UnveilPerm::WRITE);
        assert_eq!(Some(made[0].path.as_path()), canon_real.parent());
        assert!(made[0].is_dir);
    }
}
