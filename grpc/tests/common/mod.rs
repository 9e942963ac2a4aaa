//! Test support: a cty-msgpack encoder following go-cty's rules (protocol.md §3.3: objects as
//! maps with every schema key present and keys sorted, null as nil, whole numbers as the
//! smallest int, dyadic fractions as float64, other numbers as decimal strings), and a tonic
//! channel over a unix socket.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A cty value.
#[derive(Clone, Debug)]
pub enum Cty {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A number go-cty sends as a string (e.g. 0.1).
    NumberText(String),
    Str(String),
    List(Vec<Cty>),
    /// An object: encoded with keys sorted.
    Object(BTreeMap<String, Cty>),
}

impl Cty {
    pub fn str(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
    pub fn strs(v: &[&str]) -> Self {
        Self::List(v.iter().map(|s| Self::str(s)).collect())
    }
}

/// Encodes `v` as go-cty's msgpack.Marshal would.
pub fn encode(v: &Cty) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, v);
    out
}

fn write(out: &mut Vec<u8>, v: &Cty) {
    match v {
        Cty::Null => rmp::encode::write_nil(out).unwrap_or(()),
        Cty::Bool(b) => rmp::encode::write_bool(out, *b).unwrap_or(()),
        Cty::Int(i) => {
            if *i >= 0 {
                rmp::encode::write_uint(out, i.unsigned_abs())
                    .map(|_| ())
                    .unwrap_or(())
            } else {
                rmp::encode::write_sint(out, *i).map(|_| ()).unwrap_or(())
            }
        }
        Cty::Float(f) => rmp::encode::write_f64(out, *f).unwrap_or(()),
        Cty::NumberText(s) | Cty::Str(s) => rmp::encode::write_str(out, s).unwrap_or(()),
        Cty::List(items) => {
            let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
            rmp::encode::write_array_len(out, n)
                .map(|_| ())
                .unwrap_or(());
            for i in items {
                write(out, i);
            }
        }
        Cty::Object(m) => {
            let n = u32::try_from(m.len()).unwrap_or(u32::MAX);
            rmp::encode::write_map_len(out, n).map(|_| ()).unwrap_or(());
            for (k, val) in m {
                rmp::encode::write_str(out, k).unwrap_or(());
                write(out, val);
            }
        }
    }
}

/// An object with every key of `schema_keys` present (null unless given in `set`), as
/// hcldec produces it for an Object spec.
pub fn object(schema_keys: &[&str], set: &[(&str, Cty)]) -> Cty {
    let mut m: BTreeMap<String, Cty> = schema_keys
        .iter()
        .map(|k| ((*k).to_owned(), Cty::Null))
        .collect();
    for (k, v) in set {
        m.insert((*k).to_owned(), v.clone());
    }
    Cty::Object(m)
}

/// The task-config schema keys the plugin advertises.
pub fn task_keys() -> Vec<&'static str> {
    pledge_grpc::schema::TASK_ATTRS
        .iter()
        .map(|a| a.0)
        .collect()
}

/// The plugin-config schema keys the plugin advertises.
pub fn plugin_keys() -> Vec<&'static str> {
    pledge_grpc::schema::PLUGIN_ATTRS
        .iter()
        .map(|a| a.0)
        .collect()
}

/// A tonic channel to a unix socket.
pub async fn connect(path: PathBuf) -> tonic::transport::Channel {
    let endpoint = match tonic::transport::Endpoint::try_from("http://unused") {
        Ok(e) => e,
        Err(e) => panic!("endpoint: {e}"),
    };
    let r = endpoint
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await;
    match r {
        Ok(c) => c,
        Err(e) => panic!("connect: {e}"),
    }
}

/// A Driver client, as both test files hold one.
pub type Driver = pledge_grpc::pb::drivers::driver_client::DriverClient<tonic::transport::Channel>;

/// Opens TaskStats for `id` at `interval_ms`, as Nomad's client does for the UI.
pub async fn open_stats(
    d: &mut Driver,
    id: &str,
    interval_ms: u32,
) -> tonic::Streaming<pledge_grpc::pb::drivers::TaskStatsResponse> {
    let req = pledge_grpc::pb::drivers::TaskStatsRequest {
        task_id: id.into(),
        collection_interval: Some(prost_types::Duration {
            seconds: 0,
            nanos: i32::try_from(interval_ms % 1000 * 1_000_000).unwrap_or(0),
        }),
    };
    match d.task_stats(req).await {
        Ok(s) => s.into_inner(),
        Err(e) => panic!("TaskStats {id}: {e}"),
    }
}

/// RecoverTask with a stored handle, as Nomad's client sends it after an agent restart: the
/// handle's config no longer carries the driver config.
pub async fn recover(d: &mut Driver, handle: &pledge_grpc::pb::drivers::TaskHandle) {
    let mut stored = handle.clone();
    if let Some(c) = stored.config.as_mut() {
        c.msgpack_driver_config.clear();
    }
    let r = d
        .recover_task(pledge_grpc::pb::drivers::RecoverTaskRequest {
            task_id: String::new(),
            handle: Some(stored),
        })
        .await;
    assert!(r.is_ok(), "RecoverTask: {r:?}");
}

/// StopTask with SIGTERM and a 5 s grace, then WaitTask: the signal the task ended with.
pub async fn stop_and_wait(d: &mut Driver, id: &str) -> Option<i32> {
    use pledge_grpc::pb::drivers as pb;
    let stop = d
        .stop_task(pb::StopTaskRequest {
            task_id: id.into(),
            timeout: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            signal: "SIGTERM".into(),
        })
        .await;
    assert!(stop.is_ok(), "StopTask {id}: {stop:?}");
    d.wait_task(pb::WaitTaskRequest { task_id: id.into() })
        .await
        .ok()
        .and_then(|r| r.into_inner().result.map(|e| e.signal))
}

/// A stdin frame of ExecTaskStreaming.
pub fn stdin_frame(data: &[u8], close: bool) -> pledge_grpc::pb::drivers::ExecTaskStreamingRequest {
    pledge_grpc::pb::drivers::ExecTaskStreamingRequest {
        stdin: Some(pledge_grpc::pb::drivers::ExecTaskStreamingIoOperation {
            data: data.to_vec(),
            close,
        }),
        ..Default::default()
    }
}

/// ExecTaskStreaming as `nomad alloc exec` drives it: the setup frame, then `frames` in order;
/// collects stdout until the server ends the stream. Returns (stdout, the last frame).
pub async fn exec_stream(
    d: &mut Driver,
    id: &str,
    command: &[&str],
    tty: bool,
    frames: Vec<pledge_grpc::pb::drivers::ExecTaskStreamingRequest>,
) -> (Vec<u8>, pledge_grpc::pb::drivers::ExecTaskStreamingResponse) {
    use pledge_grpc::pb::drivers as pb;
    let (tx, rx) = tokio::sync::mpsc::channel(frames.len() + 1);
    let setup = pb::ExecTaskStreamingRequest {
        setup: Some(pb::exec_task_streaming_request::Setup {
            task_id: id.into(),
            command: command.iter().map(|c| c.to_string()).collect(),
            tty,
        }),
        ..Default::default()
    };
    for f in std::iter::once(setup).chain(frames) {
        let _ = tx.send(f).await;
    }
    let mut stream = match d
        .exec_task_streaming(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) => panic!("ExecTaskStreaming: {e}"),
    };
    let (mut out, mut last) = (Vec::new(), None);
    while let Ok(Some(m)) = stream.message().await {
        if let Some(o) = &m.stdout {
            out.extend_from_slice(&o.data);
        }
        last = Some(m);
    }
    // The request side stays open until the server is done, as Nomad's does.
    drop(tx);
    (out, last.unwrap_or_default())
}

#[test]
fn encoder_matches_protocol_md_worked_example() {
    // raw_exec's schema with command and args set (protocol.md §3.4).
    let keys = [
        "command",
        "args",
        "cgroup_v2_override",
        "cgroup_v1_override",
        "oom_score_adj",
        "work_dir",
    ];
    let v = object(
        &keys,
        &[
            ("command", Cty::str("/bin/sleep")),
            ("args", Cty::strs(&["10"])),
        ],
    );
    let b = encode(&v);
    assert_eq!(&b[..6], &[0x86, 0xa4, b'a', b'r', b'g', b's']);
    assert_eq!(&b[6..10], &[0x91, 0xa2, b'1', b'0']);
    assert_eq!(encode(&Cty::Int(200)), vec![0xcc, 0xc8]);
    assert_eq!(encode(&Cty::Int(300)), vec![0xcd, 0x01, 0x2c]);
    assert_eq!(encode(&Cty::Int(-100)), vec![0xd0, 0x9c]);
    assert_eq!(encode(&Cty::Int(-1)), vec![0xff]);
    assert_eq!(
        encode(&Cty::NumberText("0.1".into())),
        vec![0xa3, b'0', b'.', b'1']
    );
}
