//! Docker's list filters (`ps`, `images`, `volume ls`, `network ls`,
//! their prune commands), one implementation for the CLI and the API:
//! values of one key are alternatives (OR), different keys must all match
//! (AND), and `label` filters must all match, as dockerd's `filters.Args`.

use std::collections::BTreeMap;

use crate::query::Container;
use crate::run::{Error, Result};

/// Filters: key → values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// From `key=value` pairs (the CLI's `--filter`).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in pairs {
            let (k, v) = p.split_once('=').ok_or_else(|| {
                Error::Invalid(format!("bad format of filter (expected name=value): {p}"))
            })?;
            m.entry(k.to_owned()).or_default().push(v.to_owned());
        }
        Ok(Filters(m))
    }

    /// Refuses keys not in `known`, with docker's message.
    pub fn check(&self, known: &[&str]) -> Result<()> {
        for k in self.0.keys() {
            if !known.contains(&k.as_str()) {
                return Err(Error::Invalid(format!("Invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// docker's error for a value `key` does not take (`Invalid filter
    /// 'dangling=[maybe]'`, the values as Go prints a list).
    pub fn invalid_value(&self, key: &str) -> Error {
        Error::Invalid(format!(
            "Invalid filter '{key}=[{}]'",
            self.get(key).join(" ")
        ))
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Whether `key` is given.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// `key` not given, or one of its values passes `f`.
    pub fn any(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vals) => vals.iter().any(|v| f(v)),
        }
    }

    /// Every `label` filter (`KEY` or `KEY=VALUE`) holds for `labels`;
    /// `label!` filters must all fail.
    pub fn labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.get("label").iter().all(|f| label_matches(labels, f))
            && !self.get("label!").iter().any(|f| label_matches(labels, f))
    }

    /// A boolean filter (`dangling=true`): `None` when not given, an error
    /// for a value that is not a boolean.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            [] => Ok(None),
            vals => {
                let mut out = None;
                for v in vals {
                    let b = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(self.invalid_value(key)),
                    };
                    out = Some(b);
                }
                Ok(out)
            }
        }
    }
}

/// `KEY` or `KEY=VALUE` against labels.
pub fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// The filters `docker ps` knows.
pub const CONTAINER_FILTERS: &[&str] = &[
    "name", "id", "status", "label", "label!", "ancestor", "exited", "network", "volume", "health",
    "before", "since", "is-task", "expose", "publish",
];

/// The filters `docker images` knows.
pub const IMAGE_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference"];

/// The filters `docker image prune` knows.
pub const IMAGE_PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// Go's `path.Match`: `*` (any run without `/`), `?` (one character but
/// `/`), `[...]` classes (`^` negates, ranges, `\` escapes). A malformed
/// pattern is docker's "syntax error in pattern".
pub fn path_match(pattern: &str, name: &str) -> Result<bool> {
    let bad = || Error::Invalid("syntax error in pattern".into());
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // one class character (`\\` escapes): (char, index after it); `-` and
    // `]` must be escaped, and a class must go on after it
    fn esc(p: &[char], mut i: usize) -> Option<(char, usize)> {
        let mut ch = *p.get(i)?;
        if ch == '-' || ch == ']' {
            return None;
        }
        if ch == '\\' {
            i += 1;
            ch = *p.get(i)?;
        }
        i += 1;
        (i < p.len()).then_some((ch, i))
    }
    // a class at p[i] ('[' already seen): (matched, index after ']')
    fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
        let negate = p.get(i) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut ranges = 0;
        loop {
            if p.get(i) == Some(&']') && ranges > 0 {
                return Some((matched != negate, i + 1));
            }
            let (lo, next) = esc(p, i)?;
            i = next;
            let mut hi = lo;
            if p.get(i) == Some(&'-') {
                let (h, next) = esc(p, i + 1)?;
                hi = h;
                i = next;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            ranges += 1;
        }
    }
    // the whole pattern must be well formed, matched or not
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(bad());
                }
                i += 2;
            }
            '[' => i = class(&p, i + 1, '\0').ok_or_else(bad)?.1,
            _ => i += 1,
        }
    }
    // backtracking over `*` (the last star is the only one to revisit)
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() && n[ni] != '/' => {
                    let (ok, next) = class(&p, pi + 1, n[ni]).ok_or_else(bad)?;
                    if ok {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if ni < n.len() && p.get(pi + 1) == Some(&n[ni]) => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '?' && c != '[' && c != '\\' && ni < n.len() && n[ni] == c => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Ok(true);
        }
        // mismatch: let the last star take one more character (never `/`)
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return Ok(false),
        }
    }
}

/// The values `docker ps --filter status=` knows.
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Checks `docker ps` filters before anything is listed, with dockerd's
/// messages: unknown keys, statuses, health states, `exited` codes and
/// `is-task` values are refused even when no container would be looked at.
pub fn check_container_filters(f: &Filters) -> Result<()> {
    f.check(CONTAINER_FILTERS)?;
    for v in f.get("status") {
        if !STATUSES.contains(&v.as_str()) {
            return Err(Error::Invalid(format!("Invalid filter 'status={v}'")));
        }
    }
    for v in f.get("health") {
        if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
            return Err(Error::Invalid(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
    }
    for v in f.get("exited") {
        if v.parse::<i32>().is_err() {
            return Err(Error::Invalid(format!("Invalid filter 'exited={v}'")));
        }
    }
    for v in f.get("is-task") {
        if !matches!(v.as_str(), "true" | "false") {
            return Err(Error::Invalid(format!("Invalid filter 'is-task=[{v}]'")));
        }
    }
    Ok(())
}

impl crate::Engine {
    /// Whether a container passes `docker ps` filters (`before`/`since`
    /// name other containers).
    pub fn container_matches(&self, c: &Container, f: &Filters) -> Result<bool> {
        check_container_filters(f)?;
        let r = &c.record;
        let status = c.state.status.as_str();
        let created = |key: &str| -> Result<Option<String>> {
            match f.get(key).first() {
                None => Ok(None),
                Some(other) => Ok(Some(self.container(other)?.record.created)),
            }
        };
        let before = created("before")?;
        let since = created("since")?;
        let image_ok = |v: &str| {
            r.image == v
                || r.image_id == v
                || r.image_id.trim_start_matches("sha256:").starts_with(v)
                || r.image.split(':').next() == Some(v)
        };
        Ok(f.any("name", |v| {
            let v = v.trim_start_matches('/');
            r.name.contains(v)
        }) && f.any("id", |v| r.id.starts_with(v))
            && f.any("status", |v| status == v)
            && f.labels(&r.labels)
            && f.any("ancestor", image_ok)
            && f.any("exited", |v| {
                status == "exited" && v.parse::<i32>().is_ok_and(|n| n == c.state.exit_code)
            })
            && f.any("network", |v| {
                r.networks.iter().any(|x| {
                    x.network == v || c.network_names.get(&x.network).is_some_and(|n| n == v)
                })
            })
            && f.any("volume", |v| {
                r.mounts.iter().any(|m| m.name == v || m.destination == v)
            })
            && f.any("health", |v| {
                let h = c
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                h == v
            })
            && f.any("is-task", |v| v == "false")
            && f.any("expose", |v| {
                r.exposed_ports
                    .iter()
                    .any(|p| p.to_string() == v || p.port.to_string() == v)
            })
            && f.any("publish", |v| {
                c.endpoints.iter().flat_map(|e| e.ports.iter()).any(|b| {
                    b.host_port.to_string() == v || format!("{}/{}", b.host_port, b.proto) == v
                })
            })
            && before.is_none_or(|t| r.created < t)
            && since.is_none_or(|t| r.created > t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_filters_are_checked_like_dockerd() {
        let ok = |pairs: &[&str]| {
            check_container_filters(&Filters::from_pairs(pairs.iter().copied()).unwrap())
        };
        assert!(
            ok(&[
                "status=running",
                "status=exited",
                "health=none",
                "exited=137",
                "is-task=false"
            ])
            .is_ok()
        );
        for (bad, msg) in [
            ("bogus=1", "Invalid filter 'bogus'"),
            ("status=bogus", "Invalid filter 'status=bogus'"),
            ("status=", "Invalid filter 'status='"),
            (
                "health=bogus",
                "Unrecognised filter value for health: bogus",
            ),
            ("exited=abc", "Invalid filter 'exited=abc'"),
            (
                "exited=99999999999999999999",
                "Invalid filter 'exited=99999999999999999999'",
            ),
            ("is-task=maybe", "Invalid filter 'is-task=[maybe]'"),
            (
                "status=RUNNING\u{0}",
                "Invalid filter 'status=RUNNING\u{0}'",
            ),
        ] {
            assert_eq!(ok(&[bad]).unwrap_err().to_string(), msg, "{bad}");
        }
    }

    #[test]
    fn or_within_a_key_and_across_keys() {
        let f = Filters::from_pairs(["name=a", "name=b", "label=x", "label=y=1"]).unwrap();
        assert!(f.any("name", |v| v == "b"));
        assert!(f.any("id", |_| false), "absent keys pass");
        let mut l = BTreeMap::new();
        l.insert("x".to_owned(), String::new());
        assert!(!f.labels(&l), "label filters must all hold");
        l.insert("y".to_owned(), "1".to_owned());
        assert!(f.labels(&l));
        assert!(f.check(&["name"]).is_err());
        assert!(Filters::from_pairs(["nokey"]).is_err());
        let e = f.check(&["name"]).unwrap_err().to_string();
        assert_eq!(e, "Invalid filter 'label'", "dockerd's message");
        let d = Filters::from_pairs(["dangling=true"]).unwrap();
        assert_eq!(d.boolean("dangling").unwrap(), Some(true));
        assert_eq!(
            Filters::from_pairs(["dangling=maybe"])
                .unwrap()
                .boolean("dangling")
                .unwrap_err()
                .to_string(),
            "Invalid filter 'dangling=[maybe]'"
        );
        assert_eq!(
            f.check(&["name"]).unwrap_err().to_string(),
            "Invalid filter 'label'"
        );
    }

    #[test]
    fn path_match_is_gos() {
        let m = |p: &str, n: &str| path_match(p, n).unwrap();
        assert!(m("pyf:*", "pyf:lab"));
        assert!(m("pyf", "pyf"));
        assert!(!m("pyf", "pyf:lab"));
        assert!(m("wtimg*", "wtimg-pyf"));
        assert!(!m("*", "a/b"), "a star stays within a path segment");
        assert!(m("*/*", "a/b"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("*b*c", "abxbc"));
        assert!(m("ü*€", "üxyz€"));
        assert!(!m("", "x"));
        assert!(m("", ""));
        for bad in ["[[", "[", "a\\", "[a-", "[]a]", "[a-]"] {
            assert_eq!(
                path_match(bad, "x").unwrap_err().to_string(),
                "syntax error in pattern",
                "{bad:?}"
            );
        }
        // no blow-up on many stars
        let p = "*a".repeat(50);
        assert!(!m(&p, &"a".repeat(49)));
    }
}
