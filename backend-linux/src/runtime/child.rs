//! The task child: what runs between the supervisor's clone and the program's execve.
//!
//! Order matters: the cgroup is joined first (before this process can run anything else or
//! fork), then the network namespace is joined, mount propagation made private and a fresh
//! /proc mounted for the new pid namespace, the log FIFOs opened, priority set, and finally
//! the sandbox applied and the program exec'd. Every failure is reported to the supervisor over
//! a close-on-exec pipe (so EOF without a message means exec succeeded) and the child exits 127.
//! In a private pid namespace the child first forks: it stays behind as the namespace's init
//! ([`crate::runtime::init`]) and the program continues from the fork as pid 2.

use crate::runtime::state::SupervisorSpec;
use pledge_core::FailureClass;
use std::convert::Infallible;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why the child could not exec the task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// Joining the task's cgroup.
    #[error("joining cgroup via {path}")]
    JoinCgroup {
        /// The cgroup.procs file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A namespace step.
    #[error("{step}")]
    Namespace {
        /// Which step.
        step: &'static str,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// Opening a log FIFO.
    #[error("opening {which} {path} for writing (without following symlinks)")]
    Log {
        /// stdout or stderr.
        which: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The log path is neither a FIFO nor a character device.
    #[error(
        "{which} {path} is not a FIFO or character device; refusing to write task output into it"
    )]
    LogNotFifo {
        /// stdout or stderr.
        which: &'static str,
        /// Path.
        path: PathBuf,
    },
    /// Setting the nice value.
    #[error("setting nice value {nice}")]
    Nice {
        /// Value.
        nice: i32,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not be prepared or entered.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// execve of an external pledge.com failed.
    #[error("executing {program}")]
    Exec {
        /// Program.
        program: String,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// A value cannot be passed to execve.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which value.
        what: &'static str,
    },
}

impl ChildError {
    /// Whether retrying may help.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Sandbox(e) => sandbox_class(e),
            Self::Exec { .. } | Self::Nul { .. } | Self::LogNotFifo { .. } => FailureClass::Fatal,
            Self::JoinCgroup { .. }
            | Self::Namespace { .. }
            | Self::Log { .. }
            | Self::Nice { .. } => FailureClass::Retryable,
        }
    }
}

/// Bad programs, users and unenforceable sandboxes do not get better by retrying.
fn sandbox_class(e: &crate::sandbox::SandboxError) -> FailureClass {
    use crate::sandbox::SandboxError as E;
    match e {
        E::ProgramNotFound { .. }
        | E::ElfRead { .. }
        | E::NulByte { .. }
        | E::UnknownUser(_)
        | E::UnknownGroup(_)
        | E::LandlockUnenforceable { .. }
        | E::Exec { .. } => FailureClass::Fatal,
        _ => FailureClass::Retryable,
    }
}

/// One line for the task event: what the sandbox enforces.
pub fn describe(r: &crate::sandbox::SandboxReport) -> String {
    use crate::sandbox::EnforcementStatus as S;
    let landlock = match r.landlock {
        S::Full => "fully enforced",
        S::Partial => "partially enforced",
        S::None => "not enforced (kernel lacks Landlock)",
        S::Disabled => "disabled",
    };
    let mut s = format!(
        "landlock: {landlock} (ABI {}, {} rules)",
        r.landlock_abi, r.unveil_rules
    );
    if !r.landlock_missing.is_empty() {
        s.push_str(&format!(", missing {}", r.landlock_missing.join(", ")));
    }
    s.push_str(&format!(
        "; seccomp: {} instructions for promises \"{}\"",
        r.seccomp_instructions, r.promises
    ));
    s
}

/// The child's end of the report pipe. Lines: `R<text>` = sandbox report, `E<F|R><text>` =
/// failure (fatal or retryable).
pub struct ReportPipe(File);

impl ReportPipe {
    /// Wraps the write end.
    pub fn new(fd: OwnedFd) -> Self {
        Self(File::from(fd))
    }

    fn line(&mut self, tag: &str, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        let _ = writeln!(self.0, "{tag}{clean}");
    }

    /// Reports the sandbox status (before exec).
    pub fn report(&mut self, text: &str) {
        self.line("R", text);
    }

    /// Reports a failure.
    pub fn fail(&mut self, class: FailureClass, text: &str) {
        let tag = if class == FailureClass::Fatal {
            "EF"
        } else {
            "ER"
        };
        self.line(tag, text);
    }
}

/// Parses what the child wrote: `(sandbox report, failure)`.
pub fn parse_report(bytes: &[u8]) -> (String, Option<(FailureClass, String)>) {
    let text = String::from_utf8_lossy(bytes);
    let mut report = String::new();
    let mut failure = None;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix('R') {
            report = r.to_string();
        } else if let Some(e) = line.strip_prefix("EF") {
            failure = Some((FailureClass::Fatal, e.to_string()));
        } else if let Some(e) = line.strip_prefix("ER") {
            failure = Some((FailureClass::Retryable, e.to_string()));
        }
    }
    (report, failure)
}

/// Runs in the freshly cloned task child; never returns.
///
/// `init_status` is the write end of the init's status pipe (private pid mode only).
pub fn run(
    spec: &SupervisorSpec,
    joins: &[File],
    netns: Option<&File>,
    pipe: OwnedFd,
    init_status: Option<OwnedFd>,
) -> ! {
    let mut pipe = ReportPipe::new(pipe);
    let err = match setup_and_exec(spec, joins, netns, &mut pipe, init_status) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    pipe.fail(err.class(), &crate::runtime::chain(&err));
    // SAFETY: _exit ends this forked child without running the parent's atexit handlers or
    // flushing its stdio buffers twice.
    unsafe { libc::_exit(127) }
}

fn setup_and_exec(
    spec: &SupervisorSpec,
    joins: &[File],
    netns: Option<&File>,
    pipe: &mut ReportPipe,
    init_status: Option<OwnedFd>,
) -> Result<Infallible, ChildError> {
    join_cgroup(spec, joins)?;
    reset_signal_dispositions();
    let ns = &spec.plan.namespaces;
    nix::unistd::setsid().map_err(|source| ChildError::Namespace {
        step: "setsid",
        source,
    })?;
    // The task dies with its supervisor: a task nobody can report on must not run on.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::SIGKILL).map_err(|source| {
        ChildError::Namespace {
            step: "setting the parent-death signal",
            source,
        }
    })?;
    if let Some(f) = netns {
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
            ChildError::Namespace {
                step: "joining the network namespace",
                source,
            }
        })?;
    }
    if ns.mount || ns.pid {
        use nix::mount::{mount, MsFlags};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|source| ChildError::Namespace {
            step: "making mounts private",
            source,
        })?;
        if ns.pid {
            mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|source| ChildError::Namespace {
                step: "mounting a fresh /proc",
                source,
            })?;
        }
    }
    // Before the fork: the init and the program share the task's priority.
    if spec.setpriority {
        // SAFETY: setpriority takes plain integers.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, spec.plan.cgroup.nice) };
        if r != 0 {
            return Err(ChildError::Nice {
                nice: spec.plan.cgroup.nice,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    if let Some(status) = init_status {
        // From here on this process is the namespace's init; the program continues as pid 2
        // (the mounts above are shared: one mount namespace, one /proc).
        crate::runtime::init::fork_program(status).map_err(|source| ChildError::Namespace {
            step: "forking the program from the pid namespace's init",
            source,
        })?;
        // The program leads its own session and process group, as in host pid mode, so a
        // kill(0, ..) of its own does not reach the init.
        nix::unistd::setsid().map_err(|source| ChildError::Namespace {
            step: "setsid (program)",
            source,
        })?;
    }
    setup_stdio(&spec.plan.stdout, &spec.plan.stderr)?;
    exec_program(spec, pipe)
}

/// Every signal back to SIG_DFL: ignored dispositions survive execve, and the supervisor's
/// chain ignores some (Rust's runtime ignores SIGPIPE; glibc's posix_spawn leaves its internal
/// signals 32 and 33 ignored in the spawned process). The raw syscall reaches 32 and 33, which
/// glibc's sigaction refuses to touch.
pub fn reset_signal_dispositions() {
    // struct kernel_sigaction { handler, flags, restorer, mask }: all zero = SIG_DFL.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads one kernel_sigaction from a valid pointer; the old action
        // is not requested; 8 is the kernel's sigset size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
}

/// Writes `0` (= "this process") into every cgroup.procs: the child joins before it runs any
/// code of the task, so nothing is ever moved after exec.
pub fn join_cgroup(spec: &SupervisorSpec, joins: &[File]) -> Result<(), ChildError> {
    for (f, path) in joins.iter().zip(&spec.join) {
        let mut f: &File = f;
        f.write_all(b"0").map_err(|source| ChildError::JoinCgroup {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// stdin from /dev/null; stdout and stderr to Nomad's FIFOs, opened by this process (which
/// becomes the task) with O_NOFOLLOW, so a symlink planted at the path is refused.
pub fn setup_stdio(stdout: &Path, stderr: &Path) -> Result<(), ChildError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let open = |which: &'static str, path: &Path| -> Result<File, ChildError> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| ChildError::Log {
                which,
                path: path.to_path_buf(),
                source,
            })?;
        let ft = f
            .metadata()
            .map_err(|source| ChildError::Log {
                which,
                path: path.to_path_buf(),
                source,
            })?
            .file_type();
        if !(ft.is_fifo() || ft.is_char_device()) {
            return Err(ChildError::LogNotFifo {
                which,
                path: path.to_path_buf(),
            });
        }
        Ok(f)
    };
    let null = std::fs::File::open("/dev/null").map_err(|source| ChildError::Log {
        which: "stdin",
        path: PathBuf::from("/dev/null"),
        source,
    })?;
    let out = open("stdout", stdout)?;
    let err = open("stderr", stderr)?;
    for (f, target) in [(&null, 0), (&out, 1), (&err, 2)] {
        // SAFETY: dup2 onto 0/1/2 with fds we own; the new fds are not close-on-exec.
        if unsafe { libc::dup2(f.as_raw_fd(), target) } < 0 {
            return Err(ChildError::Log {
                which: "stdio",
                path: PathBuf::from(format!("fd {target}")),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Applies the sandbox and execs the task's program (or an external pledge.com).
fn exec_program(spec: &SupervisorSpec, pipe: &mut ReportPipe) -> Result<Infallible, ChildError> {
    let plan = &spec.plan;
    if plan.pledge_executable.is_some() {
        return exec_external(plan, pipe);
    }
    let prepared = crate::sandbox::prepare(plan)?;
    pipe.report(&describe(prepared.report()));
    match crate::sandbox::enter_and_exec(prepared) {
        Ok(never) => match never {},
        Err(e) => Err(e.into()),
    }
}

/// External mode: pledge.com does the sandboxing; we only give it its namespaces, cgroup and
/// stdio, like the original driver's `unshare ... pledge.com` chain.
fn exec_external(
    plan: &pledge_core::SandboxPlan,
    pipe: &mut ReportPipe,
) -> Result<Infallible, ChildError> {
    use std::ffi::CString;
    let argv = crate::sandbox::external_argv(plan);
    let program = argv.first().cloned().unwrap_or_default();
    let c = |s: &str, what| CString::new(s).map_err(|_| ChildError::Nul { what });
    let cargv = argv
        .iter()
        .map(|a| c(a, "argv"))
        .collect::<Result<Vec<_>, _>>()?;
    let cenv = plan
        .env
        .iter()
        .map(|(k, v)| c(&format!("{k}={v}"), "env"))
        .collect::<Result<Vec<_>, _>>()?;
    let cprog = c(&program, "pledge_executable")?;
    let _ = nix::unistd::chdir(&plan.cwd);
    // pledge.com runs as the task's user, as the original's `unshare --setuid` chain did.
    let creds = crate::sandbox::resolve_credentials(
        plan.user.as_deref(),
        plan.group.as_deref(),
        plan.net_bind_service,
    )?;
    crate::sandbox::apply_credentials(&creds)?;
    pipe.report(&format!("external pledge: {program}"));
    let source = match nix::unistd::execve(&cprog, &cargv, &cenv) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(ChildError::Exec { program, source })
}
