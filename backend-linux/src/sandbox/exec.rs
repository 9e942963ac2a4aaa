//! The launch path shared by the driver's tasks and the `sandbox` subcommand:
//! [`prepare`] (fallible IO, nothing irreversible) then [`enter_and_exec`].

use super::compile::{compile_filter, CompiledFilter, FilterArch, FilterOptions, Penalty};
use super::creds::{self, Credentials};
use super::elf::{self, Kind};
use super::landlock_rules::{self, Request};
use super::report::{EnforcementStatus, SandboxReport};
use super::rlimits::{self, Limits};
use super::SandboxError;
use landlock::{RulesetCreated, RulesetStatus};
use pledge_core::policy::unveils;
use pledge_core::{Promise, PromiseSet, SandboxMode, SandboxPlan, UnveilPerm, UnveilRule};
use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// PATH used when the task's environment has none (glibc's default plus sbin).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything [`enter_and_exec`] needs, resolved and allocated. Holds raw pointers into its
/// own strings for execve, so it stays on the thread that prepared it.
pub struct Prepared {
    report: SandboxReport,
    program: CString,
    // Kept alive for the pointer arrays below.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    creds: Credentials,
    limits: Limits,
    landlock: Option<RulesetCreated>,
    filter: CompiledFilter,
    /// Complain mode: install learn mode's notification filter instead of the allowlist.
    complain: bool,
}

impl Prepared {
    /// What will be enforced; final before exec.
    pub fn report(&self) -> &SandboxReport {
        &self.report
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

fn cstring(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| SandboxError::NulByte { what: what() })
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves `command` like execvp: with a `/` as a path (relative to `cwd`), else the first
/// executable regular file in `path_var`.
pub(crate) fn resolve_program(
    command: &str,
    path_var: &str,
    cwd: &Path,
) -> Result<PathBuf, SandboxError> {
    let not_found = |reason: &str| SandboxError::ProgramNotFound {
        command: command.to_string(),
        reason: reason.to_string(),
    };
    if command.is_empty() {
        return Err(not_found("empty command"));
    }
    if command.contains('/') {
        let p = Path::new(command);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        return if is_executable_file(&p) {
            Ok(p)
        } else if p.exists() {
            Err(not_found("not an executable regular file"))
        } else {
            Err(not_found("no such file"))
        };
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let dir = Path::new(dir);
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            cwd.join(dir)
        };
        let cand = dir.join(command);
        if is_executable_file(&cand) {
            return Ok(cand);
        }
    }
    Err(not_found(&format!("not found in PATH {path_var:?}")))
}

fn rx() -> UnveilPerm {
    UnveilPerm::READ | UnveilPerm::EXEC
}

/// Prepares the sandbox for `plan`: every fallible lookup and allocation happens here.
pub fn prepare(plan: &SandboxPlan) -> Result<Prepared, SandboxError> {
    let path_var = plan.env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
    let program = resolve_program(&plan.command, path_var, &plan.cwd)?;
    let elf_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::ElfRead { path, source }
    };

    // What the kernel and ld.so touch between execve and main().
    let mut implicit = PromiseSet::new();
    let mut extra_unveils = vec![UnveilRule::new(program.clone(), rx())];
    let mut interpreter = None;
    let add_loader = |interp: PathBuf, unv: &mut Vec<UnveilRule>, imp: &mut PromiseSet| {
        imp.insert(Promise::Rpath);
        imp.insert(Promise::ProtExec);
        unv.push(UnveilRule::new(interp, rx()));
        unv.extend(unveils::loader_unveils());
    };
    match elf::classify(&program).map_err(elf_err(&program))? {
        Kind::Dynamic(interp) => {
            interpreter = Some(interp.clone());
            add_loader(interp, &mut extra_unveils, &mut implicit);
        }
        Kind::Script(interp) => {
            // The interpreter reads the script by path.
            implicit.insert(Promise::Rpath);
            extra_unveils.push(UnveilRule::new(interp.clone(), rx()));
            if let Ok(Kind::Dynamic(ld)) = elf::classify(&interp) {
                add_loader(ld, &mut extra_unveils, &mut implicit);
            }
            interpreter = Some(interp);
        }
        Kind::Static | Kind::Other => {}
    }
    let implicit: PromiseSet = implicit
        .iter()
        .filter(|p| !plan.promises.contains(*p))
        .collect();
    let promises: PromiseSet = plan.promises.iter().chain(implicit.iter()).collect();
    if promises.contains(Promise::Tty) {
        if let Ok(tty) = std::fs::read_link("/proc/self/fd/0") {
            if tty.starts_with("/dev/pts") || tty.starts_with("/dev/tty") {
                extra_unveils.push(UnveilRule::new(tty, UnveilPerm::READ | UnveilPerm::WRITE));
            }
        }
    }

    let creds = creds::resolve(
        plan.user.as_deref(),
        plan.group.as_deref(),
        plan.net_bind_service,
    )?;
    let limits = rlimits::from_plan(&plan.rlimits);

    let enforce = plan.mode == SandboxMode::Enforce;
    let ll = if plan.unveil_enabled && enforce {
        let rules = unveils::merge(plan.unveil.iter().cloned().chain(extra_unveils));
        let req = Request {
            rules: &rules,
            bind_ports: plan.bind_ports.as_deref(),
            connect_ports: plan.connect_ports.as_deref(),
        };
        Some(landlock_rules::prepare(&req, plan.unveil_best_effort)?)
    } else {
        None
    };

    let program_c = cstring(|| "program path".into(), program.as_os_str().as_bytes())?;
    let mut argv = Vec::with_capacity(plan.args.len() + 1);
    argv.push(cstring(|| "command".into(), plan.command.as_bytes())?);
    for (i, a) in plan.args.iter().enumerate() {
        argv.push(cstring(|| format!("args[{i}]"), a.as_bytes())?);
    }
    let mut envp = Vec::with_capacity(plan.env.len());
    for (k, v) in &plan.env {
        let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
        kv.extend_from_slice(k.as_bytes());
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp.push(cstring(|| format!("env {k:?}"), &kv)?);
    }
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let cwd = if plan.cwd.as_os_str().is_empty() {
        None
    } else {
        Some(cstring(|| "cwd".into(), plan.cwd.as_os_str().as_bytes())?)
    };

    let penalty = match (plan.mode, plan.kill_on_violation) {
        (SandboxMode::Complain, _) => Penalty::Log,
        (SandboxMode::Enforce, true) => Penalty::Kill,
        (SandboxMode::Enforce, false) => Penalty::Eperm,
    };
    let filter = compile_filter(
        &promises,
        &FilterOptions {
            arch: FilterArch::native(),
            penalty,
            pid: std::process::id(),
            exec_path_ptr: Some(program_c.as_ptr() as u64),
        },
    )?;

    let (landlock, status, abi, missing, rules, skipped) = match ll {
        Some(p) => (p.ruleset, p.status, p.abi, p.missing, p.rules, p.skipped),
        None => (
            None,
            EnforcementStatus::Disabled,
            landlock_rules::probe_abi(),
            Vec::new(),
            0,
            Vec::new(),
        ),
    };
    let report = SandboxReport {
        program,
        interpreter,
        promises,
        implicit_promises: implicit,
        seccomp_instructions: filter.instructions(),
        landlock: status,
        landlock_abi: abi,
        landlock_missing: missing,
        unveil_rules: rules,
        skipped_unveils: skipped,
        bounding_set_dropped: creds.can_drop_bounding,
        ambient_net_bind_service: creds.keep_net_bind,
    };
    Ok(Prepared {
        report,
        argv_ptrs: ptrs(&argv),
        envp_ptrs: ptrs(&envp),
        program: program_c,
        _argv: argv,
        _envp: envp,
        cwd,
        creds,
        limits,
        landlock,
        filter,
        complain: plan.mode == SandboxMode::Complain,
    })
}

/// Marks every fd above 2 close-on-exec (the launcher's own fds must not leak into the task).
fn cloexec_from_3() -> Result<(), SandboxError> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with the CLOEXEC flag only changes fd flags, takes no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk our fd table.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|source| SandboxError::Syscall {
            step: "listing /proc/self/fd".into(),
            source,
        })?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number; an fd that vanished just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Applies the sandbox and execs the program. Returns only on failure; after the seccomp
/// filter is loaded the only possible failure is execve itself.
pub fn enter_and_exec(prepared: Prepared) -> Result<Infallible, SandboxError> {
    let Prepared {
        report,
        program,
        argv_ptrs,
        envp_ptrs,
        cwd,
        creds,
        limits,
        landlock,
        filter,
        complain,
        _argv: _keep_argv,
        _envp: _keep_envp,
    } = prepared;
    rlimits::apply(&limits)?;
    cloexec_from_3()?;
    if let Some(cwd) = &cwd {
        // SAFETY: `cwd` is a valid NUL-terminated path.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            return Err(SandboxError::last_os(format!("chdir({cwd:?})")));
        }
    }
    creds::apply(&creds)?;
    // SAFETY: integer-only prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    if let Some(ruleset) = landlock {
        let st = ruleset.restrict_self()?;
        if st.ruleset == RulesetStatus::NotEnforced {
            return Err(SandboxError::LandlockUnenforceable {
                abi: report.landlock_abi,
                missing: vec!["landlock_restrict_self enforced nothing".into()],
            });
        }
    }
    if complain {
        // Complain mode: every call goes to the supervisor, which allows it and reports what
        // the allowlist would have denied (learn::complain).
        if !crate::learn::complain::child_install() {
            return Err(SandboxError::last_os(
                "installing the complain-mode seccomp notification filter",
            ));
        }
    } else {
        seccompiler::apply_filter(&filter.program).map_err(SandboxError::SeccompLoad)?;
    }
    // SAFETY: program, argv and envp are NUL-terminated strings owned by this frame (the
    // CStrings live in `_argv`/`_envp`, dropped only after execve fails), and both pointer
    // arrays end with NULL.
    unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    Err(SandboxError::Exec {
        program: PathBuf::from(OsStr::from_bytes(program.as_bytes())),
        source: std::io::Error::last_os_error(),
    })
}
