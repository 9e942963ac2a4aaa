//! BPF program length per promise set, from the same compiler the sandbox loads.

use crate::report::Table;
use pledge_backend_linux::sandbox::{compile_filter, FilterArch, FilterOptions, Penalty};
use pledge_core::{Promise, PromiseSet};

/// The sets the README talks about, plus `stdio` + each single promise.
pub fn sets() -> Vec<(String, PromiseSet)> {
    let parse = |s: &str| PromiseSet::parse(s).unwrap_or_default();
    let mut out: Vec<(String, PromiseSet)> = [
        "stdio",
        "stdio rpath",
        "stdio rpath inet",
        "stdio rpath inet dns sendfd",
        "stdio rpath wpath cpath inet dns proc exec",
    ]
    .into_iter()
    .map(|s| (s.to_string(), parse(s)))
    .collect();
    let all: PromiseSet = Promise::ALL.into_iter().collect();
    out.push((format!("all {} promises", all.len()), all));
    out
}

/// Options as the sandbox compiles them (EPERM penalty, an exec-path pointer when the set
/// lacks `exec`).
pub fn options() -> FilterOptions {
    FilterOptions {
        arch: FilterArch::native(),
        penalty: Penalty::Eperm,
        pid: 4242,
        exec_path_ptr: Some(0x7fff_0000_1000),
    }
}

/// Instruction counts per set; compile failures are shown in the table.
pub fn table() -> Table {
    let opts = options();
    let mut t = Table::new(&["promise set", "BPF instructions"]);
    for (name, set) in sets() {
        let n = compile_filter(&set, &opts)
            .map(|f| f.instructions().to_string())
            .unwrap_or_else(|e| format!("error: {e}"));
        t.row(vec![name, n]);
    }
    let singles: Vec<String> = Promise::ALL[1..]
        .iter()
        .map(|p| {
            let set: PromiseSet = [Promise::Stdio, *p].into_iter().collect();
            let n = compile_filter(&set, &opts).map_or(0, |f| f.instructions());
            format!("{p} {n}")
        })
        .collect();
    t.row(vec!["stdio + one of".into(), singles.join(", ")]);
    t
}
