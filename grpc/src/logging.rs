//! hclog-compatible JSON log lines (`@level`, `@message`, `@timestamp`, `@module`, plus every
//! event field), one per line, so Nomad's go-plugin host re-logs them at the right level
//! (protocol.md §1.7). Write errors are ignored: after an agent crash stderr has no reader.

use std::io::Write;
use std::sync::{Arc, Mutex};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// `2006-01-02T15:04:05.000000Z07:00` in Go's layout: exactly six fractional digits, UTC `Z`.
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The hclog module name of every line.
pub const MODULE: &str = "pledge";

/// Env var selecting the most verbose level logged (`trace`..`error`, default `debug`).
pub const LEVEL_ENV: &str = "NOMAD_PLEDGE_LOG_LEVEL";

/// A tracing layer writing hclog JSON lines to `W`.
pub struct HclogLayer<W> {
    out: Arc<Mutex<W>>,
}

impl<W: Write> HclogLayer<W> {
    /// A layer writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out: Arc::new(Mutex::new(out)),
        }
    }
}

/// hclog's level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// The `@timestamp` value for `at`.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_default()
}

/// Collects event fields into a JSON object; `message` becomes `@message`.
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.insert(field, serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, serde_json::Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(
            field,
            serde_json::Value::String(pledge_core::backend::error_chain(value)),
        );
    }
}

impl JsonFields {
    fn insert(&mut self, field: &Field, value: serde_json::Value) {
        let key = match field.name() {
            "message" => "@message".to_owned(),
            // hclog reserves the @ keys; never let a field overwrite them.
            n if n.starts_with('@') => format!("field{n}"),
            n => n.to_owned(),
        };
        self.0.insert(key, value);
    }
}

/// One log line for an event at `level` from `target`, with `fields` already collected.
pub fn render_line(
    level: &Level,
    target: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
    at: time::OffsetDateTime,
) -> String {
    let module = match target.split("::").nth(1) {
        Some(sub) => format!("{MODULE}.{sub}"),
        None => MODULE.to_owned(),
    };
    fields.insert("@level".into(), level_name(level).into());
    fields.insert("@module".into(), module.into());
    fields.insert("@timestamp".into(), timestamp(at).into());
    fields
        .entry("@message")
        .or_insert_with(|| serde_json::Value::String(String::new()));
    let mut line = serde_json::Value::Object(fields).to_string();
    line.push('\n');
    line
}

impl<S: Subscriber, W: Write + 'static> Layer<S> for HclogLayer<W> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let meta = event.metadata();
        let line = render_line(
            meta.level(),
            meta.target(),
            fields.0,
            time::OffsetDateTime::now_utc(),
        );
        if let Ok(mut out) = self.out.lock() {
            // One write per line so concurrent lines never interleave; errors (EPIPE) ignored.
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// The level from [`LEVEL_ENV`], default debug.
pub fn level_from_env() -> tracing_subscriber::filter::LevelFilter {
    std::env::var(LEVEL_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::DEBUG)
}

/// Installs the hclog layer writing to `out` as the global subscriber, and a panic hook that
/// logs panics as error lines (stderr itself may be /dev/null by then). Idempotent: a second
/// call leaves the first subscriber in place.
pub fn install<W: Write + Send + 'static>(out: W) {
    let subscriber =
        tracing_subscriber::registry().with(HclogLayer::new(out).with_filter(level_from_env()));
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            tracing::error!(panic = %info, "plugin panicked");
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_six_fraction_digits_and_utc_z() {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(1_714_564_800_123_456_789)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(timestamp(at), "2024-05-01T12:00:00.123456Z");
    }

    #[test]
    fn line_has_hclog_keys_and_fields() {
        let mut fields = serde_json::Map::new();
        fields.insert("@message".into(), "starting task".into());
        fields.insert("task_id".into(), "a/b/c".into());
        let line = render_line(
            &Level::WARN,
            "pledge_grpc::shell",
            fields,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap_or_default();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "starting task");
        assert_eq!(v["@module"], "pledge.shell");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["task_id"], "a/b/c");
    }

    #[test]
    fn layer_writes_one_json_line_per_event() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map(|mut v| v.extend_from_slice(b)).ok();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sub = tracing_subscriber::registry().with(HclogLayer::new(buf.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::info!(pid = 42_u64, "hello");
            tracing::error!("bad");
        });
        let text = String::from_utf8(buf.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["@level"], "info");
        assert_eq!(lines[0]["@message"], "hello");
        assert_eq!(lines[0]["pid"], 42);
        assert_eq!(lines[1]["@level"], "error");
    }
}
