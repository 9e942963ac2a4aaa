//! The core must stay IO-free: no crate that does IO may be among its normal dependencies.
//! Runs `cargo tree -p pledge-core -e normal` and fails if one appears (issue 2).

use std::process::Command;

/// Crates that do IO or syscalls; none of them may reach pledge-core.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "nix",
    "libc",
    "tonic",
    "cgroups-rs",
    "mio",
    "socket2",
];

fn cargo_tree(offline: bool) -> std::io::Result<std::process::Output> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "tree",
        "-p",
        "pledge-core",
        "-e",
        "normal",
        "--prefix",
        "none",
    ])
    .args(["--format", "{p}", "--manifest-path", manifest]);
    if offline {
        cmd.arg("--offline");
    }
    cmd.output()
}

#[test]
fn core_has_no_io_dependencies() {
    // Offline first (every dependency is already built); online only if the index needs it.
    let out = match cargo_tree(true) {
        Ok(o) if o.status.success() => o,
        _ => cargo_tree(false).expect("running cargo tree"),
    };
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"pledge-core"), "unexpected output: {tree}");
    assert!(
        names.contains(&"thiserror"),
        "the tree lists dependencies: {tree}"
    );
    let bad: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(f)).collect();
    assert!(
        bad.is_empty(),
        "IO crates in pledge-core's tree: {bad:?}\n{tree}"
    );
}
