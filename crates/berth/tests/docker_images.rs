//! Images through `berth daemon` as the docker CLI and docker-py see them
//! (list filters, history, inspect, import/commit changes, load, pull,
//! login, image events), compared with dockerd's answers.

use std::path::Path;
use std::process::Stdio;

use berth_testutil::{Daemon, busybox_daemon, free_port};
use serde_json::{Value, json};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /images/json` with `filters` (a JSON object): the status and the
/// `RepoTags` of the images listed.
fn listed(d: &Daemon, filters: &Value) -> (u16, Vec<String>, Value) {
    let (st, v) = d.api_json(
        "GET",
        &format!("/v1.41/images/json?filters={}", enc(&filters.to_string())),
        &Value::Null,
    );
    let tags = v
        .as_array()
        .map(|a| {
            a.iter()
                .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (st, tags, v)
}

/// Imports the busybox rootfs as `name` with `changes`; returns the status
/// and body.
fn import(b: &berth_testutil::Berth, d: &Daemon, name: &str, changes: &[&str]) -> (u16, String) {
    let tar = std::fs::read(berth_testutil::busybox_tar(b.dir.path())).unwrap();
    let (repo, tag) = name.split_once(':').unwrap();
    let mut path = format!("/v1.41/images/create?fromSrc=-&repo={repo}&tag={tag}");
    for c in changes {
        path.push_str(&format!("&changes={}", enc(c)));
    }
    d.api("POST", &path, &tar)
}

#[test]
fn the_daemon_lists_the_imported_image() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let out = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), "bb:1");
}

#[test]
fn import_changes_filters_history_inspect_and_tags_as_dockerd() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    // import with changes (B7)
    let (st, body) = import(
        &b,
        &d,
        "lab:1",
        &[
            r#"CMD ["echo","imported-cmd"]"#,
            "ENV A=1",
            "LABEL k=v",
            "EXPOSE 80",
            "WORKDIR /tmp",
            "USER nobody",
            "VOLUME /v",
        ],
    );
    assert_eq!(st, 200, "{body}");
    let (_, img) = d.api_json("GET", "/v1.41/images/lab:1/json", &Value::Null);
    let c = &img["Config"];
    assert_eq!(c["Cmd"], json!(["echo", "imported-cmd"]));
    assert_eq!(c["Env"], json!(["A=1"]));
    assert_eq!(c["Labels"], json!({"k": "v"}));
    assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}}));
    assert_eq!(
        (c["WorkingDir"].clone(), c["User"].clone()),
        (json!("/tmp"), json!("nobody"))
    );
    assert_eq!(c["Volumes"], json!({"/v": {}}));
    for (change, msg) in [
        ("FROM x", "from is not a valid change command"),
        ("bogus", "bogus is not a valid change command"),
        ("STOPSIGNAL 9", "stopsignal is not a valid change command"),
        ("RUN true", "run is not a valid change command"),
    ] {
        let (st, body) = import(&b, &d, "bad:1", &[change]);
        assert_eq!(st, 400, "{change}: {body}");
        assert!(body.contains(msg), "{change}: {body}");
    }
    assert!(d.fails(&["image", "inspect", "bad:1"]).contains("No such"));
    // the imported command runs
    assert_eq!(d.ok(&["run", "--rm", "lab:1"]), "imported-cmd\n");

    // inspect as API 1.41 sees it (A5, C6), and as 1.47
    assert_eq!(img["Container"], json!(""));
    assert!(img["ContainerConfig"].is_object(), "{img}");
    assert!(img["ContainerConfig"]["Hostname"].is_string(), "{img}");
    assert_eq!(img["VirtualSize"], img["Size"]);
    assert_eq!(img["GraphDriver"]["Name"], json!("overlay2"));
    assert_eq!(img["RepoDigests"], json!([]));
    assert_eq!(img["Comment"], json!("Imported from -"));
    for k in [
        "Hostname",
        "Domainname",
        "AttachStdin",
        "Tty",
        "OpenStdin",
        "Image",
    ] {
        assert!(c.get(k).is_some(), "Config lacks {k}: {c}");
    }
    let (_, info) = d.api_json("GET", "/v1.41/info", &Value::Null);
    assert_eq!(info["Driver"], img["GraphDriver"]["Name"]);
    let (_, new) = d.api_json("GET", "/v1.47/images/lab:1/json", &Value::Null);
    assert!(new.get("ContainerConfig").is_none() && new.get("VirtualSize").is_none());

    // list filters (B5)
    let all = |f: Value| listed(&d, &f);
    assert_eq!(all(json!({"label": ["k"]})).1, ["lab:1"]);
    assert_eq!(all(json!({"label": ["k=v"]})).1, ["lab:1"]);
    assert!(all(json!({"label": ["k=x"]})).1.is_empty());
    assert!(all(json!({"dangling": ["true"]})).1.is_empty());
    assert_eq!(all(json!({"reference": ["lab"]})).1, ["lab:1"]);
    assert_eq!(all(json!({"reference": ["la*:*"]})).1, ["lab:1"]);
    assert_eq!(all(json!({"since": ["bb:1"]})).1, ["lab:1"]);
    assert_eq!(all(json!({"before": ["lab:1"]})).1, ["bb:1"]);
    let (st, _, v) = all(json!({"bogus": ["x"]}));
    assert_eq!(
        (st, v["message"].clone()),
        (400, json!("Invalid filter 'bogus'"))
    );
    let (st, _, v) = all(json!({"dangling": ["maybe"]}));
    assert_eq!(
        (st, v["message"].clone()),
        (400, json!("Invalid filter 'dangling=[maybe]'"))
    );
    let (st, _) = d.api("GET", "/v1.41/images/json?filters=%C3%A9", b"");
    assert_eq!(st, 400);
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}", "lab"])
            .trim(),
        "lab"
    );
    assert!(
        d.ok(&["images", "-q", "-f", "dangling=true"])
            .trim()
            .is_empty()
    );

    // history (C1)
    let (st, h) = d.api_json("GET", "/v1.41/images/lab:1/history", &Value::Null);
    assert_eq!(st, 200, "{h}");
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["Comment"], json!("Imported from -"));
    assert_eq!(h[0]["Tags"], json!(["lab:1"]));
    assert_eq!(h[0]["Id"], img["Id"]);
    assert!(h[0]["Size"].as_u64().unwrap() > 0 && h[0]["Created"].as_i64().unwrap() > 0);
    assert!(h[0]["CreatedBy"].is_string());
    let (st, v) = d.api_json("GET", "/v1.41/images/nosuch:img/history", &Value::Null);
    assert_eq!(
        (st, v["message"].clone()),
        (404, json!("No such image: nosuch:img"))
    );
    assert!(d.ok(&["history", "lab:1"]).contains("Imported from -"));

    // tag errors (D5), search
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/images/lab:1/tag?repo=UPPER&tag=x",
        &Value::Null,
    );
    assert_eq!(st, 400);
    assert_eq!(
        v["message"],
        json!("invalid reference format: repository name must be lowercase")
    );
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/images/lab:1/tag?repo=ok&tag=bad:tag",
        &Value::Null,
    );
    assert_eq!(
        (st, v["message"].clone()),
        (400, json!("invalid tag format"))
    );
    let (st, v) = d.api_json("GET", "/v1.41/images/search?term=x", &Value::Null);
    assert_eq!(st, 501);
    assert!(v["message"].as_str().unwrap().contains("not supported yet"));

    // image events: tag, untag, delete, save
    d.ok(&["tag", "lab:1", "lab:2"]);
    d.ok(&["rmi", "lab:2"]);
    let (st, _) = d.api("GET", "/v1.41/images/get?names=lab:1", b"");
    assert_eq!(st, 200);
    d.ok(&["rmi", "lab:1"]);
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &berth_testutil::until_now(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in ["import ", "tag lab:2", "untag ", "save ", "delete "] {
        assert!(events.contains(want), "no {want:?} in:\n{events}");
    }
    // prune: an unknown filter refuses, nothing goes
    let (st, v) = d.api_json(
        "POST",
        &format!(
            "/v1.41/images/prune?filters={}",
            enc(r#"{"bogus":["1"],"dangling":["false"]}"#)
        ),
        &Value::Null,
    );
    assert_eq!(
        (st, v["message"].clone()),
        (400, json!("Invalid filter 'bogus'"))
    );
    assert!(
        d.ok(&["images", "-q"]).trim().len() >= 12,
        "bb:1 is still there"
    );
    // until before every image: nothing pruned
    let (st, v) = d.api_json(
        "POST",
        &format!(
            "/v1.41/images/prune?filters={}",
            enc(r#"{"until":["1000"],"dangling":["false"]}"#)
        ),
        &Value::Null,
    );
    assert_eq!((st, v["ImagesDeleted"].clone()), (200, Value::Null), "{v}");
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}"]).trim(),
        "bb"
    );
}

#[test]
fn commit_records_the_container_and_its_image() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["run", "--name", "cm1", "bb:1", "true"]);
    let cid = d.ok(&["inspect", "-f", "{{.Id}}", "cm1"]).trim().to_owned();
    let base = d
        .ok(&["image", "inspect", "-f", "{{.Id}}", "bb:1"])
        .trim()
        .to_owned();
    let out = d.python(
        r#"
import docker, json
c = docker.from_env(version="1.41")
img = c.containers.get("cm1").commit(repository="cmtest", tag="1", changes=["ENV D=4"], conf={"Env": ["C=3"]})
a = img.attrs
print(json.dumps({"env": a["Config"]["Env"], "container": a["Container"], "parent": a["Parent"]}))
try:
    c.containers.get("cm1").commit(repository="cmtest", tag="2", changes=["RUN true"])
    print("no error")
except docker.errors.APIError as e:
    print(e.response.status_code, e.explanation)
"#,
    );
    let mut lines = out.lines();
    let v: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let env: Vec<String> = serde_json::from_value(v["env"].clone()).unwrap();
    assert_eq!(&env[..2], ["C=3", "D=4"], "conf Env, then changes: {env:?}");
    assert_eq!(v["container"], json!(cid));
    assert_eq!(v["parent"], json!(base));
    assert_eq!(
        lines.next().unwrap(),
        "400 run is not a valid change command"
    );
    assert!(
        d.fails(&["image", "inspect", "cmtest:2"])
            .contains("No such")
    );
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &berth_testutil::until_now(),
        "--filter",
        "event=commit",
        "--format",
        "{{.Type}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events.trim(), format!("container {cid} cm1"));
}

#[test]
fn a_bad_load_is_an_error_in_the_stream_and_leaves_nothing() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    // the rows and files (the listing's "CREATED" moves on by itself)
    let state = || {
        let s = b.store_state();
        (s.db, s.blobs, s.snapshots, s.ingest)
    };
    let before = state();
    let (st, body) = d.api("POST", "/v1.41/images/load?quiet=0", b"not a tar");
    assert_eq!(st, 200, "{body}");
    let line: Value = serde_json::from_str(body.trim()).unwrap();
    assert!(line["error"].is_string(), "{body}");
    assert_eq!(line["errorDetail"]["message"], line["error"]);
    let out = d.python(
        r#"
import docker
c = docker.from_env()
try:
    c.images.load(b"\0" * 2048)
    print("loaded")
except docker.errors.ImageLoadError as e:
    print("ImageLoadError")
"#,
    );
    assert_eq!(out.trim(), "ImageLoadError");
    assert_eq!(state(), before);
}

/// `berth registry serve` on loopback requiring `user:password`.
struct Registry(std::process::Child, u16);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn registry(b: &berth_testutil::Berth, auth: &str) -> Registry {
    let port = free_port();
    let child = b
        .cmd(&["registry", "serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("BERTH_REGISTRY_AUTH", auth)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Registry(child, port)
}

/// An `X-Registry-Auth` header (base64url of docker's AuthConfig).
fn auth_header(user: &str, password: &str, server: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let raw = json!({"username": user, "password": password, "serveraddress": server}).to_string();
    let mut out = String::new();
    for c in raw.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn login_push_pull_and_distribution_against_a_registry_with_auth() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let reg = registry(&b, "alice:s3cret");
    let host = format!("127.0.0.1:{}", reg.1);
    // POST /auth (D3)
    let login = |user: &str, pw: &str, server: &str| {
        d.api_json(
            "POST",
            "/v1.41/auth",
            &json!({"username": user, "password": pw, "serveraddress": server}),
        )
    };
    let (st, v) = login("alice", "s3cret", &host);
    assert_eq!(
        (st, v["Status"].clone()),
        (200, json!("Login Succeeded")),
        "{v}"
    );
    let (st, v) = login("alice", "wrong", &host);
    assert_eq!(st, 401, "{v}");
    let (st, v) = login("a", "b", "127.0.0.1:1");
    assert_eq!(st, 500, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{v}"
    );
    let (st, _) = d.api("POST", "/v1.41/auth", b"");
    assert_eq!(st, 400);
    // the CLI's login, push and pull with its stored credentials
    let out = d.ok(&["login", &host, "-u", "alice", "-p", "s3cret"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let name = format!("{host}/t/bb:1");
    d.ok(&["tag", "bb:1", &name]);
    let pushed = d.ok(&["push", &name]);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {pushed}"))
        .to_owned();
    d.ok(&["rmi", &name]);
    d.ok(&["pull", &name]);
    // distribution (B6), with the header's credentials and without
    let h = auth_header("alice", "s3cret", &host);
    let (st, body) = d.api_with(
        "GET",
        &format!("/v1.41/distribution/{name}/json"),
        &[("X-Registry-Auth", &h)],
        b"",
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], json!(digest), "{v}");
    assert!(v["Descriptor"]["size"].as_u64().unwrap() > 0);
    assert_eq!(v["Platforms"][0]["os"], json!("linux"));
    let bad = auth_header("alice", "wrong", &host);
    let (st, body) = d.api_with(
        "GET",
        &format!("/v1.41/distribution/{name}/json"),
        &[("X-Registry-Auth", &bad)],
        b"",
    );
    assert_eq!(st, 401, "the header's credentials are used: {body}");
    // a pull that cannot start is an HTTP error before any stream (D4)
    let (st, body) = d.api(
        "POST",
        "/v1.41/images/create?fromImage=127.0.0.1:1/nothing&tag=latest",
        b"",
    );
    assert_eq!(st, 500, "{body}");
    assert!(body.contains("connection refused"), "{body}");
    let (st, body) = d.api_with(
        "POST",
        &format!("/v1.41/images/create?fromImage={host}/t/nosuch&tag=1"),
        &[("X-Registry-Auth", &h)],
        b"",
    );
    assert_eq!(st, 404, "{body}");
    let out = d.python(&format!(
        r#"
import docker
c = docker.from_env()
try:
    c.images.pull("127.0.0.1:1/nothing", tag="latest")
    print("pulled")
except docker.errors.APIError as e:
    print(e.response.status_code)
print(c.images.pull("{host}/t/bb", tag="1", auth_config={{"username": "alice", "password": "s3cret"}}).id)
"#
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("500"));
    assert!(lines.next().unwrap().starts_with("sha256:"));
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &berth_testutil::until_now(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in [
        format!("push {host}/t/bb"),
        format!("pull {host}/t/bb"),
        format!("tag {host}/t/bb:1"),
        "untag ".to_owned(),
    ] {
        assert!(events.contains(&want), "no {want:?} in:\n{events}");
    }
}
