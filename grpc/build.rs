//! Compiles grpc/proto/**/*.proto with protox (pure Rust, no system protoc) and generates prost
//! messages plus tonic servers and clients for every service.

use std::path::{Path, PathBuf};

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    collect_protos(Path::new(PROTO_ROOT), &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    link_unwinder_statically()?;
    let fds = protox::compile(&files, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

// The binary stays PIE on purpose. Linking it -no-pie saved ~0.23 ms per launch (ld.so's
// ~18k relative relocations), but it runs as root and parses operator input: keeping its own
// code address-randomized is worth more than that (see the issue 4 closing note).

/// Links libgcc's unwinder statically (libgcc_eh.a) instead of loading libgcc_s.so.1 at every
/// exec: std asks for `-lgcc_s`, so a linker script of that name in our own search path (found
/// before the system's) redirects it. Saves an object load and libgcc_s's constructor, which
/// runs `cpuid` (a VM exit on virtual machines). Unwinding (catch_unwind in the runner's HCL
/// panic guard, backtraces) works the same with the static unwinder.
fn link_unwinder_statically() -> std::io::Result<()> {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return Ok(());
    };
    if os != "linux" || env != "gnu" {
        return Ok(());
    }
    let dir = PathBuf::from(out).join("static-unwinder");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")?;
    println!("cargo:rustc-link-search=native={}", dir.display());
    Ok(())
}
