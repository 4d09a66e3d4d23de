//! Docker-style output: padded tables, human sizes and durations, and the
//! subset of Go templates `--format` uses (`{{.Field}}`, `{{json .}}`,
//! `table ...`).

use std::collections::BTreeMap;

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units,
/// `%.3g`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let decimals = if v < 1.0 {
        2
    } else {
        2usize.saturating_sub(v.log10().floor() as usize)
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{}", units[i])
}

pub use berth_docker_api::shapes::text::{age_secs, human_duration};

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A table printed like Go's tabwriter (minwidth 0, padding 3).
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders it.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Renders a Go-template-like `--format` for one object. `fields` maps
/// names (`ID`, `Repository`) to values; `json` is the object for
/// `{{json .}}`.
pub fn render_template(
    tmpl: &str,
    fields: &BTreeMap<String, String>,
    json: &serde_json::Value,
) -> String {
    let tmpl = tmpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tmpl.as_str();
    while let Some((text, action)) = rest.split_once("{{") {
        out.push_str(text);
        let Some((expr, tail)) = action.split_once("}}") else {
            out.push_str("{{");
            out.push_str(action);
            return out;
        };
        out.push_str(&eval(expr.trim(), fields, json));
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn eval(expr: &str, fields: &BTreeMap<String, String>, json: &serde_json::Value) -> String {
    if expr == "json ." {
        return json.to_string();
    }
    if let Some(f) = expr.strip_prefix("json .") {
        return lookup_json(json, f)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into());
    }
    if let Some(f) = expr.strip_prefix('.') {
        if let Some(v) = fields.get(f) {
            return v.clone();
        }
        return match lookup_json(json, f) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "<no value>".into(),
            Some(v) => v.to_string(),
        };
    }
    format!("{{{{{expr}}}}}")
}

fn lookup_json<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Prints objects with `--format`: a `table` template prints a header
/// made from the field names first.
pub fn print_formatted(
    tmpl: &str,
    items: &[(BTreeMap<String, String>, serde_json::Value)],
    headers: &BTreeMap<&str, &str>,
) {
    if let Some(t) = tmpl.strip_prefix("table") {
        let t = t.trim_start();
        let mut table_rows: Vec<Vec<String>> = Vec::new();
        let header_line = render_header(t, headers);
        table_rows.push(header_line.split('\t').map(str::to_owned).collect());
        for (f, j) in items {
            table_rows.push(
                render_template(t, f, j)
                    .split('\t')
                    .map(str::to_owned)
                    .collect(),
            );
        }
        let mut table = Table { rows: Vec::new() };
        for r in table_rows {
            table.row(r);
        }
        print!("{}", table.render());
        return;
    }
    for (f, j) in items {
        println!("{}", render_template(tmpl, f, j));
    }
}

fn render_header(tmpl: &str, headers: &BTreeMap<&str, &str>) -> String {
    let mut fields = BTreeMap::new();
    for (k, v) in headers {
        fields.insert(k.to_string(), v.to_string());
    }
    let tmpl = tmpl.replace("\\t", "\t");
    let mut out = String::new();
    let mut rest = tmpl.as_str();
    while let Some((text, action)) = rest.split_once("{{") {
        out.push_str(text);
        let Some((expr, tail)) = action.split_once("}}") else {
            out.push_str("{{");
            rest = action;
            break;
        };
        let expr = expr.trim();
        let name = expr.trim_start_matches("json ").trim_start_matches('.');
        out.push_str(
            &fields
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_uppercase()),
        );
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Prints `inspect` documents: each through `format` (a Go-like
/// template), or all as docker's indented JSON array.
pub fn print_inspect(docs: &[serde_json::Value], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        Some(f) => {
            for d in docs {
                println!("{}", render_template(f, &BTreeMap::new(), d));
            }
        }
        None => println!("{}", serde_json::to_string_pretty(docs)?),
    }
    Ok(())
}

/// `KEY=VALUE` flags (`--label`, `--opt`) as a map; a bare `KEY` maps to "".
pub fn key_values(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(1_200_000_000), "1.2GB");
        assert_eq!(human_size(524_288), "524kB");
        assert_eq!(human_size(10_000_000), "10MB");
    }

    #[test]
    fn templates() {
        let mut f = BTreeMap::new();
        f.insert("ID".to_string(), "abc".to_string());
        let j = serde_json::json!({"ID": "abc", "Config": {"Env": ["A=1"]}});
        assert_eq!(
            render_template("{{.ID}}\\t{{json .Config.Env}}", &f, &j),
            "abc\t[\"A=1\"]"
        );
        assert_eq!(render_template("{{json .}}", &f, &j), j.to_string());
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["xxxxx".into(), "y".into()]);
        assert_eq!(t.render(), "A       LONGER\nxxxxx   y\n");
    }
}
