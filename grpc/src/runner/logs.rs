//! The runner's logmon: creates the task's stdout/stderr FIFOs (mode 0600, before StartTask, as
//! Nomad's logmon hook does), reads them until the last writer closes, streams the bytes to the
//! terminal and keeps the last few KiB of each for the failure hints.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How much of each stream is kept for hints.
const TAIL_BYTES: usize = 16 * 1024;
/// A line longer than this is written out before its newline arrives.
const PARTIAL_LINE_MAX: usize = 4096;

/// Why the FIFOs could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create log FIFO {path}: {source}")]
pub struct FifoError {
    /// The FIFO.
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// Which terminal stream a FIFO goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Readers of one task's FIFOs.
#[derive(Debug)]
pub struct LogPump {
    fifos: Vec<PathBuf>,
    done: mpsc::Receiver<()>,
    running: usize,
    stdout_tail: Arc<Mutex<Vec<u8>>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
}

/// Creates a FIFO with mode 0600 (an existing one is an error: the alloc dir is fresh).
pub fn mkfifo(path: &Path) -> Result<(), FifoError> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| {
        FifoError {
            path: path.display().to_string(),
            source: std::io::Error::from(e),
        }
    })
}

impl LogPump {
    /// Creates both FIFOs and starts reading them. `prefix` (e.g. `[web] `) is put before each
    /// line when several tasks share the terminal.
    pub fn start(stdout: &Path, stderr: &Path, prefix: Option<String>) -> Result<Self, FifoError> {
        mkfifo(stdout)?;
        mkfifo(stderr)?;
        let (tx, done) = mpsc::channel();
        let stdout_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        for (path, stream, tail) in [
            (stdout, Stream::Stdout, stdout_tail.clone()),
            (stderr, Stream::Stderr, stderr_tail.clone()),
        ] {
            let path = path.to_path_buf();
            let tx = tx.clone();
            let prefix = prefix.clone();
            std::thread::spawn(move || {
                pump(&path, stream, &tail, prefix.as_deref());
                let _ = tx.send(());
            });
        }
        Ok(Self {
            fifos: vec![stdout.to_path_buf(), stderr.to_path_buf()],
            done,
            running: 2,
            stdout_tail,
            stderr_tail,
        })
    }

    /// Waits up to `grace` for both readers to see end-of-file. A reader still waiting for a
    /// writer (the task never started) is released by a brief writer of our own.
    pub fn finish(&mut self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while self.running > 0 {
            for f in &self.fifos {
                // A non-blocking write-open succeeds only while a reader waits in open();
                // opening and closing it gives that reader its end-of-file. Repeated, because a
                // reader thread may not have reached its open() yet.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nix::libc::O_NONBLOCK)
                    .open(f);
            }
            match self.done.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => self.running -= 1,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if std::time::Instant::now() >= deadline => {
                    break
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// The last bytes the task wrote to stderr, as text.
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }

    /// The last bytes the task wrote to stdout, as text.
    pub fn stdout_tail(&self) -> String {
        tail_text(&self.stdout_tail)
    }
}

fn tail_text(t: &Mutex<Vec<u8>>) -> String {
    t.lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn pump(path: &Path, stream: Stream, tail: &Mutex<Vec<u8>>, prefix: Option<&str>) {
    // Blocks until the task (or finish()) opens the write end, as logmon's pending open does.
    let Ok(mut fifo) = std::fs::File::open(path) else {
        return;
    };
    let mut buf = [0u8; 8192];
    let mut at_line_start = true;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match fifo.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if let Ok(mut t) = tail.lock() {
            t.extend_from_slice(chunk);
            if t.len() > TAIL_BYTES {
                let cut = t.len() - TAIL_BYTES;
                t.drain(..cut);
            }
        }
        // Whole lines only, so the runner's own messages never split a line of the task's.
        pending.extend_from_slice(chunk);
        let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
            if pending.len() < PARTIAL_LINE_MAX {
                continue;
            }
            let whole = std::mem::take(&mut pending);
            emit(stream, &whole, prefix, &mut at_line_start);
            continue;
        };
        let rest = pending.split_off(end + 1);
        let whole = std::mem::replace(&mut pending, rest);
        emit(stream, &whole, prefix, &mut at_line_start);
    }
    if !pending.is_empty() {
        emit(stream, &pending, prefix, &mut at_line_start);
    }
}

/// Writes bytes of the task to the terminal stream.
fn emit(stream: Stream, bytes: &[u8], prefix: Option<&str>, at_line_start: &mut bool) {
    let out = match prefix {
        None => bytes.to_vec(),
        Some(p) => prefixed(bytes, p, at_line_start),
    };
    // The terminal going away must not stop the reader (the task would block on a full pipe),
    // so write errors are ignored.
    let _ = match stream {
        Stream::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(&out).and_then(|()| o.flush())
        }
        Stream::Stderr => {
            let mut o = std::io::stderr().lock();
            o.write_all(&out).and_then(|()| o.flush())
        }
    };
}

fn prefixed(chunk: &[u8], prefix: &str, at_line_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + prefix.len());
    for &b in chunk {
        if *at_line_start {
            out.extend_from_slice(prefix.as_bytes());
        }
        out.push(b);
        *at_line_start = b == b'\n';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fifos_until_the_writer_closes_and_keeps_the_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let out = dir.path().join(".t.stdout.fifo");
        let err = dir.path().join(".t.stderr.fifo");
        let mut pump = LogPump::start(&out, &err, None).expect("start");
        let mode = std::fs::metadata(&out).expect("fifo").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        {
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&err)
                .expect("open");
            w.write_all(b"cat: /etc/passwd: Permission denied\n")
                .expect("write");
        }
        // stdout never gets a writer: finish() must release that reader.
        pump.finish(Duration::from_secs(10));
        assert_eq!(pump.running, 0);
        assert_eq!(pump.stderr_tail(), "cat: /etc/passwd: Permission denied\n");
        assert_eq!(pump.stdout_tail(), "");
    }

    #[test]
    fn an_existing_fifo_path_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("f");
        mkfifo(&p).expect("first");
        let e = mkfifo(&p).expect_err("second");
        assert!(e.to_string().contains("cannot create log FIFO"), "{e}");
    }

    #[test]
    fn prefixes_each_line() {
        let mut start = true;
        let a = prefixed(b"one\ntw", "[t] ", &mut start);
        let b = prefixed(b"o\n", "[t] ", &mut start);
        assert_eq!(
            String::from_utf8(a).expect("utf8") + &String::from_utf8(b).expect("utf8"),
            "[t] one\n[t] two\n"
        );
    }
}
