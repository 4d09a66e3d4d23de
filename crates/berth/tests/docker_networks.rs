//! Networks, volumes and the system endpoints (info, version, events,
//! prune) through `berth daemon` as the docker CLI and docker-py see them,
//! compared with dockerd's answers (dockerd 20.10's status codes, messages
//! and shapes, as `/work/notes/dockerd-diff.md` recorded them).
//!
//! Subnets chosen here are 198.18.244-247.0/24: outside the ranges the
//! test roots get from `berth_testutil`, one per test.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_testutil::{Daemon, busybox_daemon, have_docker_py};
use serde_json::{Value, json};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// `filters=` of a query, URL-encoded.
fn filters(v: &Value) -> String {
    let mut out = String::new();
    for b in v.to_string().bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("filters={out}")
}

/// The status and `message` of an error answer (which ends in a newline,
/// as dockerd's).
fn api_err(d: &Daemon, method: &str, path: &str, body: &Value) -> (u16, String) {
    let b = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (st, text) = d.api(method, path, &b);
    assert!(text.ends_with('\n'), "{method} {path}: {st} {text:?}");
    let v: Value = serde_json::from_str(&text).unwrap_or_default();
    (st, v["message"].as_str().unwrap_or_default().to_owned())
}

/// A full container id from a name.
fn id_of(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_owned()
}

#[test]
fn a_network_is_created_through_the_daemon() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["network", "create", "n1"]);
    let out = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(out.lines().any(|l| l == "n1"), "{out}");
}

#[test]
fn networks_show_what_was_asked_for_like_dockerd() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    // no options asked for: none reported (compose compares them with its
    // file and recreates the network otherwise)
    let (st, v) = d.api_json("POST", "/v1.41/networks/create", &json!({"Name": "plain"}));
    assert_eq!(st, 201, "{v}");
    let (_, n) = d.api_json("GET", "/v1.41/networks/plain", &Value::Null);
    assert_eq!(n["Options"], json!({}), "{n}");
    assert_eq!(n["IPAM"]["Options"], Value::Null, "{n}");
    assert_eq!(n["Labels"], json!({}));
    assert!(n.get("EnableIPv4").is_none(), "1.47's field at 1.41: {n}");
    let (_, n47) = d.api_json("GET", "/v1.47/networks/plain", &Value::Null);
    assert_eq!(n47["EnableIPv4"], json!(true));
    let cfg = &n["IPAM"]["Config"][0];
    assert!(
        cfg["Subnet"].is_string() && cfg["Gateway"].is_string(),
        "{n}"
    );
    // the CLI sends empty IPAM options: kept as given
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "vendor.option=x",
        "--ipam-opt",
        "foo=bar",
        "--subnet",
        "198.18.244.0/24",
        "--aux-address",
        "router=198.18.244.5",
        "opts",
    ]);
    let out = d.ok(&[
        "network",
        "inspect",
        "opts",
        "--format",
        "{{json .Options}} {{json .IPAM.Options}} {{json .IPAM.Config}}",
    ]);
    assert_eq!(
        out.trim(),
        r#"{"com.docker.network.driver.mtu":"1400","vendor.option":"x"} {"foo":"bar"} [{"Subnet":"198.18.244.0/24","AuxiliaryAddresses":{"router":"198.18.244.5"}}]"#
    );
    d.ok(&["network", "create", "cli"]);
    let out = d.ok(&[
        "network",
        "inspect",
        "cli",
        "--format",
        "{{json .IPAM.Options}}",
    ]);
    assert_eq!(out.trim(), "{}");
    // the MTU is applied, not only reported
    let mtu = d.ok(&[
        "run",
        "--rm",
        "--network",
        "opts",
        "bb:1",
        "cat",
        "/sys/class/net/eth0/mtu",
    ]);
    assert_eq!(mtu.trim(), "1400");
    // the default bridge as dockerd's, its name berth's own
    let (_, br) = d.api_json("GET", "/v1.41/networks/bridge", &Value::Null);
    let o = &br["Options"];
    for (k, v) in [
        ("com.docker.network.bridge.default_bridge", "true"),
        ("com.docker.network.bridge.enable_icc", "true"),
        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        ("com.docker.network.driver.mtu", "1500"),
    ] {
        assert_eq!(o[k], json!(v), "{k}: {br}");
    }
    assert!(o["com.docker.network.bridge.name"].is_string(), "{br}");
    // any name that is not blank, as dockerd (the bridge is named by id)
    for name in ["py net spaces", "ünï/cödé", "-dash", "a\nb"] {
        let (st, v) = d.api_json("POST", "/v1.41/networks/create", &json!({"Name": name}));
        assert_eq!(st, 201, "{name:?}: {v}");
        let id = v["Id"].as_str().unwrap().to_owned();
        let (st, n) = d.api_json("GET", &format!("/v1.41/networks/{id}"), &Value::Null);
        assert_eq!((st, n["Name"].as_str()), (200, Some(name)));
        assert_eq!(n["Options"], json!({}));
        d.ok(&["network", "rm", &id]);
    }
    let out = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!out.contains("spaces"), "{out}");
    // such a name in the path (the CLI escapes it) is the network too
    d.ok(&["network", "create", "my net+1"]);
    let name = d.ok(&["network", "inspect", "my net+1", "--format", "{{.Name}}"]);
    assert_eq!(name.trim(), "my net+1");
    let c = d.ok(&["create", "--network", "my net+1", "bb:1", "true"]);
    d.ok(&["rm", c.trim()]);
    d.ok(&["network", "rm", "my net+1"]);
    for (body, status, msg) in [
        (json!({"Name": ""}), 400, "invalid name: "),
        (json!({"Name": "  "}), 400, "invalid name:   "),
        (
            json!({"Name": "v6", "EnableIPv6": true,
                   "IPAM": {"Config": [{"Subnet": "fd42:1::/64"}]}}),
            501,
            "not supported yet: IPv6 networks",
        ),
        (
            json!({"Name": "icc", "Options": {"com.docker.network.bridge.enable_icc": "false"}}),
            501,
            "not supported yet: network option com.docker.network.bridge.enable_icc=false",
        ),
        (
            json!({"Name": "mtu", "Options": {"com.docker.network.driver.mtu": "abc"}}),
            400,
            "failed to parse com.docker.network.driver.mtu value: abc (not a number)",
        ),
        (
            json!({"Name": "plain"}),
            409,
            "network with name plain already exists",
        ),
    ] {
        assert_eq!(
            api_err(&d, "POST", "/v1.41/networks/create", &body),
            (status, msg.to_owned()),
            "{body}"
        );
    }
    assert!(
        !d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|l| ["v6", "icc", "mtu"].contains(&l)),
        "refused networks left nothing behind"
    );
    // list filters: dangling, unknown ones refused; the list leaves the
    // containers out (API 1.28 on)
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "cli",
        "bb:1",
        "sleep",
        "60",
    ]);
    let q = filters(&json!({"dangling": ["true"]}));
    let (st, list) = d.api_json("GET", &format!("/v1.41/networks?{q}"), &Value::Null);
    assert_eq!(st, 200);
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["opts", "plain"]);
    let (_, all) = d.api_json("GET", "/v1.41/networks", &Value::Null);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|n| n["Containers"] == json!({}))
    );
    let q = filters(&json!({"bogus": ["x"]}));
    assert_eq!(
        api_err(&d, "GET", &format!("/v1.41/networks?{q}"), &Value::Null),
        (400, "Invalid filter 'bogus'".to_owned())
    );
    let err = d.fails(&["network", "ls", "--filter", "bogus=x"]);
    assert!(err.contains("Invalid filter 'bogus'"), "{err}");
    // removal: in use and pre-defined networks are forbidden (403)
    let (st, msg) = api_err(&d, "DELETE", "/v1.41/networks/cli", &Value::Null);
    let cli_id = d.ok(&["network", "inspect", "cli", "--format", "{{.Id}}"]);
    assert_eq!(
        (st, msg),
        (
            403,
            format!(
                "error while removing network: network cli id {} has active endpoints",
                cli_id.trim()
            )
        )
    );
    for pre in ["bridge", "host", "none"] {
        assert_eq!(
            api_err(
                &d,
                "DELETE",
                &format!("/v1.41/networks/{pre}"),
                &Value::Null
            ),
            (
                403,
                format!("{pre} is a pre-defined network and cannot be removed")
            )
        );
    }
    d.ok(&["rm", "-f", "busy"]);
    drop(b);
}

#[test]
fn connect_and_disconnect_answer_like_dockerd() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["network", "create", "--subnet", "198.18.245.0/24", "sub"]);
    d.ok(&["network", "create", "auto"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--network",
        "sub",
        "bb:1",
        "sleep",
        "120",
    ]);
    d.ok(&["create", "--name", "made", "bb:1", "sleep", "120"]);
    let made = id_of(&d, "made");
    let short = &made[..12];
    // a created container's endpoint is recorded at once, shown as dockerd
    // shows it
    let body = json!({"Container": "made", "EndpointConfig": {
        "Aliases": ["a1", "a2"], "Links": ["target:lnk"],
        "IPAMConfig": {"LinkLocalIPs": ["169.254.10.10"]}}});
    let (st, _) = d.api_json("POST", "/v1.41/networks/sub/connect", &body);
    assert_eq!(st, 200);
    let (_, c) = d.api_json("GET", "/v1.41/containers/made/json", &Value::Null);
    let ep = &c["NetworkSettings"]["Networks"]["sub"];
    assert_eq!(ep["Aliases"], json!(["a1", "a2", short]), "{ep}");
    assert_eq!(ep["IPAMConfig"], json!({"LinkLocalIPs": ["169.254.10.10"]}));
    assert_eq!(ep["Links"], json!(["target:lnk"]));
    // again on a container that does not run: docker keeps what it has
    let again = json!({"Container": "made", "EndpointConfig": {"Aliases": ["other"]}});
    let (st, _) = d.api_json("POST", "/v1.41/networks/sub/connect", &again);
    assert_eq!(st, 200);
    let (_, c) = d.api_json("GET", "/v1.41/containers/made/json", &Value::Null);
    assert_eq!(
        c["NetworkSettings"]["Networks"]["sub"]["Aliases"],
        json!(["a1", "a2", short])
    );
    // at start the link-local address and the link are really there
    d.ok(&["start", "made"]);
    let addrs = d.ok(&["exec", "made", "ip", "-4", "addr", "show", "eth1"]);
    assert!(addrs.contains("inet 169.254.10.10/16"), "{addrs}");
    let hosts = d.ok(&["exec", "made", "cat", "/etc/hosts"]);
    let target_ip = d.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.sub.IPAddress}}",
        "target",
    ]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(target_ip.trim()) && l.split_whitespace().any(|w| w == "lnk")),
        "{hosts}"
    );
    d.ok(&["exec", "made", "ping", "-c", "1", "-W", "5", "lnk"]);
    // the statuses and words of dockerd
    let target = id_of(&d, "target");
    let cases: Vec<(&str, Value, u16, String)> = vec![
        (
            "/v1.41/networks/sub/connect",
            json!({"Container": "target"}),
            403,
            "endpoint with name target already exists in network sub".into(),
        ),
        (
            "/v1.41/networks/auto/disconnect",
            json!({"Container": "target"}),
            500,
            format!("container {target} is not connected to network auto"),
        ),
        (
            "/v1.41/networks/auto/disconnect",
            json!({"Container": "target", "Force": true}),
            500,
            format!("container {target} is not connected to network auto"),
        ),
        (
            "/v1.41/networks/auto/disconnect",
            json!({"Container": "nonexistent_ct", "Force": true}),
            404,
            "endpoint nonexistent_ct not found".into(),
        ),
        (
            "/v1.41/networks/auto/disconnect",
            json!({"Container": "nonexistent_ct", "Force": true}),
            404,
            "endpoint nonexistent_ct not found".into(),
        ),
        (
            "/v1.41/networks/auto/disconnect",
            json!({"Container": "nonexistent_ct"}),
            404,
            "No such container: nonexistent_ct".into(),
        ),
        (
            "/v1.41/networks/auto/connect",
            json!({"Container": "target",
                   "EndpointConfig": {"IPAMConfig": {"IPv4Address": "198.18.245.9"}}}),
            400,
            "user specified IP address is supported only when connecting to networks with user \
             configured subnets"
                .into(),
        ),
        (
            "/v1.41/networks/bridge/connect",
            json!({"Container": "target", "EndpointConfig": {"Aliases": ["x"]}}),
            400,
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ),
        (
            "/v1.41/networks/bridge/connect",
            json!({"Container": "target",
                   "EndpointConfig": {"IPAMConfig": {"IPv4Address": "198.18.245.9"}}}),
            400,
            "user specified IP address is supported on user defined networks only".into(),
        ),
        (
            "/v1.41/networks/sub/connect",
            json!({"Container": "made", "EndpointConfig": {}}),
            403,
            "endpoint with name made already exists in network sub".into(),
        ),
        (
            "/v1.41/networks/nosuchnet/connect",
            json!({"Container": "target"}),
            404,
            "network nosuchnet not found".into(),
        ),
    ];
    for (path, body, status, msg) in cases {
        assert_eq!(
            api_err(&d, "POST", path, &body),
            (status, msg),
            "{path} {body}"
        );
    }
    // a container that does not run: dockerd's words say "the network"
    d.ok(&["create", "--name", "idle", "bb:1", "true"]);
    let idle = id_of(&d, "idle");
    assert_eq!(
        api_err(
            &d,
            "POST",
            "/v1.41/networks/auto/disconnect",
            &json!({"Container": "idle"})
        ),
        (
            500,
            format!("container {idle} is not connected to the network auto")
        )
    );
    // the default bridge: off and on again while it runs
    d.ok(&["network", "disconnect", "bridge", "made"]);
    assert_eq!(
        api_err(
            &d,
            "POST",
            "/v1.41/networks/bridge/disconnect",
            &json!({"Container": "made", "Force": true})
        ),
        (
            500,
            format!("container {made} is not connected to network bridge")
        )
    );
    d.ok(&["network", "connect", "bridge", "made"]);
    let err = d.fails(&["network", "connect", "bridge", "made"]);
    assert!(
        err.contains("endpoint with name made already exists in network bridge"),
        "{err}"
    );
    // reconnecting with new aliases, as compose does before a start
    d.ok(&["network", "disconnect", "sub", "made"]);
    d.ok(&["network", "connect", "--alias", "second", "sub", "made"]);
    let (_, c) = d.api_json("GET", "/v1.41/containers/made/json", &Value::Null);
    assert_eq!(
        c["NetworkSettings"]["Networks"]["sub"]["Aliases"],
        json!(["second", short])
    );
    d.ok(&["rm", "-f", "target", "made", "idle"]);
}

#[test]
fn prunes_and_network_events_like_dockerd() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let t0 = now();
    d.ok(&["network", "create", "--label", "keep=1", "kept"]);
    d.ok(&["network", "create", "--label", "drop=1", "dropped"]);
    d.ok(&["network", "create", "evnet"]);
    d.ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "kept",
        "bb:1",
        "true",
    ]);
    // a run on the default bridge and a connect/disconnect while it runs
    d.ok(&["run", "-d", "--name", "ev", "bb:1", "sleep", "120"]);
    let ev = id_of(&d, "ev");
    d.ok(&["network", "connect", "evnet", "ev"]);
    d.ok(&["network", "disconnect", "evnet", "ev"]);
    d.ok(&["rm", "-f", "ev"]);
    // unknown filters: 400 and nothing removed
    for q in [
        json!({"bogus": ["x"]}),
        json!({"until": ["1h", "2h"]}),
        json!({"until": ["abc"]}),
    ] {
        let (st, _) = api_err(
            &d,
            "POST",
            &format!("/v1.41/networks/prune?{}", filters(&q)),
            &Value::Null,
        );
        assert_eq!(st, 400, "{q}");
    }
    let (_, msg) = api_err(
        &d,
        "POST",
        &format!(
            "/v1.41/networks/prune?{}",
            filters(&json!({"bogus": ["x"]}))
        ),
        &Value::Null,
    );
    assert_eq!(msg, "Invalid filter 'bogus'");
    let ls = || d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls().contains("dropped") && ls().contains("evnet"));
    // until: networks made before it; nothing that young here
    let q = filters(&json!({"until": ["1h"]}));
    let (st, v) = d.api_json("POST", &format!("/v1.41/networks/prune?{q}"), &Value::Null);
    assert_eq!((st, &v), (200, &json!({"NetworksDeleted": null})));
    let q = filters(&json!({"label": ["drop=1"]}));
    let (_, v) = d.api_json("POST", &format!("/v1.41/networks/prune?{q}"), &Value::Null);
    assert_eq!(v, json!({"NetworksDeleted": ["dropped"]}));
    // a network a created container names stays (docker's documented
    // rule: "not referenced by any containers"; dockerd 20.10 itself
    // removes it and the container cannot start any more)
    let (_, v) = d.api_json("POST", "/v1.41/networks/prune", &Value::Null);
    assert_eq!(v, json!({"NetworksDeleted": ["evnet"]}));
    assert!(ls().contains("kept"));
    d.ok(&["rm", "user"]);
    let t1 = now() + 1;
    // dockerd's events for all that (the run's connect and disconnect of
    // the default bridge included)
    let q = filters(&json!({"type": ["network"]}));
    let (st, text) = d.api(
        "GET",
        &format!("/v1.41/events?since={t0}&until={t1}&{q}"),
        b"",
    );
    assert_eq!(st, 200);
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String, Value)> = events
        .iter()
        .map(|e| {
            let mut a = e["Actor"]["Attributes"].clone();
            if let Some(c) = a.get_mut("container") {
                *c = json!(c.as_str() == Some(ev.as_str()));
            }
            (
                e["Action"].as_str().unwrap().to_owned(),
                e["Actor"]["Attributes"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a,
            )
        })
        .collect();
    let want = |action: &str, name: &str, container: bool| {
        let mut a = json!({"name": name, "type": "bridge"});
        if container {
            a["container"] = json!(true);
        }
        (action.to_owned(), name.to_owned(), a)
    };
    let expected = vec![
        want("create", "kept", false),
        want("create", "dropped", false),
        want("create", "evnet", false),
        want("connect", "bridge", true),
        want("connect", "evnet", true),
        want("disconnect", "evnet", true),
        want("disconnect", "bridge", true),
        want("destroy", "dropped", false),
        want("destroy", "evnet", false),
    ];
    let picked: Vec<_> = seen
        .iter()
        .filter(|(a, _, _)| a != "prune")
        .cloned()
        .collect();
    assert_eq!(picked, expected, "{text}");
    let prunes: Vec<&Value> = events.iter().filter(|e| e["Action"] == "prune").collect();
    assert_eq!(prunes.len(), 3, "{text}");
    for p in prunes {
        assert_eq!(
            p["Actor"],
            json!({"ID": "", "Attributes": {"reclaimed": "0"}})
        );
    }
    for e in &events {
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["Action", "Actor", "Type", "scope", "time", "timeNano"]
        );
    }
    // `until` alone replays what happened before it
    let (_, text2) = d.api("GET", &format!("/v1.41/events?until={t1}&{q}"), b"");
    assert_eq!(text2.lines().count(), events.len(), "{text2}");
    // `since` after `until`: dockerd's 400
    assert_eq!(
        api_err(
            &d,
            "GET",
            &format!("/v1.41/events?since={t1}&until={t0}"),
            &Value::Null
        ),
        (
            400,
            format!("`since` time ({t1}) cannot be after `until` time ({t0})")
        )
    );
}

#[test]
fn volumes_like_dockerd() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/volumes/create",
        &json!({"Name": "plainvol"}),
    );
    assert_eq!(st, 201);
    assert_eq!((&v["Labels"], &v["Options"]), (&Value::Null, &Value::Null));
    // seconds, RFC 3339, UTC
    let created = v["CreatedAt"].as_str().unwrap();
    assert_eq!(created.len(), 20, "{created}");
    assert!(
        created.ends_with('Z') && !created.contains('.'),
        "{created}"
    );
    let (_, v) = d.api_json("GET", "/v1.41/volumes/plainvol", &Value::Null);
    assert_eq!(v["CreatedAt"].as_str(), Some(created));
    d.ok(&["volume", "create", "--label", "a=b", "labelled"]);
    let out = d.ok(&[
        "volume",
        "inspect",
        "labelled",
        "--format",
        "{{json .Labels}} {{json .Options}}",
    ]);
    assert_eq!(out.trim(), r#"{"a":"b"} null"#);
    d.ok(&["volume", "create", "used"]);
    d.ok(&[
        "create", "--name", "user", "-v", "used:/u", "-v", "/anon", "bb:1", "true",
    ]);
    d.ok(&["rm", "user"]);
    d.ok(&[
        "create", "--name", "holder", "-v", "used:/u", "bb:1", "true",
    ]);
    let names = || {
        let mut v: Vec<String> = d
            .ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names().len(), 4, "{:?}", names());
    // unknown filters (and `all` before 1.42): 400, nothing removed
    for (path, q, msg) in [
        (
            "/v1.41/volumes/prune",
            json!({"all": ["true"]}),
            "Invalid filter 'all'",
        ),
        (
            "/v1.47/volumes/prune",
            json!({"bogus": ["x"]}),
            "Invalid filter 'bogus'",
        ),
        (
            "/v1.41/volumes/prune",
            json!({"until": ["1h"]}),
            "Invalid filter 'until'",
        ),
        (
            "/v1.47/volumes/prune",
            json!({"all": ["maybe"]}),
            "Invalid filter 'all=[maybe]'",
        ),
    ] {
        assert_eq!(
            api_err(&d, "POST", &format!("{path}?{}", filters(&q)), &Value::Null),
            (400, msg.to_owned()),
            "{path} {q}"
        );
    }
    assert_eq!(names().len(), 4);
    // 1.42 on: anonymous volumes only, unless all=true
    let (st, v) = d.api_json("POST", "/v1.47/volumes/prune", &Value::Null);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["VolumesDeleted"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(names(), ["labelled", "plainvol", "used"]);
    let q = filters(&json!({"all": ["true"], "label": ["a=b"]}));
    let (_, v) = d.api_json("POST", &format!("/v1.47/volumes/prune?{q}"), &Value::Null);
    assert_eq!(v["VolumesDeleted"], json!(["labelled"]));
    // before 1.42: every unused volume, named ones too
    let (_, v) = d.api_json("POST", "/v1.41/volumes/prune", &Value::Null);
    assert_eq!(v["VolumesDeleted"], json!(["plainvol"]), "{v}");
    assert_eq!(names(), ["used"]);
    d.ok(&["rm", "holder"]);
    let q = filters(&json!({"all": ["1"]}));
    let (_, v) = d.api_json("POST", &format!("/v1.47/volumes/prune?{q}"), &Value::Null);
    assert_eq!(v["VolumesDeleted"], json!(["used"]), "{v}");
    let (_, text) = d.api(
        "GET",
        &format!(
            "/v1.41/events?until={}&{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1,
            filters(&json!({"type": ["volume"], "event": ["prune"]}))
        ),
        b"",
    );
    let prunes: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(prunes.len(), 4, "{text}");
    assert!(
        prunes
            .iter()
            .all(|p| p["Actor"]["ID"] == "" && p["Actor"]["Attributes"]["reclaimed"].is_string()),
        "{text}"
    );
}

/// One raw request on the daemon's socket: the whole answer's head and
/// body as text.
fn raw(d: &Daemon, request: &str) -> String {
    let mut s = UnixStream::connect(&d.sock).expect("connect");
    s.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn system_endpoints_like_dockerd() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let (st, info) = d.api_json("GET", "/v1.41/info", &Value::Null);
    assert_eq!(st, 200);
    // every key dockerd 20.10 sends
    for k in [
        "ID",
        "Containers",
        "ContainersRunning",
        "ContainersPaused",
        "ContainersStopped",
        "Images",
        "Driver",
        "DriverStatus",
        "Plugins",
        "MemoryLimit",
        "SwapLimit",
        "KernelMemory",
        "KernelMemoryTCP",
        "CpuCfsPeriod",
        "CpuCfsQuota",
        "CPUShares",
        "CPUSet",
        "PidsLimit",
        "IPv4Forwarding",
        "BridgeNfIptables",
        "BridgeNfIp6tables",
        "Debug",
        "NFd",
        "OomKillDisable",
        "NGoroutines",
        "SystemTime",
        "LoggingDriver",
        "CgroupDriver",
        "CgroupVersion",
        "NEventsListener",
        "KernelVersion",
        "OperatingSystem",
        "OSVersion",
        "OSType",
        "Architecture",
        "IndexServerAddress",
        "RegistryConfig",
        "NCPU",
        "MemTotal",
        "GenericResources",
        "DockerRootDir",
        "HttpProxy",
        "HttpsProxy",
        "NoProxy",
        "Name",
        "Labels",
        "ExperimentalBuild",
        "ServerVersion",
        "Runtimes",
        "DefaultRuntime",
        "Swarm",
        "LiveRestoreEnabled",
        "Isolation",
        "InitBinary",
        "ContainerdCommit",
        "RuncCommit",
        "InitCommit",
        "SecurityOptions",
        "DefaultAddressPools",
        "Warnings",
    ] {
        assert!(info.get(k).is_some(), "info lacks {k}: {info}");
    }
    let id = info["ID"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(
        info["Plugins"]["Network"]
            .as_array()
            .unwrap()
            .contains(&json!("bridge"))
    );
    assert_eq!(info["Plugins"]["Volume"], json!(["local"]));
    assert_eq!(info["Warnings"], Value::Null);
    assert_eq!(info["Labels"], json!([]));
    assert_eq!(info["IndexServerAddress"], "https://index.docker.io/v1/");
    assert!(info["RegistryConfig"]["IndexConfigs"]["docker.io"].is_object());
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    // the address pool is the root's
    let net: Value =
        serde_json::from_slice(&std::fs::read(b.root().join("net.json")).unwrap()).unwrap();
    assert_eq!(
        info["DefaultAddressPools"],
        json!([{"Base": net["pool"], "Size": net["pool_prefix"]}])
    );
    // the id stays across a restart of the daemon
    let mut d = d;
    d.kill();
    let d = Daemon::start(&b);
    let (_, again) = d.api_json("GET", "/v1.41/info", &Value::Null);
    assert_eq!(again["ID"].as_str(), Some(id));
    let out = d.ok(&[
        "info",
        "--format",
        "{{json .Plugins.Volume}} {{.Swarm.LocalNodeState}}",
    ]);
    assert_eq!(out.trim(), r#"["local"] inactive"#);
    let out = d.ok(&["info"]);
    assert!(out.contains("Default Address Pools"), "{out}");
    // version: no Go; a commit; experimental false
    let (_, v) = d.api_json("GET", "/version", &Value::Null);
    assert_eq!(v["Components"][0]["Name"], "Engine");
    assert_eq!(v["Components"][0]["Details"]["Experimental"], "false");
    assert_eq!(v["GoVersion"], "");
    assert!(!v["GitCommit"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(v["GitCommit"], v["Components"][0]["Details"]["GitCommit"]);
    let out = d.ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ]);
    assert_eq!(out.split_whitespace().count(), 2, "{out}");
    // paths as dockerd routes them
    for (path, status, msg) in [
        ("/version/", 404, "page not found"),
        ("/v1.41/containers/json/", 404, "page not found"),
        ("/v1.41/", 404, "page not found"),
        ("/v1.x/version", 404, "page not found"),
        (
            "/v2.0/version",
            400,
            "client version 2.0 is too new. Maximum supported API version is 1.47",
        ),
        ("/v1.41/session", 404, "page not found"),
        (
            "/v1.41/plugins/nosuch/json",
            404,
            "plugin \"nosuch\" not found",
        ),
        (
            "/v1.41/swarm",
            503,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm \
             join\" to connect this node to swarm and try again.",
        ),
    ] {
        assert_eq!(
            api_err(&d, "GET", path, &Value::Null),
            (status, msg.to_owned()),
            "{path}"
        );
    }
    let (st, text) = d.api("GET", "/v1/version", b"");
    assert_eq!(
        (st, text.as_str()),
        (
            400,
            "client version 1 is too old. Minimum supported API version is 1.12, please \
             upgrade your client to a newer version\n"
        )
    );
    assert_eq!(
        d.api("GET", "/v1.41/plugins", b""),
        (200, "[]\n".to_owned())
    );
    // BuildKit's endpoints without an upgrade: dockerd's answers
    assert_eq!(
        api_err(&d, "POST", "/v1.41/session", &Value::Null),
        (400, "no upgrade proto in request".to_owned())
    );
    assert_eq!(
        api_err(&d, "POST", "/v1.41/grpc", &Value::Null),
        (500, "no upgrade proto in request".to_owned())
    );
    assert_eq!(
        api_err(&d, "POST", "/v1.41/swarm/leave", &Value::Null),
        (503, "This node is not part of a swarm".to_owned())
    );
    let manager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker \
                   swarm join\" to connect this node to swarm and try again.";
    for path in [
        "/v1.41/nodes",
        "/v1.41/services",
        "/v1.41/tasks",
        "/v1.41/secrets",
        "/v1.41/configs",
        "/v1.41/swarm/unlockkey",
    ] {
        assert_eq!(
            api_err(&d, "GET", path, &Value::Null),
            (503, manager.to_owned()),
            "{path}"
        );
    }
    // berth cannot become a swarm node: said so
    for path in ["/v1.41/swarm/init", "/v1.41/swarm/join"] {
        assert_eq!(
            api_err(&d, "POST", path, &json!({})),
            (501, "not supported yet: swarm mode".to_owned()),
            "{path}"
        );
    }
    let err = d.fails(&["swarm", "init"]);
    assert!(err.contains("not supported yet: swarm mode"), "{err}");
    let out = d.ok(&["plugin", "ls", "--format", "{{.Name}}"]);
    assert_eq!(out.trim(), "");
    let (st, _) = d.api_with(
        "POST",
        "/v1.41/session",
        &[("Upgrade", "h2c"), ("Connection", "Upgrade")],
        b"",
    );
    assert_eq!(st, 501);
    // HEAD /_ping says its length
    let head = raw(
        &d,
        "HEAD /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    )
    .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ncontent-length: 0\r\n"), "{head}");
    assert!(head.contains("\r\napi-version: 1.47\r\n"), "{head}");
    // an events stream is counted while it lasts
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"GET /v1.41/events HTTP/1.1\r\nHost: d\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    let (_, info) = d.api_json("GET", "/v1.41/info", &Value::Null);
    assert_eq!(info["NEventsListener"], json!(1));
}

#[test]
fn docker_py_networks_volumes_and_system() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    if !have_docker_py() {
        return;
    }
    let out = d.python(
        r#"
import docker
from docker.types import IPAMConfig, IPAMPool
c = docker.from_env()
def status(f):
    try:
        f()
    except docker.errors.APIError as e:
        return e.status_code, e.explanation
    return None
n = c.networks.create("py net spaces")
print("spaces", c.networks.get(n.id).name)
print("v6", status(lambda: c.networks.create("v6", enable_ipv6=True,
    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="fd42:1::/64")])))[0])
aux = c.networks.create("pyaux", ipam=IPAMConfig(pool_configs=[IPAMPool(
    subnet="198.18.246.0/24", aux_addresses={"router": "198.18.246.5"})]))
print("aux", aux.attrs["IPAM"]["Config"][0]["AuxiliaryAddresses"], aux.attrs["Options"])
t = c.containers.run("bb:1", "sleep 120", name="pyt", network="pyaux", detach=True)
m = c.containers.create("bb:1", "sleep 120", name="pym")
c.api.connect_container_to_network(m.id, aux.id, aliases=["x1"], links=[("pyt", "lnk")],
                                   link_local_ips=["169.254.10.10"])
ep = c.api.inspect_container(m.id)["NetworkSettings"]["Networks"]["pyaux"]
print("created", "x1" in ep["Aliases"], ep["IPAMConfig"], ep["Links"])
print("twice", status(lambda: aux.connect(t))[0])
print("notconn", status(lambda: n.disconnect(t)))
print("forcegone", status(lambda: n.disconnect("nonexistent_ct", force=True)))
print("nosubnet", status(lambda: n.connect(t, ipv4_address="198.18.246.9")))
print("inuse", status(lambda: aux.remove())[0])
print("dangling", sorted(x.name for x in c.networks.list(filters={"dangling": True})))
print("bogus", status(lambda: c.networks.list(filters={"bogus": "x"})))
t.remove(force=True); m.remove(force=True)
print("pruned", c.networks.prune())
c.volumes.create("pyvol")
v = c.volumes.get("pyvol")
print("vol", v.attrs["Labels"], v.attrs["Options"], v.attrs["CreatedAt"].endswith("Z"))
print("vbogus", status(lambda: c.volumes.prune(filters={"bogus": "x"}))[0])
i = c.info()
print("info", bool(i["ID"]), "bridge" in i["Plugins"]["Network"], i["Plugins"]["Volume"], i["Warnings"])
ver = c.version()
print("version", ver["Components"][0]["Details"]["Experimental"], bool(ver["GitCommit"]))
"#,
    );
    let want = [
        "spaces py net spaces",
        "v6 501",
        "aux {'router': '198.18.246.5'} {}",
        "created True {'LinkLocalIPs': ['169.254.10.10']} ['pyt:lnk']",
        "twice 403",
        "forcegone (404, 'endpoint nonexistent_ct not found')",
        "nosubnet (400, 'user specified IP address is supported only when connecting to networks with user configured subnets')",
        "inuse 403",
        "dangling ['py net spaces']",
        "bogus (400, \"Invalid filter 'bogus'\")",
        "pruned {'NetworksDeleted': ['py net spaces', 'pyaux']}",
        "vol None None True",
        "vbogus 400",
        "info True True ['local'] None",
        "version false True",
    ];
    for w in want {
        assert!(out.lines().any(|l| l == w), "{w:?} missing in:\n{out}");
    }
    let notconn = out.lines().find(|l| l.starts_with("notconn")).unwrap();
    assert!(
        notconn.starts_with("notconn (500, 'container ")
            && notconn.ends_with(" is not connected to network py net spaces')"),
        "{notconn}"
    );
}

#[test]
fn mac_and_auxiliary_addresses_are_honoured() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let eth0 = |name: &str| d.ok(&["start", "-a", name]).trim().to_owned();
    // API 1.43 and older: Config.MacAddress
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/containers/create?name=oldmac",
        &json!({"Image": "bb:1", "Cmd": ["cat", "/sys/class/net/eth0/address"],
                "MacAddress": "02:42:c6:12:00:99"}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(eth0("oldmac"), "02:42:c6:12:00:99");
    // what CLI 28 sends: the endpoint's MacAddress, on a user network too
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "198.18.247.0/24",
        "--aux-address",
        "router=198.18.247.2",
        "aux",
    ]);
    for (name, net, mac) in [
        ("newmac", "bridge", "02:42:c6:12:00:98"),
        ("usermac", "aux", "02:42:c6:12:00:97"),
    ] {
        let (st, v) = d.api_json(
            "POST",
            &format!("/v1.47/containers/create?name={name}"),
            &json!({"Image": "bb:1", "Cmd": ["cat", "/sys/class/net/eth0/address"],
                    "HostConfig": {"NetworkMode": net},
                    "NetworkingConfig": {"EndpointsConfig": {net: {"MacAddress": mac}}}}),
        );
        assert_eq!(st, 201, "{v}");
        assert_eq!(eth0(name), mac, "{name}");
    }
    // and whatever the CLI's version sends for --mac-address
    let out = d.ok(&[
        "run",
        "--rm",
        "--mac-address",
        "02:42:c6:12:00:96",
        "bb:1",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out.trim(), "02:42:c6:12:00:96");
    // an auxiliary address is never given to a container (the first one
    // after the gateway would be it otherwise)
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "aux",
        "bb:1",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains("inet 198.18.247.3/24"), "{out}");
    let err = d.fails(&[
        "run",
        "--rm",
        "--network",
        "aux",
        "--ip",
        "198.18.247.2",
        "bb:1",
        "true",
    ]);
    assert!(err.contains("198.18.247.2"), "{err}");
    d.ok(&["rm", "oldmac", "newmac", "usermac"]);
}
