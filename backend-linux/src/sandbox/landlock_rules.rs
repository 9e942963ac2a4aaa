//! Unveil on Landlock: the ruleset is created and every path opened in `prepare`;
//! `restrict_self` is the only call left for `enter_and_exec`.
//!
//! Permission letters (pledge.md a.8, with the holes closed):
//! - `r`: READ_FILE, READ_DIR
//! - `w`: WRITE_FILE, TRUNCATE (ABI 3), IOCTL_DEV (ABI 5)
//! - `x`: EXECUTE
//! - `c`: MAKE_* (all seven), REMOVE_FILE, REMOVE_DIR, REFER (ABI 2) — so unlink, rmdir and
//!   renames are confined to `c` paths, and moving files needs `c` on both sides.
//!
//! Every right of ABI 7 is handled, so anything not granted is denied. Scopes (ABI 6: signals,
//! abstract unix sockets) are always on. TCP bind/connect ports (ABI 4) are handled only when
//! the task sets `bind_ports`/`connect_ports`.

use super::report::EnforcementStatus;
use super::SandboxError;
use landlock::{
    make_bitflags, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope, ABI,
};
use pledge_core::{UnveilPerm, UnveilRule};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;

/// The newest ABI whose rights we hand to the kernel.
const ABI_TARGET: ABI = ABI::V7;

/// Kernel Landlock ABI: 0 when not built in or disabled.
pub(crate) fn probe_abi() -> u32 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a NULL attr and size 0 only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// Landlock rights for the unveil letters.
pub(crate) fn access_for(perm: UnveilPerm) -> BitFlags<AccessFs> {
    let mut a = BitFlags::EMPTY;
    if perm.contains(UnveilPerm::READ) {
        a |= make_bitflags!(AccessFs::{ReadFile | ReadDir});
    }
    if perm.contains(UnveilPerm::WRITE) {
        a |= make_bitflags!(AccessFs::{WriteFile | Truncate | IoctlDev});
    }
    if perm.contains(UnveilPerm::EXEC) {
        a |= AccessFs::Execute;
    }
    if perm.contains(UnveilPerm::CREATE) {
        a |= make_bitflags!(AccessFs::{MakeChar | MakeDir | MakeReg | MakeSock | MakeFifo
            | MakeBlock | MakeSym | RemoveFile | RemoveDir | Refer});
    }
    a
}

/// What the task asks of Landlock.
pub(crate) struct Request<'a> {
    pub(crate) rules: &'a [UnveilRule],
    pub(crate) bind_ports: Option<&'a [u16]>,
    pub(crate) connect_ports: Option<&'a [u16]>,
}

/// A ready ruleset and what it will enforce.
pub(crate) struct Prepared {
    pub(crate) ruleset: Option<RulesetCreated>,
    pub(crate) status: EnforcementStatus,
    pub(crate) abi: u32,
    pub(crate) missing: Vec<String>,
    pub(crate) rules: usize,
    pub(crate) skipped: Vec<PathBuf>,
}

/// Features the request needs that ABI `abi` lacks.
pub(crate) fn missing_features(req: &Request<'_>, abi: u32) -> Vec<String> {
    let mut m = Vec::new();
    if abi == 0 {
        m.push("landlock (not available in this kernel)".to_string());
        return m;
    }
    let uses = |p: UnveilPerm| req.rules.iter().any(|r| r.perm.contains(p));
    if abi < 2 && uses(UnveilPerm::CREATE) {
        m.push("REFER (ABI 2): moving files between unveiled directories".into());
    }
    if abi < 3 {
        m.push("TRUNCATE (ABI 3)".into());
    }
    if abi < 4 && (req.bind_ports.is_some() || req.connect_ports.is_some()) {
        m.push("TCP bind_ports/connect_ports (ABI 4)".into());
    }
    if abi < 5 {
        m.push("IOCTL_DEV (ABI 5)".into());
    }
    if abi < 6 {
        m.push("signal and abstract unix socket scopes (ABI 6)".into());
    }
    m
}

/// What the task explicitly asked for that ABI `abi` cannot enforce at all.
pub(crate) fn unmet_requests(req: &Request<'_>, abi: u32) -> Vec<String> {
    let mut m = Vec::new();
    if abi == 0 {
        m.push("landlock (not available in this kernel)".to_string());
    } else if abi < 4 && (req.bind_ports.is_some() || req.connect_ports.is_some()) {
        m.push("TCP bind_ports/connect_ports (ABI 4)".into());
    }
    m
}

fn open_path(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the ruleset and adds every rule. Paths that do not exist, and paths that resolve to
/// something Landlock cannot hold a rule for (pipes and sockets behind /dev/stdin), are skipped
/// and listed.
pub(crate) fn prepare(req: &Request<'_>, best_effort: bool) -> Result<Prepared, SandboxError> {
    let abi = probe_abi();
    let missing = missing_features(req, abi);
    let status = if abi == 0 {
        EnforcementStatus::None
    } else if missing.is_empty() {
        EnforcementStatus::Full
    } else {
        EnforcementStatus::Partial
    };
    // Fail closed only on what the task itself asked for and the kernel cannot give: its
    // unveil rules at all (no Landlock), or port rules (ABI < 4). Refinements a newer ABI adds
    // (TRUNCATE, IOCTL_DEV, the scopes, REFER) degrade to `partial` and are reported, so a
    // stock Debian 12 kernel (ABI 2) still runs tasks, as issue 11 asks.
    let unmet = unmet_requests(req, abi);
    if !unmet.is_empty() && !best_effort {
        return Err(SandboxError::LandlockUnenforceable {
            abi,
            missing: unmet,
        });
    }
    if abi == 0 {
        return Ok(Prepared {
            ruleset: None,
            status,
            abi,
            missing,
            rules: 0,
            skipped: Vec::new(),
        });
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_TARGET))?
        .scope(Scope::from_all(ABI_TARGET))?;
    let mut net = BitFlags::<AccessNet>::EMPTY;
    if req.bind_ports.is_some() {
        net |= AccessNet::BindTcp;
    }
    if req.connect_ports.is_some() {
        net |= AccessNet::ConnectTcp;
    }
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net)?;
    }
    let mut created = ruleset.create()?;
    let mut skipped = Vec::new();
    let mut count = 0;
    for rule in req.rules {
        let file = match open_path(&rule.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skipped.push(rule.path.clone());
                continue;
            }
            Err(source) => {
                return Err(SandboxError::UnveilPath {
                    path: rule.path.clone(),
                    source,
                })
            }
        };
        let ft = file
            .metadata()
            .map_err(|source| SandboxError::UnveilPath {
                path: rule.path.clone(),
                source,
            })?
            .file_type();
        let mut access = access_for(rule.perm);
        if !ft.is_dir() {
            if !(ft.is_file() || ft.is_char_device() || ft.is_block_device()) {
                skipped.push(rule.path.clone());
                continue;
            }
            access &= AccessFs::from_file(ABI_TARGET);
        }
        if access.is_empty() {
            continue;
        }
        created = created.add_rule(PathBeneath::new(file, access))?;
        count += 1;
    }
    for (ports, right) in [
        (req.bind_ports, AccessNet::BindTcp),
        (req.connect_ports, AccessNet::ConnectTcp),
    ] {
        for port in ports.unwrap_or(&[]) {
            created = created.add_rule(NetPort::new(*port, right))?;
        }
    }
    Ok(Prepared {
        ruleset: Some(created),
        status,
        abi,
        missing,
        rules: count,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_map_to_rights() {
        assert_eq!(
            access_for(UnveilPerm::READ),
            AccessFs::ReadFile | AccessFs::ReadDir
        );
        let c = access_for(UnveilPerm::CREATE);
        assert!(c.contains(AccessFs::RemoveFile | AccessFs::RemoveDir | AccessFs::Refer));
        assert!(!c.contains(AccessFs::ReadFile));
        assert!(access_for(UnveilPerm::WRITE).contains(AccessFs::Truncate));
        assert!(!access_for(UnveilPerm::READ).contains(AccessFs::Refer));
    }

    #[test]
    fn missing_features_by_abi() {
        let rules = [UnveilRule {
            path: "/tmp".into(),
            perm: UnveilPerm::CREATE,
        }];
        let req = Request {
            rules: &rules,
            bind_ports: Some(&[8080]),
            connect_ports: None,
        };
        assert!(missing_features(&req, 7).is_empty());
        assert!(missing_features(&req, 6).is_empty());
        assert_eq!(missing_features(&req, 5).len(), 1);
        assert_eq!(missing_features(&req, 3).len(), 3);
        assert_eq!(missing_features(&req, 1).len(), 5);
        assert_eq!(missing_features(&req, 0).len(), 1);
    }

    #[test]
    fn only_explicit_asks_are_unmet() {
        let rules = [UnveilRule {
            path: "/tmp".into(),
            perm: UnveilPerm::READ | UnveilPerm::WRITE,
        }];
        let plain = Request {
            rules: &rules,
            bind_ports: None,
            connect_ports: None,
        };
        // ABI 2 lacks TRUNCATE, IOCTL_DEV and the scopes: partial, not a refusal.
        assert!(!missing_features(&plain, 2).is_empty());
        assert!(unmet_requests(&plain, 2).is_empty());
        assert_eq!(unmet_requests(&plain, 0).len(), 1);
        let ports = Request {
            connect_ports: Some(&[443]),
            ..plain
        };
        assert_eq!(unmet_requests(&ports, 3).len(), 1);
        assert!(unmet_requests(&ports, 4).is_empty());
    }
}
