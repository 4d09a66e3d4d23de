//! The Prometheus text exposition format (version 0.0.4), written in one
//! place for every berth endpoint that serves it (the API server's
//! `/metrics`, the kubelet API's `/metrics`, `/metrics/cadvisor` and
//! `/metrics/resource`), and read back by [`parse`] (tests, and the API
//! server reading a kubelet's resource metrics).
//!
//! A [`Text`] writes families: a `# HELP` and `# TYPE` line, then samples.
//! A [`Histogram`] keeps cumulative bucket counts as Prometheus expects
//! them. A [`Source`] is anything that writes families into a [`Text`]:
//! the API server renders the sources it was given (the scheduler's and
//! the controllers' series) after its own.

use std::fmt::Write;

/// The `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (a `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in cumulative buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Something that writes metric families (a component's registry).
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Writes its families into `text`.
    fn render(&self, text: &mut Text);
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

impl Text {
    /// An empty exposition.
    pub fn new() -> Text {
        Text::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// Writes one sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.sample_at(name, labels, v, None);
    }

    /// Writes one sample with a timestamp (milliseconds since the epoch).
    pub fn sample_at(&mut self, name: &str, labels: &[(&str, &str)], v: f64, at: Option<u128>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = write!(self.out, " {}", value(v));
        if let Some(at) = at {
            let _ = write!(self.out, " {at}");
        }
        self.out.push('\n');
    }

    /// Writes a histogram's series (`_bucket` per bound and `+Inf`, `_sum`,
    /// `_count`) under the family `name`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = value(*bound);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// Writes every family of `source`.
    pub fn source(&mut self, source: &dyn Source) {
        source.render(self);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Observations counted into buckets (upper bounds, ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative; above the last bound: none).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending upper bounds).
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum.
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// `count` bounds from `start`, each `factor` times the previous (as
/// client_golang's `ExponentialBuckets`).
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(count);
    let mut b = start;
    for _ in 0..count {
        out.push(b);
        b *= factor;
    }
    out
}

/// One sample read back from an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`x_bucket` for a histogram's bucket).
    pub name: String,
    /// The labels, in order.
    pub labels: Labels,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an exposition line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {problem}")]
pub struct ParseError {
    /// The line number (1-based).
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads the samples of a text exposition (comments and blank lines skipped).
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |problem: &str| ParseError {
            line: i + 1,
            problem: problem.to_owned(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| fail("no value"))?;
        let (name, mut rest) = line.split_at(name_end);
        if name.is_empty() {
            return Err(fail("no metric name"));
        }
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let (parsed, tail) = parse_labels(after).map_err(|p| fail(&p))?;
            labels = parsed;
            rest = tail;
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| fail("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse::<f64>()
                .map_err(|_| fail(&format!("bad value {v:?}")))?,
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(out)
}

/// Labels read back, in order.
type Labels = Vec<(String, String)>;

/// Reads `k="v",…}` and returns the labels and what follows the brace.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (key, rest) = s
            .split_once("=\"")
            .ok_or_else(|| "a label without =\"value\"".to_owned())?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".to_owned()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".to_owned()),
            }
        };
        labels.push((key.trim().to_owned(), value));
        s = rest.get(end + 1..).unwrap_or("");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_and_reads_them_back() {
        let mut t = Text::new();
        t.family("x_total", Kind::Counter, "Some\\thing\nhere.");
        t.sample("x_total", &[("a", "q\"u\\o\nte"), ("b", "é")], 3.0);
        t.family("g", Kind::Gauge, "A gauge.");
        t.sample_at("g", &[], 0.5, Some(1700));
        let text = t.finish();
        assert_eq!(
            text,
            "# HELP x_total Some\\\\thing\\nhere.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"u\\\\o\\nte\",b=\"é\"} 3\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 0.5 1700\n"
        );
        let samples = parse(&text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].label("a"), Some("q\"u\\o\nte"));
        assert_eq!(samples[0].label("b"), Some("é"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!((samples[1].name.as_str(), samples[1].value), ("g", 0.5));
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 5.0] {
            h.observe(v);
        }
        let mut t = Text::new();
        t.family("d_seconds", Kind::Histogram, "D.");
        t.histogram("d_seconds", &[("op", "x")], &h);
        let s = parse(&t.finish()).unwrap();
        let got: Vec<(String, Option<&str>, f64)> = s
            .iter()
            .map(|s| (s.name.clone(), s.label("le"), s.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("d_seconds_bucket".into(), Some("0.1"), 1.0),
                ("d_seconds_bucket".into(), Some("1"), 3.0),
                ("d_seconds_bucket".into(), Some("+Inf"), 4.0),
                ("d_seconds_sum".into(), None, 6.25),
                ("d_seconds_count".into(), None, 4.0),
            ]
        );
        assert_eq!(s[0].label("op"), Some("x"));
        assert_eq!(exponential_buckets(0.5, 2.0, 3), vec![0.5, 1.0, 2.0]);
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(parse("x{a=\"b} 1").unwrap_err().line, 1);
        assert!(
            parse("# c\n\nx 1\ny nope")
                .unwrap_err()
                .problem
                .contains("nope")
        );
        assert!(parse("x").is_err());
        assert_eq!(parse("x +Inf 12").unwrap()[0].value, f64::INFINITY);
    }
}
