//! Reads what the loader needs from a program file: its `#!` interpreter or its ELF PT_INTERP.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How a program starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Static ELF (or static-pie): nothing else is loaded.
    Static,
    /// Dynamic ELF: the kernel maps this interpreter, which loads libraries.
    Dynamic(PathBuf),
    /// `#!` script: the kernel runs this interpreter with the script.
    Script(PathBuf),
    /// Something else (the kernel decides; e.g. binfmt_misc).
    Other,
}

const PT_INTERP: u32 = 3;

/// Classifies `path` by its first bytes and program headers.
pub(crate) fn classify(path: &Path) -> io::Result<Kind> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 64];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let mut line = Vec::with_capacity(256);
        f.seek(SeekFrom::Start(2))?;
        let mut buf = [0u8; 256];
        let n = read_up_to(&mut f, &mut buf)?;
        line.extend_from_slice(&buf[..n]);
        let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
        let text = String::from_utf8_lossy(&line[..end]);
        let interp = text.split_whitespace().next().unwrap_or("");
        return Ok(if interp.is_empty() {
            Kind::Other
        } else {
            Kind::Script(PathBuf::from(interp))
        });
    }
    // ELF64 little-endian only (x86_64, aarch64).
    if n < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Ok(Kind::Other);
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let phoff = u64::from_le_bytes(head[32..40].try_into().unwrap_or([0; 8]));
    let phentsize = u64::from(u16_at(54));
    let phnum = u64::from(u16_at(56));
    if phentsize < 56 || phnum > 4096 {
        return Ok(Kind::Other);
    }
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.seek(SeekFrom::Start(phoff + i * phentsize))?;
        f.read_exact(&mut ph)?;
        let p_type = u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]);
        if p_type != PT_INTERP {
            continue;
        }
        let off = u64::from_le_bytes(ph[8..16].try_into().unwrap_or([0; 8]));
        let size = u64::from_le_bytes(ph[32..40].try_into().unwrap_or([0; 8]));
        if size == 0 || size > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "PT_INTERP size out of range",
            ));
        }
        let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut buf)?;
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let s = String::from_utf8_lossy(&buf[..end]).into_owned();
        return Ok(Kind::Dynamic(PathBuf::from(s)));
    }
    Ok(Kind::Static)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_name_their_loader() {
        let k = classify(Path::new("/bin/sh")).expect("readable");
        match k {
            Kind::Dynamic(p) => assert!(p.to_string_lossy().contains("ld-"), "{p:?}"),
            other => panic!("/bin/sh is not dynamic here: {other:?}"),
        }
    }

    #[test]
    fn scripts_and_garbage() {
        let dir = std::env::temp_dir().join(format!("pledge-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let s = dir.join("s");
        std::fs::write(&s, "#!/usr/bin/python3 -u\nprint(1)\n").expect("write");
        assert_eq!(
            classify(&s).expect("ok"),
            Kind::Script(PathBuf::from("/usr/bin/python3"))
        );
        std::fs::write(&s, b"\x7fELF\x02\x01garbage").expect("write");
        assert_eq!(classify(&s).expect("ok"), Kind::Other);
        std::fs::write(&s, b"").expect("write");
        assert_eq!(classify(&s).expect("ok"), Kind::Other);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
