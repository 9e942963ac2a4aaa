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
    link_binary_without_pie();
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

/// Links the plugin binary as a fixed-address executable (`-no-pie`) on Linux/glibc: a PIE
/// binary this size carries ~18k relative relocations, which ld.so applies at every exec by
/// writing (copy-on-write faulting) ~80 pages of .data.rel.ro and .got, and exec then tears
/// them down again. Every task launch (`sandbox`) and supervisor pays that; without PIE it is
/// -0.23 ms CPU per launch here (issue 4's launch goal). The objects stay PIC, so only the
/// final link changes; the cost is that the binary's own code is not address-randomized
/// (shared libraries, heap and stack still are).
fn link_binary_without_pie() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
