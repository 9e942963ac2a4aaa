//! pledge promises and normalized sets of them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One pledge promise. The declaration order is the canonical display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Promise {
    Stdio,
    Rpath,
    Wpath,
    Cpath,
    Dpath,
    Flock,
    Fattr,
    Chown,
    Inet,
    Anet,
    Unix,
    Dns,
    Tty,
    Recvfd,
    Sendfd,
    Proc,
    Exec,
    Id,
    Thread,
    ProtExec,
    Vminfo,
    Tmppath,
    Settime,
    Unveil,
}

impl Promise {
    /// Every promise, in canonical order.
    pub const ALL: [Self; 24] = [
        Self::Stdio,
        Self::Rpath,
        Self::Wpath,
        Self::Cpath,
        Self::Dpath,
        Self::Flock,
        Self::Fattr,
        Self::Chown,
        Self::Inet,
        Self::Anet,
        Self::Unix,
        Self::Dns,
        Self::Tty,
        Self::Recvfd,
        Self::Sendfd,
        Self::Proc,
        Self::Exec,
        Self::Id,
        Self::Thread,
        Self::ProtExec,
        Self::Vminfo,
        Self::Tmppath,
        Self::Settime,
        Self::Unveil,
    ];

    /// The promise's name as pledge spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Rpath => "rpath",
            Self::Wpath => "wpath",
            Self::Cpath => "cpath",
            Self::Dpath => "dpath",
            Self::Flock => "flock",
            Self::Fattr => "fattr",
            Self::Chown => "chown",
            Self::Inet => "inet",
            Self::Anet => "anet",
            Self::Unix => "unix",
            Self::Dns => "dns",
            Self::Tty => "tty",
            Self::Recvfd => "recvfd",
            Self::Sendfd => "sendfd",
            Self::Proc => "proc",
            Self::Exec => "exec",
            Self::Id => "id",
            Self::Thread => "thread",
            Self::ProtExec => "prot_exec",
            Self::Vminfo => "vminfo",
            Self::Tmppath => "tmppath",
            Self::Settime => "settime",
            Self::Unveil => "unveil",
        }
    }

    /// Looks a promise up by name (exact, lowercase).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A normalized set of promises: case, whitespace and duplicates folded; displayed in canonical
/// order, space-separated, so argv, logs and BPF snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PromiseSet(BTreeSet<Promise>);

impl PromiseSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses promise names separated by any whitespace or commas. Case is folded and
    /// duplicates collapse. Every unknown word is reported in one error (field `promises`):
    /// `unknown promise "inett" (known: stdio rpath ...)`.
    ///
    /// An empty or blank string parses to the empty set. [`crate::RawTaskConfig::validate`]
    /// turns an unset or blank `promises` into [`PromiseSet::default_cli`] instead, as pledge.com
    /// and the original driver do.
    pub fn parse(s: &str) -> Result<Self, crate::error::ConfigError> {
        let mut set = BTreeSet::new();
        // Distinct unknown words, in order of appearance. A set, not a Vec scan: a 1 MB config
        // can hold 100k distinct words, and a quadratic scan stalled validation for minutes.
        let mut unknown: BTreeSet<&str> = BTreeSet::new();
        let mut first_unknown: Vec<&str> = Vec::new();
        const SHOWN: usize = 8;
        for word in s.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            let lower = word.to_lowercase();
            match Promise::from_name(&lower) {
                Some(p) => {
                    set.insert(p);
                }
                None => {
                    if unknown.insert(word) && first_unknown.len() < SHOWN {
                        first_unknown.push(word);
                    }
                }
            }
        }
        if unknown.is_empty() {
            return Ok(Self(set));
        }
        let mut list: Vec<String> = first_unknown
            .iter()
            .map(|w| format!("{:?}", crate::error::shorten(w)))
            .collect();
        if unknown.len() > SHOWN {
            list.push(format!("and {} more", unknown.len() - SHOWN));
        }
        let known: Vec<&str> = Promise::ALL.iter().map(|p| p.name()).collect();
        Err(crate::error::ConfigError {
            field: "promises".to_string(),
            value: Some(crate::error::shorten(s)),
            reason: format!(
                "unknown promise{} {} (known: {})",
                if unknown.len() == 1 { "" } else { "s" },
                list.join(" "),
                known.join(" ")
            ),
        })
    }

    /// The promises pledge.com applies when `-p` is not given: `stdio rpath`.
    pub fn default_cli() -> Self {
        [Promise::Stdio, Promise::Rpath].into_iter().collect()
    }

    /// Whether `p` is in the set.
    pub fn contains(&self, p: Promise) -> bool {
        self.0.contains(&p)
    }

    /// Adds `p`.
    pub fn insert(&mut self, p: Promise) {
        self.0.insert(p);
    }

    /// Iterates in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Promise> + '_ {
        self.0.iter().copied()
    }

    /// Number of promises.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Promise> for PromiseSet {
    fn from_iter<I: IntoIterator<Item = Promise>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for PromiseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}
