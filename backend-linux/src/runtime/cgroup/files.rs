//! Reading and writing single cgroup interface files, for the few files cgroups-rs has no API
//! for (cgroup.kill, cpu.weight.nice, memory.events, cgroup.events) and for flat-keyed stats.

use crate::runtime::error::CgroupError;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes `value` to an existing interface file (no create: cgroupfs files exist or the
/// controller is not enabled, and that must be an error, not a new regular file).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Io {
            op: format!("writing {value:?} to"),
            path: path.to_path_buf(),
            source,
        })
}

/// Parses `key value` lines (cpu.stat, memory.stat, memory.events, ...). Lines that do not
/// have an unsigned integer value are skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_ascii_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Reads and parses a flat-keyed file; empty when it cannot be read.
pub fn read_keyed(path: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default()
}

/// Reads a file holding one unsigned integer.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Pids listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}
