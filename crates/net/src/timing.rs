//! Opt-in phase timings for the network path, for finding where a
//! container's start and stop spend their time.
//!
//! Off unless `BERTH_TRACE_TIMING` is set; then each [`Span`] reports its
//! phase's wall time when dropped, one line per phase:
//!
//! ```text
//! berth-timing pid=4242 net.attach.nft 3.412 ms
//! ```
//!
//! `BERTH_TRACE_TIMING=1` writes the lines to stderr (a monitor's stderr is
//! its `monitor.log`); a value starting with `/` appends them to that file
//! instead (it outlives `run --rm`, which deletes the monitor's log). When
//! off, a span costs one read of a once-initialised flag.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

/// Where timing lines go, read once from `BERTH_TRACE_TIMING`.
enum Sink {
    Off,
    Stderr,
    File(std::path::PathBuf),
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| match std::env::var_os("BERTH_TRACE_TIMING") {
        None => Sink::Off,
        Some(v) if v.is_empty() || v == "0" => Sink::Off,
        Some(v) if v.as_encoded_bytes().starts_with(b"/") => Sink::File(v.into()),
        Some(_) => Sink::Stderr,
    })
}

/// Whether timings are being reported.
pub fn enabled() -> bool {
    !matches!(sink(), Sink::Off)
}

/// One timed phase; reports its duration when dropped (if enabled).
#[must_use = "a span measures until it is dropped"]
pub struct Span {
    started: Option<(&'static str, Instant)>,
}

/// Starts timing `phase` (a dotted name such as `net.attach.nft`).
pub fn span(phase: &'static str) -> Span {
    Span {
        started: enabled().then(|| (phase, Instant::now())),
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((phase, t0)) = self.started {
            report(phase, t0.elapsed());
        }
    }
}

fn report(phase: &str, d: std::time::Duration) {
    let line = format!(
        "berth-timing pid={} {phase} {:.3} ms\n",
        std::process::id(),
        d.as_secs_f64() * 1e3
    );
    // Diagnostics only: a failed write is dropped rather than failing the
    // operation being timed.
    match sink() {
        Sink::Off => {}
        Sink::Stderr => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        Sink::File(p) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}
