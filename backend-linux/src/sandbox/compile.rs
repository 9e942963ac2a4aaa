//! Compiles a promise set into one seccomp-BPF program: our hand-written prologue
//! ([`super::prologue`]: arch check, x32 and i386 killed, ENOSYS for clone3/openat2/
//! memfd_create and everything newer than the table) followed by the allowlist that
//! `seccompiler` builds from the core's promise table.
//!
//! One program, not two stacked filters: seccomp picks the most restrictive result across
//! filters, so with `-k` a stacked allowlist would kill where the prologue says ENOSYS.

use super::prologue;
use super::syscalls;
use pledge_core::policy::promises::{
    self, consts, ArgCheck, Cond, OpenFlags, OpenGrant, Rule, ALWAYS,
};
use pledge_core::{Promise, PromiseSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// The architectures we build filters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterArch {
    /// x86_64 (tested on the real kernel here).
    X86_64,
    /// aarch64 (compiled and unit-tested on any host).
    Aarch64,
}

impl FilterArch {
    /// The architecture this binary runs on.
    pub fn native() -> Self {
        if cfg!(target_arch = "aarch64") {
            Self::Aarch64
        } else {
            Self::X86_64
        }
    }

    /// `AUDIT_ARCH_*` as seccomp reports it.
    pub fn audit_arch(self) -> u32 {
        match self {
            Self::X86_64 => 0xC000_003E,
            Self::Aarch64 => 0xC000_00B7,
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Self::X86_64 => TargetArch::x86_64,
            Self::Aarch64 => TargetArch::aarch64,
        }
    }
}

/// What to do with a call the promises do not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    /// Fail it with EPERM (pledge's default).
    Eperm,
    /// Kill the process with SIGSYS (`-k`).
    Kill,
    /// Allow it and let the kernel log it (complain mode).
    Log,
}

/// Inputs of one compilation besides the promise set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterOptions {
    /// Target architecture.
    pub arch: FilterArch,
    /// Violation penalty.
    pub penalty: Penalty,
    /// The sandboxed process's pid (for kill/tkill/tgkill/prlimit64 self checks).
    pub pid: u32,
    /// When the set lacks `exec`: the address of the launcher's program path, so the one
    /// `execve` that starts the program passes and no other does.
    pub exec_path_ptr: Option<u64>,
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledFilter {
    /// The program, ready for `seccompiler::apply_filter`.
    pub program: BpfProgram,
}

impl CompiledFilter {
    /// Number of BPF instructions.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }
}

/// Why a filter could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// seccompiler rejected the rules (too large, bad condition).
    #[error("building the seccomp filter")]
    Backend(#[from] seccompiler::BackendError),
}

fn dword(arg: u8, op: Op, value: u64) -> Result<SeccompCondition, CompileError> {
    Ok(SeccompCondition::new(
        arg,
        Len::Dword,
        op,
        value & 0xffff_ffff,
    )?)
}

fn cond(c: &Cond, pid: u32) -> Result<SeccompCondition, CompileError> {
    match *c {
        Cond::Eq { arg, value } => dword(arg, Op::Eq, value),
        Cond::Ne { arg, value } => dword(arg, Op::Ne, value),
        Cond::Masked { arg, mask, value } => dword(arg, Op::MaskedEq(mask & 0xffff_ffff), value),
        Cond::Null { arg } => Ok(SeccompCondition::new(arg, Len::Qword, Op::Eq, 0)?),
        Cond::SelfPid { arg } => dword(arg, Op::Eq, u64::from(pid)),
    }
}

/// The alternatives (OR of ANDs) of a non-open check; `None` means "any arguments".
fn alternatives(check: &ArgCheck, pid: u32) -> Result<Option<Vec<SeccompRule>>, CompileError> {
    let rule = |conds: Vec<SeccompCondition>| -> Result<SeccompRule, CompileError> {
        Ok(SeccompRule::new(conds)?)
    };
    let mut out = Vec::new();
    match check {
        ArgCheck::Any => return Ok(None),
        ArgCheck::All(conds) => {
            let cs = conds
                .iter()
                .map(|c| cond(c, pid))
                .collect::<Result<_, _>>()?;
            out.push(rule(cs)?);
        }
        ArgCheck::OneOf { arg, values } => {
            for v in *values {
                out.push(rule(vec![dword(*arg, Op::Eq, *v)?])?);
            }
        }
        ArgCheck::SelfOrZero { arg } => {
            out.push(rule(vec![dword(*arg, Op::Eq, 0)?])?);
            out.push(rule(vec![dword(*arg, Op::Eq, u64::from(pid))?])?);
        }
        ArgCheck::Socket { families, types } => {
            for fam in *families {
                for (ty, protos) in *types {
                    for proto in *protos {
                        out.push(rule(vec![
                            dword(0, Op::Eq, *fam)?,
                            dword(1, Op::MaskedEq(!consts::SOCK_FLAGS & 0xffff_ffff), *ty)?,
                            dword(2, Op::Eq, *proto)?,
                        ])?);
                    }
                }
            }
        }
        ArgCheck::SockOpt { pairs } => {
            for (level, name) in *pairs {
                out.push(rule(vec![
                    dword(1, Op::Eq, *level)?,
                    dword(2, Op::Eq, *name)?,
                ])?);
            }
        }
        ArgCheck::Open { .. } => {}
    }
    Ok(Some(out))
}

/// The alternatives for an open-family call when the set grants `grants`.
fn open_alternatives(
    grants: &[OpenGrant],
    flags_at: OpenFlags,
    mode_arg: u8,
) -> Result<Vec<SeccompRule>, CompileError> {
    use consts::*;
    let read = grants.contains(&OpenGrant::Read);
    let write = grants.contains(&OpenGrant::Write);
    let create = grants.contains(&OpenGrant::Create);
    // Access modes the grants cover. 3 (O_ACCMODE) asks the kernel for read+write checks.
    let mut modes = Vec::new();
    if read {
        modes.push(O_RDONLY);
    }
    if write {
        modes.push(O_WRONLY);
    }
    if read && write {
        modes.push(O_RDWR);
        modes.push(O_ACCMODE);
    }
    let mut out = Vec::new();
    match flags_at {
        OpenFlags::Fixed(flags) => {
            // creat(): the flags are known; allowed iff every need is granted.
            let ok = promises::open_needs(flags, 0)
                .is_some_and(|needs| needs.iter().all(|n| grants.contains(n)));
            if ok {
                out.push(SeccompRule::new(vec![dword(
                    mode_arg,
                    Op::MaskedEq(MODE_SPECIAL),
                    0,
                )?])?);
            }
        }
        OpenFlags::Arg(fa) => {
            for acc in modes {
                let mut base = vec![dword(fa, Op::MaskedEq(O_ACCMODE), acc)?];
                if !write {
                    base.push(dword(fa, Op::MaskedEq(O_TRUNC), 0)?);
                }
                // Without create: no O_CREAT/O_TMPFILE. With it: either none, or a clean mode.
                let mut no_create = base.clone();
                no_create.push(dword(fa, Op::MaskedEq(O_CREAT | O_TMPFILE_BIT), 0)?);
                out.push(SeccompRule::new(no_create)?);
                if create {
                    let mut clean = base;
                    clean.push(dword(mode_arg, Op::MaskedEq(MODE_SPECIAL), 0)?);
                    out.push(SeccompRule::new(clean)?);
                }
            }
        }
    }
    Ok(out)
}

/// What the filter allows, per syscall name: `None` = any arguments, `Some(alts)` = when any
/// alternative matches (an empty list allows nothing).
type Allowlist = BTreeMap<&'static str, Option<Vec<SeccompRule>>>;

fn allowlist(set: &PromiseSet, opts: &FilterOptions) -> Result<Allowlist, CompileError> {
    let mut list: Allowlist = BTreeMap::new();
    let mut opens: BTreeMap<&'static str, (Vec<OpenGrant>, OpenFlags, u8)> = BTreeMap::new();
    let rules: Vec<&Rule> = ALWAYS
        .iter()
        .chain(set.iter().flat_map(|p| promises::rules(p).iter()))
        .collect();
    for r in rules {
        if let ArgCheck::Open {
            grant,
            flags,
            mode_arg,
        } = r.args
        {
            let e = opens
                .entry(r.syscall)
                .or_insert((Vec::new(), flags, mode_arg));
            if !e.0.contains(&grant) {
                e.0.push(grant);
            }
            continue;
        }
        let alts = alternatives(&r.args, opts.pid)?;
        let entry = list.entry(r.syscall).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), alts) {
            (None, _) => {}
            (Some(_), None) => *entry = None,
            (Some(v), Some(a)) => {
                // Several promises share checks (the sockopt pairs): emit each once.
                for r in a {
                    if !v.contains(&r) {
                        v.push(r);
                    }
                }
            }
        }
    }
    for (name, (grants, flags, mode_arg)) in opens {
        let alts = open_alternatives(&grants, flags, mode_arg)?;
        if let Some(v) = list.entry(name).or_insert_with(|| Some(Vec::new())) {
            v.extend(alts);
        }
    }
    if !set.contains(Promise::Exec) {
        if let Some(ptr) = opts.exec_path_ptr {
            list.insert(
                "execve",
                Some(vec![SeccompRule::new(vec![SeccompCondition::new(
                    0,
                    Len::Qword,
                    Op::Eq,
                    ptr,
                )?])?]),
            );
        }
    }
    list.retain(|_, v| v.as_ref().is_none_or(|alts| !alts.is_empty()));
    Ok(list)
}

/// Compiles `set` for `opts.arch`.
pub fn compile_filter(
    set: &PromiseSet,
    opts: &FilterOptions,
) -> Result<CompiledFilter, CompileError> {
    let list = allowlist(set, opts)?;
    // Syscalls allowed with any arguments go into a binary-search tree of JEQs (seccompiler
    // spends five instructions on each and scans linearly); only the argument-checked ones
    // go to seccompiler's rule chains.
    let mut plain: Vec<u32> = Vec::new();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (name, alts) in list {
        // Names the arch lacks (aarch64 has no open/stat/fork...) are skipped; names at or
        // above the prologue's cut-off would never be reached.
        let Some(nr) = syscalls::number(opts.arch, name) else {
            continue;
        };
        if nr >= prologue::FIRST_UNKNOWN_NR || prologue::ENOSYS_SYSCALLS.contains(&name) {
            continue;
        }
        match alts {
            None => plain.push(nr),
            Some(alts) => {
                rules.insert(i64::from(nr), alts);
            }
        }
    }
    let mismatch = match opts.penalty {
        Penalty::Eperm => SeccompAction::Errno(libc::EPERM as u32),
        Penalty::Kill => SeccompAction::KillProcess,
        Penalty::Log => SeccompAction::Log,
    };
    let body: BpfProgram =
        SeccompFilter::new(rules, mismatch, SeccompAction::Allow, opts.arch.target())?
            .try_into()?;
    let mut program = prologue::prologue(opts.arch);
    plain.sort_unstable();
    program.extend(prologue::allow_tree(&plain));
    program.extend(body);
    Ok(CompiledFilter { program })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::prologue::interpret;
    use pledge_core::policy::promises::EvalContext;
    use proptest::prelude::*;

    const PID: u32 = 4242;
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0000 | 1;
    const ENOSYS: u32 = 0x0005_0000 | 38;
    const KILL: u32 = 0x8000_0000;

    fn opts(arch: FilterArch, penalty: Penalty) -> FilterOptions {
        FilterOptions {
            arch,
            penalty,
            pid: PID,
            exec_path_ptr: Some(0x5555_0000_1000),
        }
    }

    fn set(s: &str) -> PromiseSet {
        s.split_whitespace()
            .filter_map(Promise::from_name)
            .collect()
    }

    fn run(f: &CompiledFilter, arch: FilterArch, name: &str, args: [u64; 6]) -> u32 {
        let nr = syscalls::number(arch, name).unwrap_or(u32::MAX);
        interpret(&f.program, nr, arch.audit_arch(), &args)
    }

    const SETS: &[&str] = &[
        "",
        "stdio",
        "stdio rpath",
        "stdio rpath wpath cpath",
        "stdio rpath inet dns",
        "stdio wpath",
        "stdio cpath",
        "stdio unix sendfd recvfd",
        "stdio proc exec",
        "stdio tty",
        "stdio prot_exec thread",
        "stdio rpath wpath cpath dpath flock fattr chown inet anet unix dns tty recvfd sendfd proc exec id thread prot_exec vminfo tmppath settime unveil",
    ];

    /// The compiled BPF answers exactly what the core table says, for every syscall the table
    /// names and a spread of interesting argument values.
    #[test]
    fn bpf_agrees_with_the_table() {
        let ctx = EvalContext { pid: PID };
        let interesting: &[u64] = &[
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            10,
            15,
            17,
            41,
            0o100,
            0o101,
            0o102,
            0o1001,
            0o20000000,
            0o4755,
            0o644,
            0x5401,
            0x5412,
            0x541b,
            0x8905,
            1030,
            38,
            PID as u64,
            0xffff_ffff,
            0x0001_0f00 | 0x3d_0000,
            0x1000_0011,
            0x0120_0011,
            0x0005_0000_0000,
            (0x123 << 32) | 0x5412,
            0o2000001,
            0x800 | 1,
        ];
        for arch in [FilterArch::X86_64, FilterArch::Aarch64] {
            for s in SETS {
                let ps = set(s);
                let f = compile_filter(&ps, &opts(arch, Penalty::Eperm)).expect("compiles");
                for name in promises::all_syscalls() {
                    if syscalls::number(arch, name).is_none()
                        || prologue::ENOSYS_SYSCALLS.contains(&name)
                        || name == "execve"
                    {
                        continue;
                    }
                    for (i, &a) in interesting.iter().enumerate() {
                        for pos in 0..4usize {
                            let mut args = [0u64; 6];
                            args[pos] = a;
                            args[(pos + 1) % 4] = interesting[(i * 3) % interesting.len()];
                            args[(pos + 2) % 4] = interesting[(i * 5 + 1) % interesting.len()];
                            let want = promises::allows(&ps, name, &args, ctx);
                            let got = run(&f, arch, name, args);
                            assert_eq!(
                                got,
                                if want { ALLOW } else { EPERM },
                                "{arch:?} [{s}] {name}{args:x?}"
                            );
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn bpf_agrees_with_the_table_on_random_args(
            set_bits in any::<u32>(),
            which in 0usize..200,
            args in proptest::array::uniform6(prop_oneof![any::<u64>(), 0u64..64, Just(u64::from(PID))]),
        ) {
            let ps: PromiseSet = Promise::ALL.iter().enumerate().filter(|(i, _)| set_bits & (1 << i) != 0).map(|(_, p)| *p).collect();
            let names = promises::all_syscalls();
            let name = names[which % names.len()];
            let arch = FilterArch::X86_64;
            prop_assume!(!prologue::ENOSYS_SYSCALLS.contains(&name) && name != "execve");
            let f = compile_filter(&ps, &opts(arch, Penalty::Eperm)).expect("compiles");
            let want = promises::allows(&ps, name, &args, EvalContext { pid: PID });
            prop_assert_eq!(run(&f, arch, name, args), if want { ALLOW } else { EPERM });
        }
    }

    #[test]
    fn prologue_kills_foreign_arch_and_x32_and_enosys_new_calls() {
        for penalty in [Penalty::Eperm, Penalty::Kill] {
            let f = compile_filter(&set("stdio"), &opts(FilterArch::X86_64, penalty)).expect("ok");
            let a = [0u64; 6];
            // i386 getpid via int 0x80.
            assert_eq!(interpret(&f.program, 20, 0x4000_0003, &a), KILL);
            // x32 getpid.
            assert_eq!(
                interpret(&f.program, 0x4000_0000 | 39, 0xC000_003E, &a),
                KILL
            );
            for n in ["clone3", "openat2", "memfd_create", "memfd_secret"] {
                assert_eq!(run(&f, FilterArch::X86_64, n, a), ENOSYS, "{n}");
            }
            assert_eq!(interpret(&f.program, 452, 0xC000_003E, &a), ENOSYS); // fchmodat2
            assert_eq!(interpret(&f.program, 1000, 0xC000_003E, &a), ENOSYS);
            let denied = if penalty == Penalty::Kill {
                KILL
            } else {
                EPERM
            };
            assert_eq!(run(&f, FilterArch::X86_64, "ptrace", a), denied);
            assert_eq!(run(&f, FilterArch::X86_64, "getpid", a), ALLOW);
        }
        let f =
            compile_filter(&set("stdio"), &opts(FilterArch::Aarch64, Penalty::Eperm)).expect("ok");
        assert_eq!(interpret(&f.program, 172, 0xC000_003E, &[0; 6]), KILL); // x86 on arm
        assert_eq!(interpret(&f.program, 172, 0xC000_00B7, &[0; 6]), ALLOW); // getpid
    }

    #[test]
    fn execve_only_with_the_pinned_path_unless_exec() {
        let f =
            compile_filter(&set("stdio"), &opts(FilterArch::X86_64, Penalty::Eperm)).expect("ok");
        let mut a = [0u64; 6];
        a[0] = 0x5555_0000_1000;
        assert_eq!(run(&f, FilterArch::X86_64, "execve", a), ALLOW);
        a[0] = 0x5555_0000_2000;
        assert_eq!(run(&f, FilterArch::X86_64, "execve", a), EPERM);
        a[0] = 0x0000_0000_1000; // same low half
        assert_eq!(run(&f, FilterArch::X86_64, "execve", a), EPERM);
        assert_eq!(run(&f, FilterArch::X86_64, "execveat", a), EPERM);
        let f = compile_filter(
            &set("stdio exec"),
            &opts(FilterArch::X86_64, Penalty::Eperm),
        )
        .expect("ok");
        assert_eq!(run(&f, FilterArch::X86_64, "execve", a), ALLOW);
    }

    #[test]
    fn complain_mode_logs_instead_of_denying() {
        let f = compile_filter(&set("stdio"), &opts(FilterArch::X86_64, Penalty::Log)).expect("ok");
        assert_eq!(run(&f, FilterArch::X86_64, "ptrace", [0; 6]), 0x7ffc_0000);
    }

    /// BPF size per promise set (printed for the README and the benchmark engineer).
    #[test]
    fn instruction_counts_per_promise_set() {
        let mut last = 0;
        for s in [
            "",
            "stdio",
            "stdio rpath",
            "stdio rpath inet dns",
            SETS[SETS.len() - 1],
        ] {
            let n = compile_filter(&set(s), &opts(FilterArch::X86_64, Penalty::Eperm))
                .expect("ok")
                .instructions();
            let a = compile_filter(&set(s), &opts(FilterArch::Aarch64, Penalty::Eperm))
                .expect("ok")
                .instructions();
            let f = compile_filter(&set(s), &opts(FilterArch::X86_64, Penalty::Eperm)).expect("ok");
            let steps = |name: &str, args: [u64; 6]| {
                let nr = syscalls::number(FilterArch::X86_64, name).unwrap_or(0);
                crate::sandbox::prologue::interpret_counted(&f.program, nr, 0xC000_003E, &args).1
            };
            println!(
                "bpf instructions x86_64={n:4} aarch64={a:4}  executed: getpid={} mmap={} openat={} ptrace={}  promises=[{s}]",
                steps("getpid", [0; 6]),
                steps("mmap", [0, 4096, 3, 0x22, 0, 0]),
                steps("openat", [0; 6]),
                steps("ptrace", [0; 6]),
            );
            assert!(n < 4096 && a < 4096);
            assert!(n >= last, "a superset never compiles smaller");
            last = n;
        }
    }
}
