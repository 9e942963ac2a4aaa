//! Process identity and handles: start times from `/proc/PID/stat`, pidfds (so a reused pid is
//! never mistaken for the task), and private memory from `smaps_rollup`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Start time of `pid` in clock ticks since boot (`/proc/PID/stat` field 22), `None` if the
/// process does not exist or the file cannot be parsed.
pub fn start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&text)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) may hold spaces and `)`,
/// so fields are counted after the last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")" come fields 3.. ; field 22 is the 20th of them.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Opens a pidfd for `pid` (Linux 5.3+). The pidfd pins the process identity: signals sent
/// through it never reach a later process that reuses the pid.
pub fn pidfd_open(pid: u32) -> Result<OwnedFd, nix::Error> {
    let raw = libc::pid_t::try_from(pid).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    let fd = RawFd::try_from(fd).map_err(|_| nix::Error::EBADF)?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a pidfd for `pid` and checks that the process still has start time `start`.
/// `Ok(None)` when the process is gone or the pid now belongs to another process.
pub fn pidfd_checked(pid: u32, start: u64) -> Result<Option<OwnedFd>, nix::Error> {
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(nix::Error::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Checked after opening: if the pid was reused before the open, the start time differs;
    // after the open, the fd refers to the process we checked.
    if start_time(pid) == Some(start) {
        Ok(Some(fd))
    } else {
        Ok(None)
    }
}

/// Sends `sig` through a pidfd.
pub fn pidfd_send_signal(fd: &OwnedFd, sig: i32) -> Result<(), nix::Error> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal(fd, sig, NULL, 0): a null siginfo is allowed and means "as if
    // by kill(2)"; the fd is a live pidfd we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// True once the process behind a pidfd has exited (the pidfd polls readable).
pub fn pidfd_exited(fd: &OwnedFd, timeout_ms: u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(timeout_ms)), Ok(n) if n > 0)
}

/// Every pid in /proc now (processes come and go while the caller looks at them).
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Live processes whose command line is `<exe> supervise <dir>`: a task's supervisor (and its
/// pid-namespace init, a fork of it) for the state dir `dir`, whichever plugin started them.
pub fn supervisors_of(dir: &Path) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| cmdline_supervises(&c, dir))
                .unwrap_or(false)
        })
        .collect()
}

/// True when a NUL-separated `/proc/PID/cmdline` is `<exe> supervise <dir>`.
pub fn cmdline_supervises(cmdline: &[u8], dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let mut args = cmdline.split(|b| *b == 0);
    let (_, verb, arg) = (args.next(), args.next(), args.next());
    verb == Some(b"supervise".as_slice()) && arg == Some(dir.as_os_str().as_bytes())
}

/// Unique set size (private clean + private dirty) of `pid` in bytes, from
/// `/proc/PID/smaps_rollup`.
pub fn uss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(
        Path::new("/proc")
            .join(pid.to_string())
            .join("smaps_rollup"),
    )
    .ok()?;
    let mut kib = 0u64;
    for line in text.lines() {
        if line.starts_with("Private_Clean:") || line.starts_with("Private_Dirty:") {
            kib += line
                .split_ascii_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(kib * 1024)
}

/// Private memory of `pid` split as (all private pages, private pages not backed by a file).
/// File-backed private pages of a supervisor are the plugin binary's own pages, which the
/// plugin process shares in production (and which count as dirty right after a build).
pub fn uss_split(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut all, mut anon, mut file_backed) = (0u64, 0u64, false);
    for line in text.lines() {
        let first = line.split_ascii_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // "start-end perms offset dev inode [path]": inode 0 = anonymous.
            file_backed = line
                .split_ascii_whitespace()
                .nth(4)
                .is_some_and(|i| i != "0");
            continue;
        }
        if line.starts_with("Private_Clean:") || line.starts_with("Private_Dirty:") {
            let kib: u64 = line
                .split_ascii_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            all += kib * 1024;
            if !file_backed {
                anon += kib * 1024;
            }
        }
    }
    Some((all, anon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_spaces_and_parens_in_the_name() {
        let line =
            "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(parse_start_time(line), Some(987_654));
    }

    #[test]
    fn start_time_of_garbage_is_none() {
        assert_eq!(parse_start_time(""), None);
        assert_eq!(parse_start_time("1 (x) S 1"), None);
    }

    #[test]
    fn own_start_time_is_readable_and_stable() {
        let me = std::process::id();
        let a = start_time(me);
        assert!(a.is_some());
        assert_eq!(a, start_time(me));
        let fd = pidfd_checked(me, a.unwrap_or_default());
        assert!(matches!(fd, Ok(Some(_))));
        assert!(matches!(
            pidfd_checked(me, a.unwrap_or_default() + 1),
            Ok(None)
        ));
    }

    #[test]
    fn a_supervisor_cmdline_names_exactly_its_state_dir() {
        let dir = Path::new("/run/nomad-pledge-driver/a_web_1");
        assert!(cmdline_supervises(
            b"/proc/self/exe\0supervise\0/run/nomad-pledge-driver/a_web_1\0",
            dir
        ));
        // A longer id sharing the prefix, another verb, or no dir is not this task's.
        assert!(!cmdline_supervises(
            b"/x\0supervise\0/run/nomad-pledge-driver/a_web_10\0",
            dir
        ));
        assert!(!cmdline_supervises(
            b"/x\0exec\0/run/nomad-pledge-driver/a_web_1\0",
            dir
        ));
        assert!(!cmdline_supervises(b"/x\0supervise", dir));
        assert!(!cmdline_supervises(b"", dir));
    }
}
