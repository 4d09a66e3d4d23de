//! Logging: nothing unless asked; `--log FILE` writes runc-style records
//! (`--log-format json`: `{"level":..,"msg":..,"time":..}`, the form
//! conmon and podman read), `--debug` raises the level.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Log record format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `time="..." level=error msg="..."`
    Text,
    /// One JSON object per line.
    Json,
}

struct RuncLayer<W> {
    out: Mutex<W>,
    format: Format,
    max: Level,
}

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber, W: std::io::Write + 'static> Layer<S> for RuncLayer<W> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        let lvl = match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = berth_runtime::state::now_rfc3339();
        let line = match self.format {
            Format::Json => serde_json::json!({"level": lvl, "msg": m.0, "time": time}).to_string(),
            Format::Text => format!("time={time:?} level={lvl} msg={:?}", m.0),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Installs the subscriber: to `log` if given, else to stderr; at debug
/// level with `debug`, else warnings and errors only to a file, nothing to
/// stderr (the runtime's stderr is often the container's).
pub fn init(log: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let max = if debug { Level::DEBUG } else { Level::WARN };
    match log {
        Some(path) => {
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            let layer = RuncLayer {
                out: Mutex::new(f),
                format,
                max,
            };
            let _ =
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        }
        None if debug => {
            let layer = RuncLayer {
                out: Mutex::new(std::io::stderr()),
                format,
                max,
            };
            let _ =
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        }
        None => {}
    }
    Ok(())
}
