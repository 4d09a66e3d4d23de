//! `--change` instructions (`docker import -c`, `docker commit -c`, the
//! API's `changes` parameters): Dockerfile instructions applied to an
//! image configuration the way dockerd 20.10 applies them. The changes are
//! joined with newlines and read as a Dockerfile (continuations,
//! comments, `# escape=`); only CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
//! LABEL, ONBUILD, USER, VOLUME and WORKDIR are allowed, as in dockerd
//! (`stopsignal is not a valid change command`). Values are expanded
//! against the environment set so far (`ENV B=$A`), shell forms of CMD and
//! ENTRYPOINT run under the image's shell, an ENTRYPOINT resets a CMD that
//! the changes did not set.

use berth_types::image::{ContainerConfig, HealthConfig};

use super::words::{Instruction, instructions, process_word, words};

/// Instructions dockerd allows in changes.
const VALID: &[&str] = &[
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "user",
    "volume",
    "workdir",
];

/// The most text changes may hold together.
const MAX_TEXT: usize = 1 << 20;

/// `config` with `changes` applied (unchanged when there are none).
pub fn apply_changes(
    config: ContainerConfig,
    changes: &[String],
) -> Result<ContainerConfig, String> {
    if changes.is_empty() {
        return Ok(config);
    }
    let text = changes.join("\n");
    if text.len() > MAX_TEXT {
        return Err(format!(
            "the changes are too long ({} bytes; at most {MAX_TEXT})",
            text.len()
        ));
    }
    let (list, escape) = instructions(&text)?;
    if list.is_empty() {
        return Err("file with no instructions".into());
    }
    if let Some(bad) = list.iter().find(|i| !VALID.contains(&i.name.as_str())) {
        return Err(format!("{} is not a valid change command", bad.name));
    }
    let mut c = config;
    let mut cmd_set = false;
    for i in &list {
        if i.name != "healthcheck"
            && let Some(f) = i.flags.first()
        {
            return Err(format!("Unknown flag: {}", flag_name(f)));
        }
        let p = |w: &str, env: &[String]| process_word(w, env, escape);
        match i.name.as_str() {
            "cmd" => {
                c.cmd = Some(command(&i.rest, &c.shell)?);
                cmd_set = true;
            }
            "entrypoint" => {
                let e = command(&i.rest, &c.shell)?;
                let shell_form = !is_json_form(&i.rest);
                c.entrypoint = if e.is_empty() || (shell_form && i.rest.is_empty()) {
                    None
                } else {
                    Some(e)
                };
                if !cmd_set {
                    c.cmd = None;
                }
            }
            "env" => {
                for (k, v) in pairs(i, "ENV", escape)? {
                    let k = p(&k, &c.env)?;
                    let v = p(&v, &c.env)?;
                    let entry = format!("{k}={v}");
                    match c
                        .env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => c.env.push(entry),
                    }
                }
            }
            "label" => {
                for (k, v) in pairs(i, "LABEL", escape)? {
                    let k = p(&k, &c.env)?;
                    let v = p(&v, &c.env)?;
                    c.labels.insert(k, v);
                }
            }
            "expose" => {
                let ports = words_of(&i.rest);
                if ports.is_empty() {
                    return Err(at_least_one("EXPOSE"));
                }
                for w in ports {
                    for key in port_keys(&p(&w, &c.env)?)? {
                        c.exposed_ports.insert(key, serde_json::json!({}));
                    }
                }
            }
            "user" => {
                if i.rest.is_empty() {
                    return Err(exactly_one("USER"));
                }
                c.user = p(&i.rest, &c.env)?;
            }
            "workdir" => {
                if i.rest.is_empty() {
                    return Err(exactly_one("WORKDIR"));
                }
                let w = p(&i.rest, &c.env)?;
                if w.is_empty() {
                    return Err("cannot normalize nothing".into());
                }
                c.working_dir = if w.starts_with('/') {
                    w
                } else {
                    clean_path(&format!("/{}/{w}", c.working_dir))
                };
            }
            "volume" => {
                let list = match json_array(&i.rest)? {
                    Some(v) => v,
                    None => words_of(&i.rest),
                };
                if list.is_empty() {
                    return Err(at_least_one("VOLUME"));
                }
                for v in list {
                    let v = p(&v, &c.env)?;
                    if v.trim().is_empty() {
                        return Err("VOLUME specified can not be an empty string".into());
                    }
                    c.volumes.insert(v, serde_json::json!({}));
                }
            }
            "onbuild" => c.on_build.push(onbuild(&i.rest)?),
            "healthcheck" => c.healthcheck = Some(healthcheck(i)?),
            other => return Err(format!("{other} is not a valid change command")),
        }
    }
    Ok(c)
}

fn at_least_one(name: &str) -> String {
    format!("{name} requires at least one argument")
}

fn exactly_one(name: &str) -> String {
    format!("{name} requires exactly one argument")
}

fn flag_name(f: &str) -> &str {
    f.split('=').next().unwrap_or(f)
}

/// Whitespace-separated words (no quote handling: that is the word
/// processing's).
fn words_of(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_owned).collect()
}

fn is_json_form(rest: &str) -> bool {
    matches!(json_array(rest), Ok(Some(_)))
}

/// `rest` as a JSON array of strings (dockerd reads the first JSON value
/// and ignores what follows); `None` when it is not JSON (a shell form).
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let mut it = serde_json::Deserializer::from_str(t).into_iter::<serde_json::Value>();
    match it.next() {
        Some(Ok(serde_json::Value::Array(items))) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only".into(),
                ),
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// CMD/ENTRYPOINT: the JSON form as it is, a shell form under `shell`.
fn command(rest: &str, shell: &[String]) -> Result<Vec<String>, String> {
    if let Some(v) = json_array(rest)? {
        return Ok(v);
    }
    let mut cmd: Vec<String> = if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    };
    if !rest.is_empty() {
        cmd.push(rest.to_owned());
    }
    Ok(cmd)
}

/// ENV/LABEL pairs: `K=V ...`, or the old `K V` (the rest is the value).
fn pairs(i: &Instruction, what: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let ws = words(&i.rest, escape);
    let Some(first) = ws.first() else {
        return Err(at_least_one(what));
    };
    let out: Vec<(String, String)> = if !first.contains('=') {
        match i.rest.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_owned(), v.trim_start().to_owned())],
            None => return Err(format!("{what} must have two arguments")),
        }
    } else {
        ws.iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                None => Err(format!(
                    "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                )),
            })
            .collect::<Result<_, _>>()?
    };
    if out.iter().any(|(k, _)| k.is_empty()) {
        return Err(format!("{what} names can not be blank"));
    }
    Ok(out)
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    let one = |x: &str| -> Option<u16> {
        (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
    };
    match s.split_once('-') {
        None => one(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// EXPOSE `[[IP:]HOSTPORT:]PORT[-PORT][/PROTO]` as image config keys
/// (`80/tcp`), as docker's `nat.ParsePortSpec` reads them.
fn port_keys(spec: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let container = parts.last().copied().unwrap_or("");
    let (ip, host) = match parts.len() {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        n => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (port, proto) = match container.split_once('/') {
        _ if container.is_empty() => ("", ""),
        None => (container, "tcp"),
        Some((p, "")) => (p, "tcp"),
        Some((p, proto)) => (p, proto.split('/').next().unwrap_or(proto)),
    };
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    if !bare.is_empty() && bare.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("Invalid ip address: {bare}"));
    }
    if port.is_empty() {
        return Err(format!("No port specified: {spec}<empty>"));
    }
    let (a, b) = port_range(port).ok_or_else(|| format!("Invalid containerPort: {port}"))?;
    if !host.is_empty() {
        let (ha, hb) = port_range(host).ok_or_else(|| format!("Invalid hostPort: {host}"))?;
        if hb - ha != b - a {
            return Err(format!(
                "Invalid ranges specified for container and host Ports: {port} and {host}"
            ));
        }
    }
    let proto_l = proto.to_ascii_lowercase();
    if !matches!(proto_l.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    Ok((a..=b).map(|p| format!("{p}/{proto_l}")).collect())
}

/// Go's `path.Clean` of a rooted path.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn onbuild(rest: &str) -> Result<String, String> {
    let Some(first) = rest.split_whitespace().next() else {
        return Err(at_least_one("ONBUILD"));
    };
    match first.to_uppercase().as_str() {
        "ONBUILD" => Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        t @ ("MAINTAINER" | "FROM") => Err(format!("{t} isn't allowed as an ONBUILD trigger")),
        _ => Ok(rest.to_owned()),
    }
}

/// A HEALTHCHECK duration flag (Go syntax, at least 1ms when given).
fn interval(name: &str, v: &str) -> Result<i64, String> {
    let d = super::parse_duration(v).map_err(|_| format!("time: invalid duration {v:?}"))?;
    if d < 1_000_000 {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(d)
}

fn healthcheck(i: &Instruction) -> Result<HealthConfig, String> {
    let (typ, args) = i
        .rest
        .split_once(char::is_whitespace)
        .map(|(t, a)| (t, a.trim_start()))
        .unwrap_or((i.rest.as_str(), ""));
    if typ.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    }
    let mut h = HealthConfig::default();
    let mut seen: Vec<&str> = Vec::new();
    for f in &i.flags {
        let (name, value) = match f.split_once('=') {
            Some((n, v)) => (n, v),
            None if matches!(
                f.as_str(),
                "interval" | "timeout" | "start-period" | "retries"
            ) =>
            {
                return Err(format!("Missing a value on flag: {f}"));
            }
            None => return Err(format!("Unknown flag: {f}")),
        };
        if seen.contains(&name) {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        seen.push(name);
        if value.is_empty() {
            continue;
        }
        match name {
            "interval" => h.interval = interval(name, value)?,
            "timeout" => h.timeout = interval(name, value)?,
            "start-period" => h.start_period = interval(name, value)?,
            "retries" => {
                let n: i64 = value
                    .parse::<i32>()
                    .map_err(|_| format!("strconv.ParseInt: parsing {value:?}: invalid syntax"))?
                    .into();
                if n < 1 {
                    return Err(format!("--retries must be at least 1 (not {n})"));
                }
                h.retries = n;
            }
            other => return Err(format!("Unknown flag: {other}")),
        }
    }
    if typ != "CMD" {
        return Err(format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"));
    }
    match json_array(args)? {
        Some(v) if v.is_empty() => Err("Missing command after HEALTHCHECK CMD".into()),
        Some(v) => {
            h.test = std::iter::once("CMD".to_owned()).chain(v).collect();
            Ok(h)
        }
        None if args.is_empty() => Err("Missing command after HEALTHCHECK CMD".into()),
        None => {
            h.test = vec!["CMD-SHELL".into(), args.to_owned()];
            Ok(h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, String> {
        let v: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply_changes(ContainerConfig::default(), &v)
    }

    fn keys(m: &std::collections::BTreeMap<String, serde_json::Value>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn what_docker_import_change_sets() {
        let c = apply(&[
            r#"CMD ["echo","imported-cmd"]"#,
            "ENV A=1",
            "LABEL x=y",
            "EXPOSE 80",
            "WORKDIR /tmp",
            "USER nobody",
            "VOLUME /v",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["echo", "imported-cmd"]);
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.labels.get("x").unwrap(), "y");
        assert_eq!(keys(&c.exposed_ports), ["80/tcp"]);
        assert_eq!(c.working_dir, "/tmp");
        assert_eq!(c.user, "nobody");
        assert_eq!(keys(&c.volumes), ["/v"]);
        assert_eq!(apply(&[]).unwrap(), ContainerConfig::default());
    }

    #[test]
    fn refused_instructions_are_named_in_lower_case() {
        for (change, msg) in [
            ("FROM x", "from is not a valid change command"),
            ("bogus", "bogus is not a valid change command"),
            ("STOPSIGNAL 9", "stopsignal is not a valid change command"),
            ("RUN true", "run is not a valid change command"),
            (
                "SHELL [\"/bin/bash\"]",
                "shell is not a valid change command",
            ),
            ("ÉCHO x", "écho is not a valid change command"),
            ("\\", " is not a valid change command"),
            ("", "file with no instructions"),
            ("# only a comment", "file with no instructions"),
        ] {
            assert_eq!(apply(&[change]).unwrap_err(), msg, "{change:?}");
        }
        // every instruction is checked before any applies
        assert!(apply(&["ENV A=1", "RUN x"]).is_err());
    }

    #[test]
    fn commands_in_json_and_shell_form() {
        assert_eq!(
            apply(&["CMD echo hi"]).unwrap().cmd.unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(
            apply(&["cmd  echo   \"hi there\"  "]).unwrap().cmd.unwrap(),
            ["/bin/sh", "-c", "echo   \"hi there\""]
        );
        assert_eq!(apply(&["CMD"]).unwrap().cmd.unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(
            apply(&["CMD []"]).unwrap().cmd.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            apply(&["CMD ['a']"]).unwrap().cmd.unwrap(),
            ["/bin/sh", "-c", "['a']"]
        );
        assert_eq!(
            apply(&[r#"CMD ["a",]"#]).unwrap().cmd.unwrap(),
            ["/bin/sh", "-c", r#"["a",]"#]
        );
        assert_eq!(
            apply(&["CMD [1]"]).unwrap_err(),
            "when using JSON array syntax, arrays must be comprised of strings only"
        );
        assert_eq!(apply(&["ENTRYPOINT []"]).unwrap().entrypoint, None);
        assert_eq!(apply(&["ENTRYPOINT"]).unwrap().entrypoint, None);
        assert_eq!(
            apply(&["ENTRYPOINT sh"]).unwrap().entrypoint.unwrap(),
            ["/bin/sh", "-c", "sh"]
        );
        // an ENTRYPOINT resets a CMD the changes did not set
        let base = ContainerConfig {
            cmd: Some(vec!["old".into()]),
            shell: vec!["/bin/bash".into(), "-ec".into()],
            ..Default::default()
        };
        let c = apply_changes(base.clone(), &[r#"ENTRYPOINT ["e"]"#.into()]).unwrap();
        assert_eq!((c.cmd, c.entrypoint.unwrap()), (None, vec!["e".to_owned()]));
        let c = apply_changes(
            base.clone(),
            &[r#"CMD ["a"]"#.into(), "ENTRYPOINT e".into()],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["a"]);
        assert_eq!(
            c.entrypoint.unwrap(),
            ["/bin/bash", "-ec", "e"],
            "the image's SHELL"
        );
    }

    #[test]
    fn env_and_labels() {
        assert_eq!(apply(&["ENV A B C"]).unwrap().env, ["A=B C"]);
        assert_eq!(apply(&[r#"ENV A "q v""#]).unwrap().env, ["A=q v"]);
        assert_eq!(
            apply(&[r#"ENV A=1 B="two words" C=x\ y"#]).unwrap().env,
            ["A=1", "B=two words", "C=x y"]
        );
        assert_eq!(
            apply(&[
                "ENV A=1",
                "ENV B=$A C=${A}x D=${Z:-def} E=${A:+alt} F=\\$A G='$A'"
            ])
            .unwrap()
            .env,
            ["A=1", "B=1", "C=1x", "D=def", "E=alt", "F=$A", "G=$A"]
        );
        assert_eq!(
            apply(&["ENV A=1", "ENV B=2", "ENV A=3"]).unwrap().env,
            ["A=3", "B=2"]
        );
        assert_eq!(apply(&["ENV A=1 A=2"]).unwrap().env, ["A=2"]);
        assert_eq!(apply(&["ENV A="]).unwrap().env, ["A="]);
        assert_eq!(apply(&["ENV A=1 \\\nB=2"]).unwrap().env, ["A=1", "B=2"]);
        assert_eq!(apply(&["ENV ü=€"]).unwrap().env, ["ü=€"]);
        for (change, msg) in [
            ("ENV", "ENV requires at least one argument"),
            ("ENV A", "ENV must have two arguments"),
            ("ENV =x", "ENV names can not be blank"),
            ("LABEL", "LABEL requires at least one argument"),
            ("LABEL a", "LABEL must have two arguments"),
            ("LABEL =x", "LABEL names can not be blank"),
            (
                "ENV A=ü €",
                "Syntax error - can't find = in \"€\". Must be of the form: name=value",
            ),
            (
                "ENV A=${B",
                "failed to process \"${B\": missing ':' in substitution",
            ),
            ("ENV --x=1 A=1", "Unknown flag: x"),
        ] {
            assert_eq!(apply(&[change]).unwrap_err(), msg, "{change:?}");
        }
        let c = apply(&[
            "LABEL a=1 b=2",
            "LABEL a=3",
            r#"LABEL "c d"="e f" g="x\"y""#,
        ])
        .unwrap();
        let l: Vec<(&str, &str)> = c
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(l, [("a", "3"), ("b", "2"), ("c d", "e f"), ("g", "x\"y")]);
        assert_eq!(
            apply(&["LABEL a b c"]).unwrap().labels.get("a").unwrap(),
            "b c"
        );
    }

    #[test]
    fn expose_user_workdir_volume_onbuild() {
        assert_eq!(
            keys(
                &apply(&["EXPOSE 80-82/udp 443 80/TCP 1.2.3.4:8080:9 0"])
                    .unwrap()
                    .exposed_ports
            ),
            [
                "0/tcp", "443/tcp", "80/tcp", "80/udp", "81/udp", "82/udp", "9/tcp"
            ]
        );
        assert_eq!(
            keys(&apply(&["EXPOSE 80/sctp"]).unwrap().exposed_ports),
            ["80/sctp"]
        );
        for (change, msg) in [
            ("EXPOSE abc", "Invalid containerPort: abc"),
            ("EXPOSE 99999", "Invalid containerPort: 99999"),
            ("EXPOSE 90-80", "Invalid containerPort: 90-80"),
            ("EXPOSE 80/bogus", "Invalid proto: bogus"),
            ("EXPOSE", "EXPOSE requires at least one argument"),
            ("USER", "USER requires exactly one argument"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("VOLUME", "VOLUME requires at least one argument"),
            ("VOLUME []", "VOLUME requires at least one argument"),
            ("VOLUME \"\"", "VOLUME specified can not be an empty string"),
            (
                "VOLUME [\"\"]",
                "VOLUME specified can not be an empty string",
            ),
            ("ONBUILD", "ONBUILD requires at least one argument"),
            (
                "ONBUILD onbuild x",
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
            (
                "ONBUILD MAINTAINER x",
                "MAINTAINER isn't allowed as an ONBUILD trigger",
            ),
        ] {
            assert_eq!(apply(&[change]).unwrap_err(), msg, "{change:?}");
        }
        assert_eq!(apply(&["USER a b"]).unwrap().user, "a b");
        assert_eq!(apply(&[r#"USER "x""#]).unwrap().user, "x");
        assert_eq!(apply(&["USER ${NOPE}"]).unwrap().user, "");
        assert_eq!(apply(&["WORKDIR rel"]).unwrap().working_dir, "/rel");
        assert_eq!(
            apply(&["WORKDIR /a", "WORKDIR b/../c"])
                .unwrap()
                .working_dir,
            "/a/c"
        );
        assert_eq!(
            apply(&["WORKDIR /a/../.."]).unwrap().working_dir,
            "/a/../.."
        );
        assert_eq!(apply(&["WORKDIR a b"]).unwrap().working_dir, "/a b");
        assert_eq!(
            apply(&["WORKDIR ${NOPE}"]).unwrap_err(),
            "cannot normalize nothing"
        );
        let c = apply(&[
            "ENV A=/x",
            "WORKDIR $A",
            "LABEL l=$A",
            "VOLUME $A",
            "EXPOSE ${P:-81}",
        ])
        .unwrap();
        assert_eq!(c.working_dir, "/x");
        assert_eq!(c.labels.get("l").unwrap(), "/x");
        assert_eq!(keys(&c.volumes), ["/x"]);
        assert_eq!(keys(&c.exposed_ports), ["81/tcp"]);
        assert_eq!(
            keys(&apply(&[r#"VOLUME ["/a","/b"]"#]).unwrap().volumes),
            ["/a", "/b"]
        );
        assert_eq!(
            keys(&apply(&[r#"VOLUME ["/a","#]).unwrap().volumes),
            ["[/a,"]
        );
        assert_eq!(
            apply(&["ONBUILD  RUN   a  b", "ONBUILD bogus x"])
                .unwrap()
                .on_build,
            ["RUN   a  b", "bogus x"]
        );
    }

    #[test]
    fn healthchecks() {
        let h = |s: &str| apply(&[s]).map(|c| c.healthcheck.unwrap());
        assert_eq!(h("HEALTHCHECK NONE").unwrap().test, ["NONE"]);
        assert_eq!(h("healthcheck none").unwrap().test, ["NONE"]);
        assert_eq!(h("HEALTHCHECK --interval=5s NONE").unwrap().test, ["NONE"]);
        let x = h("HEALTHCHECK --interval=5s --retries=3 CMD true").unwrap();
        assert_eq!(x.test, ["CMD-SHELL", "true"]);
        assert_eq!((x.interval, x.retries), (5_000_000_000, 3));
        let x = h("HEALTHCHECK --timeout=1s --start-period=2s CMD [\"a\",\"b\"]").unwrap();
        assert_eq!(x.test, ["CMD", "a", "b"]);
        assert_eq!((x.timeout, x.start_period), (1_000_000_000, 2_000_000_000));
        for (change, msg) in [
            ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK CMD []",
                "Missing command after HEALTHCHECK CMD",
            ),
            (
                "HEALTHCHECK x",
                "Unknown type \"X\" in HEALTHCHECK (try CMD)",
            ),
            ("HEALTHCHECK --bogus=1 CMD x", "Unknown flag: bogus"),
            (
                "HEALTHCHECK --interval 5s CMD x",
                "Missing a value on flag: interval",
            ),
            (
                "HEALTHCHECK --interval=abc CMD x",
                "time: invalid duration \"abc\"",
            ),
            (
                "HEALTHCHECK --interval=500us CMD x",
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --retries=0 CMD x",
                "--retries must be at least 1 (not 0)",
            ),
            (
                "HEALTHCHECK --retries=x CMD x",
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                "HEALTHCHECK --retries=1 --retries=2 CMD x",
                "Duplicate flag specified: retries",
            ),
        ] {
            assert_eq!(h(change).unwrap_err(), msg, "{change:?}");
        }
    }

    #[test]
    fn hostile_input_is_refused_or_bounded() {
        let huge = format!("ENV A={}", "x".repeat(MAX_TEXT));
        assert!(apply(&[&huge]).unwrap_err().contains("too long"));
        let big = format!("LABEL a={}", "€".repeat(50_000));
        assert_eq!(
            apply(&[&big]).unwrap().labels.get("a").unwrap().len(),
            150_000
        );
        let deep = format!("ENV A={}x{}", "${Z:-".repeat(200), "}".repeat(200));
        assert!(apply(&[&deep]).unwrap_err().contains("nested too deeply"));
        assert!(apply(&["CMD [\"a\"", "ENV \u{0}=1"]).is_ok());
        let many: Vec<String> = (0..2_000).map(|i| format!("ENV K{i}={i}")).collect();
        assert_eq!(
            apply_changes(ContainerConfig::default(), &many)
                .unwrap()
                .env
                .len(),
            2_000
        );
        assert!(apply(&["EXPOSE 0-65535"]).is_ok());
    }
}
