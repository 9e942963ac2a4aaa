//! Users, groups and capabilities: resolved in `prepare` (NSS lookups may read files), applied
//! in `enter_and_exec` (only raw syscalls), then verified.

use super::SandboxError;
use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;

/// CAP_NET_BIND_SERVICE.
pub(crate) const CAP_NET_BIND_SERVICE: u32 = 10;
/// CAP_SETPCAP.
pub(crate) const CAP_SETPCAP: u32 = 8;

/// Who the program runs as, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// Target uid/gid/groups; `None` keeps the current identity.
    pub(crate) ids: Option<(u32, u32, Vec<u32>)>,
    /// Highest capability number to try dropping (the loop stops at the kernel's last).
    pub(crate) cap_last: u32,
    /// Whether we may drop the bounding set (CAP_SETPCAP).
    pub(crate) can_drop_bounding: bool,
    /// Keep CAP_NET_BIND_SERVICE as an ambient capability.
    pub(crate) keep_net_bind: bool,
}

fn parse_id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

fn lookup_user(name: &str) -> Result<User, SandboxError> {
    let found = match parse_id(name) {
        Some(uid) => User::from_uid(Uid::from_raw(uid)),
        None => User::from_name(name),
    };
    found
        .map_err(|source| SandboxError::Lookup {
            what: format!("user {name:?}"),
            source,
        })?
        .ok_or_else(|| SandboxError::UnknownUser(name.to_string()))
}

fn lookup_group(name: &str) -> Result<u32, SandboxError> {
    if let Some(gid) = parse_id(name) {
        return Ok(gid);
    }
    Group::from_name(name)
        .map_err(|source| SandboxError::Lookup {
            what: format!("group {name:?}"),
            source,
        })?
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| SandboxError::UnknownGroup(name.to_string()))
}

/// Whether we hold `cap` in our effective set (capget: no /proc read, cheap at launch).
pub(crate) fn has_effective_cap(cap: u32) -> bool {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two v3 data structs into `data`, which has room for both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 || cap >= 64 {
        return false;
    }
    let word = data[usize::from(cap >= 32)].effective;
    word & (1u32 << (cap % 32)) != 0
}

/// Resolves `user`/`group` (names or numbers). A user without a group takes the user's
/// primary group and supplementary groups; a group alone keeps the uid and sets only it.
pub(crate) fn resolve(
    user: Option<&str>,
    group: Option<&str>,
    keep_net_bind: bool,
) -> Result<Credentials, SandboxError> {
    let ids = match (user, group) {
        (None, None) => None,
        (Some(u), g) => {
            let user = lookup_user(u)?;
            let gid = match g {
                Some(g) => lookup_group(g)?,
                None => user.gid.as_raw(),
            };
            let groups = if g.is_some() {
                vec![gid]
            } else {
                let cname = CString::new(user.name.clone()).map_err(|_| SandboxError::NulByte {
                    what: format!("user {u:?}"),
                })?;
                nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
                    .map_err(|source| SandboxError::Lookup {
                        what: format!("groups of user {u:?}"),
                        source,
                    })?
                    .into_iter()
                    .map(|g| g.as_raw())
                    .collect()
            };
            Some((user.uid.as_raw(), gid, groups))
        }
        (None, Some(g)) => {
            let gid = lookup_group(g)?;
            Some((nix::unistd::getuid().as_raw(), gid, vec![gid]))
        }
    };
    // The drop loop stops at the first capability the kernel does not know (EINVAL), so no
    // /proc/sys/kernel/cap_last_cap read is needed; 63 is the most a 64-bit set can hold.
    let cap_last = 63;
    Ok(Credentials {
        ids,
        cap_last,
        can_drop_bounding: has_effective_cap(CAP_SETPCAP),
        keep_net_bind,
    })
}

fn check(rc: libc::c_long, step: impl FnOnce() -> String) -> Result<(), SandboxError> {
    if rc < 0 {
        Err(SandboxError::last_os(step()))
    } else {
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops the bounding set (keeping NET_BIND_SERVICE if asked), switches ids, raises the ambient
/// capability if asked, and verifies the result. Raw syscalls only.
pub(crate) fn apply(c: &Credentials) -> Result<(), SandboxError> {
    if c.can_drop_bounding {
        for cap in 0..=c.cap_last {
            if c.keep_net_bind && cap == CAP_NET_BIND_SERVICE {
                continue;
            }
            // SAFETY: PR_CAPBSET_DROP takes an integer capability number, no pointers.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc < 0 {
                // EINVAL: past the last capability this kernel knows; done.
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                return Err(SandboxError::last_os(format!(
                    "prctl(PR_CAPBSET_DROP, {cap})"
                )));
            }
        }
    }
    if c.keep_net_bind {
        // SAFETY: integer-only prctl; keeps permitted caps across the uid switch below.
        let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        check(rc.into(), || "prctl(PR_SET_KEEPCAPS)".into())?;
    }
    if let Some((uid, gid, groups)) = &c.ids {
        let gids: Vec<libc::gid_t> = groups.clone();
        // SAFETY: `gids` outlives the call; the length matches the buffer.
        let rc = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
        check(rc.into(), || format!("setgroups({groups:?})"))?;
        // SAFETY: integer arguments only.
        let rc = unsafe { libc::setresgid(*gid, *gid, *gid) };
        check(rc.into(), || format!("setresgid({gid})"))?;
        // SAFETY: integer arguments only.
        let rc = unsafe { libc::setresuid(*uid, *uid, *uid) };
        check(rc.into(), || format!("setresuid({uid})"))?;
        verify(*uid, *gid, groups)?;
    }
    if c.keep_net_bind {
        let bit = 1u32 << CAP_NET_BIND_SERVICE;
        let mut hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: bit,
                permitted: bit,
                inheritable: bit,
            },
            CapData::default(),
        ];
        // SAFETY: capset reads a v3 header and two data structs, both live on our stack.
        let rc =
            unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
        check(rc, || "capset(CAP_NET_BIND_SERVICE)".into())?;
        // SAFETY: integer-only prctl.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(CAP_NET_BIND_SERVICE),
                0,
                0,
            )
        };
        check(rc.into(), || {
            "prctl(PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE)".into()
        })?;
    }
    Ok(())
}

fn verify(uid: u32, gid: u32, groups: &[u32]) -> Result<(), SandboxError> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three out-pointers are valid locals.
    let rc = unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    check(rc.into(), || "getresuid".into())?;
    if (r, e, s) != (uid, uid, uid) {
        return Err(SandboxError::CredentialsNotVerified(format!(
            "uids are {r}/{e}/{s}, wanted {uid}"
        )));
    }
    // SAFETY: as above.
    let rc = unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    check(rc.into(), || "getresgid".into())?;
    if (r, e, s) != (gid, gid, gid) {
        return Err(SandboxError::CredentialsNotVerified(format!(
            "gids are {r}/{e}/{s}, wanted {gid}"
        )));
    }
    let mut buf = [0 as libc::gid_t; 256];
    // SAFETY: `buf` has room for 256 gids and we pass that size.
    let n = unsafe { libc::getgroups(256, buf.as_mut_ptr()) };
    check(n.into(), || "getgroups".into())?;
    let mut got: Vec<u32> = buf[..usize::try_from(n).unwrap_or(0)].to_vec();
    let mut want = groups.to_vec();
    got.sort_unstable();
    got.dedup();
    want.sort_unstable();
    want.dedup();
    if got != want {
        return Err(SandboxError::CredentialsNotVerified(format!(
            "groups are {got:?}, wanted {want:?}"
        )));
    }
    Ok(())
}
