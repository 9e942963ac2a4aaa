//! Unveil rules: `[perm:]path` with perm ⊆ {r, w, x, c}.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

bitflags::bitflags! {
    /// Unveil permissions, as pledge.com's `-v` spells them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub struct UnveilPerm: u8 {
        /// `r`: read files, list directories.
        const READ = 1;
        /// `w`: write and truncate files.
        const WRITE = 2;
        /// `x`: execute files.
        const EXEC = 4;
        /// `c`: create and remove files, directories, links.
        const CREATE = 8;
    }
}

/// One unveil rule: an absolute, normalized path and its permissions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnveilRule {
    /// Absolute path without `.` or `..` components.
    pub path: PathBuf,
    /// Granted permissions.
    pub perm: UnveilPerm,
}

impl UnveilRule {
    /// Parses `[perm:]path`. See the README for how a path that itself contains `:` is written.
    pub fn parse(s: &str) -> Result<Self, String> {
        let _ = s;
        todo!("core helper")
    }

    /// The perm letters in canonical order `rwxc`.
    pub fn perm_letters(&self) -> String {
        let mut s = String::new();
        for (flag, c) in [
            (UnveilPerm::READ, 'r'),
            (UnveilPerm::WRITE, 'w'),
            (UnveilPerm::EXEC, 'x'),
            (UnveilPerm::CREATE, 'c'),
        ] {
            if self.perm.contains(flag) {
                s.push(c);
            }
        }
        s
    }
}

impl fmt::Display for UnveilRule {
    /// Renders in the form [`UnveilRule::parse`] accepts (`rw:/path`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.perm_letters(), self.path.display())
    }
}
