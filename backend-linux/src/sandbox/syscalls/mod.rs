//! Syscall name ↔ number tables per architecture (the core's table uses names only).
//! Both tables are plain data so the aarch64 filter can be compiled and tested on x86_64.

mod aarch64;
mod x86_64;

use super::compile::FilterArch;

/// The table of `arch`, sorted by number.
pub(crate) fn table(arch: FilterArch) -> &'static [(&'static str, u32)] {
    match arch {
        FilterArch::X86_64 => x86_64::SYSCALLS,
        FilterArch::Aarch64 => aarch64::SYSCALLS,
    }
}

/// The number of `name` on `arch`, or `None` when the arch lacks it (aarch64 has no `open`).
pub(crate) fn number(arch: FilterArch, name: &str) -> Option<u32> {
    table(arch)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

/// The name of syscall `nr` on `arch`.
pub fn name(arch: FilterArch, nr: u32) -> Option<&'static str> {
    table(arch)
        .iter()
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_table_matches_libc() {
        let check = [
            ("read", libc::SYS_read),
            ("open", libc::SYS_open),
            ("openat", libc::SYS_openat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("openat2", libc::SYS_openat2),
            ("memfd_create", libc::SYS_memfd_create),
            ("execve", libc::SYS_execve),
            ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
            ("memfd_secret", libc::SYS_memfd_secret),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("newfstatat", libc::SYS_newfstatat),
            ("rseq", libc::SYS_rseq),
            ("arch_prctl", libc::SYS_arch_prctl),
        ];
        for (n, nr) in check {
            assert_eq!(
                number(FilterArch::X86_64, n).map(i64::from),
                Some(nr),
                "{n}"
            );
        }
    }

    #[test]
    fn aarch64_table_is_asm_generic() {
        // Spot checks against asm-generic/unistd.h.
        for (n, nr) in [
            ("io_setup", 0),
            ("openat", 56),
            ("read", 63),
            ("newfstatat", 79),
            ("exit_group", 94),
            ("kill", 129),
            ("clone", 220),
            ("execve", 221),
            ("mmap", 222),
            ("mprotect", 226),
            ("clone3", 435),
            ("openat2", 437),
            ("memfd_create", 279),
            ("landlock_create_ruleset", 444),
        ] {
            assert_eq!(number(FilterArch::Aarch64, n), Some(nr), "{n}");
        }
        for legacy in [
            "open",
            "stat",
            "fork",
            "pipe",
            "poll",
            "dup2",
            "arch_prctl",
            "creat",
        ] {
            assert_eq!(number(FilterArch::Aarch64, legacy), None, "{legacy}");
        }
    }

    #[test]
    fn every_table_name_exists_on_x86_64() {
        // Catches typos in the core table: every name is a real x86_64 syscall.
        for n in pledge_core::policy::promises::all_syscalls() {
            assert!(
                number(FilterArch::X86_64, n).is_some(),
                "unknown syscall {n}"
            );
        }
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in [FilterArch::X86_64, FilterArch::Aarch64] {
            let t = table(arch);
            assert!(t.windows(2).all(|w| w[0].1 < w[1].1), "{arch:?}");
        }
    }
}
