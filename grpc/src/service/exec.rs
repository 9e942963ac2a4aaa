//! Running a command inside a task's sandbox (ExecTask, ExecTaskStreaming). The core decides
//! *what* to run (an [`ExecPlan`]); an [`ExecRunner`] supplied by the binary starts it as an
//! [`ExecSession`]; this module pumps its stdio to and from gRPC. Without a runner the exec
//! RPCs answer Unimplemented.

use crate::pb::drivers as pb;
use pledge_core::ExecPlan;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Status;

/// Read buffer per stdio pipe.
const CHUNK: usize = 32 * 1024;

/// The stdio of a started command. Pipes without a tty; only `pty` with one.
#[derive(Debug, Default)]
pub struct ExecIo {
    /// Write end of its stdin.
    pub stdin: Option<File>,
    /// Read end of its stdout.
    pub stdout: Option<File>,
    /// Read end of its stderr.
    pub stderr: Option<File>,
    /// The pty master: output is read from it, input written to it.
    pub pty: Option<File>,
}

/// How an exec'd command ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecExit {
    /// Exit code (0 when killed by a signal).
    pub exit_code: i32,
    /// Terminating signal, 0 if none.
    pub signal: i32,
}

/// A started command. Shared between the stdio pumps and the RPC, hence `&self` everywhere.
pub trait ExecSession: Send + Sync {
    /// Takes the stdio ends (once).
    fn take_io(&self) -> ExecIo;
    /// Sets the tty size (error without a tty).
    fn resize(&self, rows: u16, cols: u16) -> Result<(), String>;
    /// Kills the command.
    fn kill(&self);
    /// Waits for it to exit (call after its output reached EOF).
    fn wait(&self) -> ExecExit;
}

/// Starts exec plans. Implemented over the Linux runtime by the binary.
pub trait ExecRunner: Send + Sync + 'static {
    /// Starts `plan` (inside its task's namespaces, cgroup and sandbox).
    fn start(&self, plan: &ExecPlan) -> Result<Arc<dyn ExecSession>, String>;
}

/// What a finished non-interactive exec produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub exit: ExecExit,
}

fn read_all(f: Option<File>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut f) = f {
            let _ = f.read_to_end(&mut v);
        }
        v
    })
}

/// ExecTask: runs the session to completion without stdin, collecting its output; kills it
/// once `timeout` (if non-zero) has passed. Blocking: call from a blocking thread.
pub fn collect(session: &Arc<dyn ExecSession>, timeout: Duration) -> ExecOutput {
    let io = session.take_io();
    drop(io.stdin);
    let out = read_all(io.stdout.or(io.pty));
    let err = read_all(io.stderr);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    if !timeout.is_zero() {
        let s = session.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                s.kill();
            }
        });
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let exit = session.wait();
    let _ = done_tx.send(());
    ExecOutput {
        stdout,
        stderr,
        exit,
    }
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy)]
enum Channel {
    Stdout,
    Stderr,
}

fn frame(ch: Channel, data: Vec<u8>, close: bool) -> pb::ExecTaskStreamingResponse {
    let op = Some(pb::ExecTaskStreamingIoOperation { data, close });
    match ch {
        Channel::Stdout => pb::ExecTaskStreamingResponse {
            stdout: op,
            ..Default::default()
        },
        Channel::Stderr => pb::ExecTaskStreamingResponse {
            stderr: op,
            ..Default::default()
        },
    }
}

type Frames = mpsc::Sender<Result<pb::ExecTaskStreamingResponse, Status>>;

/// Copies `f` into frames until EOF (or EIO on a pty whose slave closed), then a close frame.
fn pump_out(
    f: Option<File>,
    ch: Channel,
    tx: Frames,
    session: Arc<dyn ExecSession>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(mut f) = f else { return };
        let mut buf = vec![0u8; CHUNK];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(frame(ch, buf[..n].to_vec(), false)))
                        .is_err()
                    {
                        // Nomad went away: nobody will read the output; stop the command.
                        session.kill();
                        return;
                    }
                }
            }
        }
        let _ = tx.blocking_send(Ok(frame(ch, Vec::new(), true)));
    })
}

/// ExecTaskStreaming after setup: pumps `inbound` (stdin, tty sizes, heartbeats) into the
/// session and its output into `tx`, then sends the final `exited` + `result` frame.
pub fn stream(
    session: Arc<dyn ExecSession>,
    mut inbound: tonic::Streaming<pb::ExecTaskStreamingRequest>,
    tx: Frames,
) {
    let io = session.take_io();
    let input = match (&io.pty, io.stdin) {
        (Some(p), _) => p.try_clone().ok(),
        (None, s) => s,
    };
    let outs = [
        pump_out(
            io.pty.or(io.stdout),
            Channel::Stdout,
            tx.clone(),
            session.clone(),
        ),
        pump_out(io.stderr, Channel::Stderr, tx.clone(), session.clone()),
    ];
    // stdin: a std thread writes what the async reader hands it, so a slow command never
    // blocks the runtime.
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let Some(mut w) = input else { return };
        while let Ok(data) = in_rx.recv() {
            if w.write_all(&data).is_err() {
                return;
            }
        }
    });
    let resize_session = session.clone();
    tokio::spawn(async move {
        let mut in_tx = Some(in_tx);
        loop {
            let msg = match inbound.message().await {
                Ok(Some(m)) => m,
                // Nomad never half-closes; the stream ending is fine, the command runs on.
                Ok(None) => break,
                // The caller went away (cancelled): nobody can see the command any more.
                Err(_) => {
                    resize_session.kill();
                    break;
                }
            };
            if let Some(size) = msg.tty_size {
                let rows = u16::try_from(size.height).unwrap_or(0);
                let cols = u16::try_from(size.width).unwrap_or(0);
                if let Err(e) = resize_session.resize(rows, cols) {
                    tracing::debug!(error = %e, "ignoring tty resize");
                }
            }
            if let Some(op) = msg.stdin {
                if let Some(t) = &in_tx {
                    if !op.data.is_empty() && t.send(op.data).is_err() {
                        in_tx = None;
                    }
                }
                if op.close {
                    in_tx = None; // EOF on the command's stdin
                }
            }
        }
    });
    std::thread::spawn(move || {
        for o in outs {
            let _ = o.join();
        }
        let exit = session.wait();
        let _ = tx.blocking_send(Ok(pb::ExecTaskStreamingResponse {
            exited: true,
            result: Some(pb::ExitResult {
                exit_code: exit.exit_code,
                signal: exit.signal,
                oom_killed: false,
            }),
            ..Default::default()
        }));
    });
}
