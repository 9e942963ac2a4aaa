//! The hand-written head of every filter (seccompiler cannot express ranges or bit tests on
//! the syscall number):
//! - a foreign `seccomp_data.arch` (i386 `int 0x80` on x86_64) kills the process;
//! - on x86_64, an x32 number (bit 30) kills the process;
//! - numbers at or above [`FIRST_UNKNOWN_NR`] (newer than our table) and [`ENOSYS_SYSCALLS`]
//!   fail with ENOSYS, so libc falls back to the older calls the table can check;
//! - everything else falls through to the allowlist appended after it.
//!
//! It only loads `arch` and `nr`, so the kernel's per-syscall action cache still marks plain
//! allowed syscalls as always-allow and skips the filter for them.

use super::compile::FilterArch;
use seccompiler::{sock_filter, BpfProgram};

/// First syscall number treated as "newer than the table" (memfd_secret, 447, on both arches).
pub(crate) const FIRST_UNKNOWN_NR: u32 = 447;

/// Syscalls answered with ENOSYS whatever the promises: their arguments live in structs BPF
/// cannot read (clone3, openat2) or they create anonymous executable memory (memfd_create).
pub(crate) const ENOSYS_SYSCALLS: &[&str] = &["clone3", "openat2", "memfd_create"];

/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
#[cfg_attr(not(test), allow(dead_code))]
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The prologue for `arch`. Its last two instructions are the ENOSYS and KILL returns it jumps
/// to; the instruction before them jumps over them into the allowlist.
pub(crate) fn prologue(arch: FilterArch) -> BpfProgram {
    let enosys_nrs: Vec<u32> = ENOSYS_SYSCALLS
        .iter()
        .filter_map(|n| super::syscalls::number(arch, n))
        .collect();
    let mut checks: Vec<(u16, u32, bool)> = Vec::new(); // (op, k, kill?)
    if arch == FilterArch::X86_64 {
        checks.push((BPF_JSET_K, X32_SYSCALL_BIT, true));
    }
    checks.push((BPF_JGE_K, FIRST_UNKNOWN_NR, false));
    checks.extend(enosys_nrs.iter().map(|nr| (BPF_JEQ_K, *nr, false)));

    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, arch.audit_arch(), 1, 0),
        stmt(BPF_RET_K, RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    // Index of the JA, then ENOSYS at +1, KILL at +2 (relative to the JA).
    let ja_at = p.len() + checks.len();
    for (i, (op, k, kill)) in checks.iter().enumerate() {
        let here = p.len();
        debug_assert_eq!(here, 4 + i);
        let target = if *kill { ja_at + 2 } else { ja_at + 1 };
        // Offsets are tiny (a dozen instructions), so the conversion cannot fail.
        let jt = u8::try_from(target - here - 1).unwrap_or(0);
        p.push(jump(*op, *k, jt, 0));
    }
    p.push(stmt(BPF_JMP_JA, 2));
    p.push(stmt(BPF_RET_K, RET_ERRNO | libc::ENOSYS as u32));
    p.push(stmt(BPF_RET_K, RET_KILL_PROCESS));
    p
}

/// `nr` (already in the accumulator) equal to any of `nrs` (sorted) → ALLOW; otherwise fall
/// through to the instruction after the tree. A binary search (JGE splits, JEQ leaves of at
/// most [`LEAF`]), so a syscall that is not in the set — an argument-checked one on its way
/// to the rule chains — pays about 2·log2(n/8)+8 comparisons, not n.
pub(crate) fn allow_tree(nrs: &[u32]) -> BpfProgram {
    if nrs.len() <= LEAF {
        let mut p = Vec::with_capacity(nrs.len() + 2);
        for (i, nr) in nrs.iter().enumerate() {
            // Distance to the RET ALLOW: the rest of the leaf, then the JA.
            let jt = u8::try_from(nrs.len() - i).unwrap_or(u8::MAX);
            p.push(jump(BPF_JEQ_K, *nr, jt, 0));
        }
        if !nrs.is_empty() {
            p.push(stmt(BPF_JMP_JA, 1));
            p.push(stmt(BPF_RET_K, RET_ALLOW));
        }
        return p;
    }
    let (lo, hi) = nrs.split_at(nrs.len() / 2);
    let left = allow_tree(lo);
    let right = allow_tree(hi);
    let len = |v: &BpfProgram| u32::try_from(v.len()).unwrap_or(u32::MAX);
    let mut p = Vec::with_capacity(left.len() + right.len() + 3);
    // acc >= hi[0]: to the JA that leads to the right half; else straight into the left half.
    p.push(jump(BPF_JGE_K, hi[0], 0, 1));
    p.push(stmt(BPF_JMP_JA, len(&left) + 1));
    p.extend(left);
    p.push(stmt(BPF_JMP_JA, len(&right)));
    p.extend(right);
    p
}

/// Largest leaf of [`allow_tree`].
const LEAF: usize = 8;

/// A classic-BPF interpreter for the instructions seccomp filters built here use, so tests can
/// run a compiled filter against the core table without a kernel. Returns the action word.
#[cfg(test)]
pub(crate) fn interpret(prog: &[sock_filter], nr: u32, arch: u32, args: &[u64; 6]) -> u32 {
    interpret_counted(prog, nr, arch, args).0
}

/// [`interpret`], also returning how many instructions ran.
#[cfg(test)]
pub(crate) fn interpret_counted(
    prog: &[sock_filter],
    nr: u32,
    arch: u32,
    args: &[u64; 6],
) -> (u32, usize) {
    let load = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) => {
                let i = usize::try_from((o - 16) / 8).unwrap_or(0);
                let v = args[i];
                if (o - 16) % 8 == 0 {
                    v as u32
                } else {
                    (v >> 32) as u32
                }
            }
            _ => panic!("load of unexpected offset {off}"),
        }
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let i = &prog[pc];
        steps += 1;
        let jmp = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => acc = load(i.k),
            BPF_ALU_AND_K => acc &= i.k,
            BPF_JMP_JA => pc += i.k as usize,
            BPF_JEQ_K => pc += jmp(acc == i.k),
            BPF_JGE_K => pc += jmp(acc >= i.k),
            0x25 => pc += jmp(acc > i.k), // JGT
            BPF_JSET_K => pc += jmp(acc & i.k != 0),
            BPF_RET_K => return (i.k, steps),
            c => panic!("unexpected BPF opcode {c:#x}"),
        }
    }
}
