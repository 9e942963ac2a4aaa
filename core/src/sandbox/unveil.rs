//! Unveil rules: `[perm:]path` with perm ⊆ {r, w, x, c}.
//!
//! ## The syntax, exactly
//! - `path` alone means `r:path` (pledge.com's default).
//! - Text before the **first** `:` is a permission prefix only if it is non-empty and made of
//!   the letters `r`, `w`, `x`, `c` alone (repeats allowed, lowercase only). Otherwise the whole
//!   string is the path: `/srv/a:b` is the path `/srv/a:b` with perm `r`.
//! - So a path that itself begins with perm-like text and contains `:` (the relative-looking
//!   `rw:/x` can only mean perm `rw`) is written with an explicit prefix: `r:/weird:path`.
//!   [`UnveilRule`]'s `Display` always writes the prefix, so its output always parses back.
//! - Paths must be absolute. `.` components and repeated or trailing slashes are normalized
//!   away; a `..` component is rejected (never resolved silently: with symlinks, `a/..` need not
//!   be the parent of `a`, and a silently rewritten rule is a rule the operator did not write).
//! - Rejected: empty, NUL bytes, relative paths, a rule of more than [`MAX_RULE_BYTES`] bytes,
//!   a (normalized) path of more than [`MAX_PATH_BYTES`]. The two limits differ by the longest
//!   prefix (`rwxc:`), so every rule's `Display` is itself within [`MAX_RULE_BYTES`].

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

/// Longest accepted path, in bytes: Linux `PATH_MAX` (4096) less the terminating NUL.
pub const MAX_PATH_BYTES: usize = 4095;

/// Longest accepted rule text, in bytes: the longest path with the longest canonical prefix.
pub const MAX_RULE_BYTES: usize = MAX_PATH_BYTES + "rwxc:".len();

impl UnveilPerm {
    /// Parses perm letters (`rwxc`, any order, repeats allowed). `None` unless every character
    /// is one of them and there is at least one.
    pub fn from_letters(s: &str) -> Option<Self> {
        if s.is_empty() {
            return None;
        }
        let mut perm = Self::empty();
        for c in s.chars() {
            perm |= match c {
                'r' => Self::READ,
                'w' => Self::WRITE,
                'x' => Self::EXEC,
                'c' => Self::CREATE,
                _ => return None,
            };
        }
        Some(perm)
    }
}

impl UnveilRule {
    /// A rule for an already absolute, normalized path (for built-in defaults).
    pub fn new(path: impl Into<PathBuf>, perm: UnveilPerm) -> Self {
        Self {
            path: path.into(),
            perm,
        }
    }

    /// Parses `[perm:]path` (see the module docs for the exact rule). The error says what is
    /// wrong and how to write it instead; the caller adds the field name.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(
                "must not be empty; write [perm:]/absolute/path, e.g. \"r:/etc/ssl\"".into(),
            );
        }
        if s.len() > MAX_RULE_BYTES {
            return Err(format!(
                "is {} bytes long; at most {MAX_RULE_BYTES} are allowed",
                s.len()
            ));
        }
        if s.contains('\0') {
            return Err("contains a NUL byte".into());
        }
        let (perm, path, explicit) = match s.split_once(':') {
            Some((prefix, rest)) => match UnveilPerm::from_letters(prefix) {
                Some(perm) => (perm, rest, true),
                None => (UnveilPerm::READ, s, false),
            },
            None => (UnveilPerm::READ, s, false),
        };
        if !path.starts_with('/') {
            return Err(if explicit || !s.contains(':') {
                format!(
                    "path {:?} is not absolute (unveil paths start with /)",
                    crate::error::shorten(path)
                )
            } else {
                "is not [perm:]/absolute/path: a permission prefix uses only the letters r, w, x, c (e.g. \"rw:/data\"), and paths must start with /".into()
            });
        }
        let mut normal = String::with_capacity(path.len());
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(format!(
                        "path {:?} has a \"..\" component; write the path without it",
                        crate::error::shorten(path)
                    ))
                }
                p => {
                    normal.push('/');
                    normal.push_str(p);
                }
            }
        }
        if normal.is_empty() {
            normal.push('/');
        }
        if normal.len() > MAX_PATH_BYTES {
            return Err(format!(
                "path is {} bytes long; at most {MAX_PATH_BYTES} are allowed",
                normal.len()
            ));
        }
        Ok(Self {
            path: PathBuf::from(normal),
            perm,
        })
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
