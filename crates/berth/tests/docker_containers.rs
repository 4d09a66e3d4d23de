//! Containers, exec and stats through `berth daemon` as the docker CLI and
//! docker-py see them, compared with dockerd's answers.

use std::path::Path;

use berth_testutil::busybox_daemon;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn a_container_runs_through_the_daemon() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    assert_eq!(d.ok(&["run", "--rm", "bb:1", "echo", "hi"]), "hi\n");
}

/// docker-py's `attach(logs=True, stream=False)` on an exited container
/// gets its output and returns (it hung on berth, and lost frames that
/// arrived with the 101's headers); with `demux` each stream apart. The
/// same over plain HTTP (no Upgrade) as a 200 body.
#[test]
fn attach_with_logs_replays_an_exited_container() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&[
        "run",
        "--name",
        "said",
        "bb:1",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let out = d.python(
        r#"
import docker
c = docker.from_env().containers.get("said")
print(all(c.attach(logs=True, stream=False) == b"one\ntwo\n" for _ in range(5)))
print(c.attach(logs=True, stream=False, demux=True))
print(c.attach(logs=True, stream=False, stderr=False))
"#,
    );
    assert_eq!(
        out,
        r"True
(b'one\n', b'two\n')
b'one\n'
",
        "{out}"
    );
    let (st, body) = d.api(
        "POST",
        "/v1.41/containers/said/attach?logs=1&stream=0&stdout=1&stderr=1",
        b"",
    );
    assert_eq!(st, 200);
    assert!(body.contains("one") && body.contains("two"), "{body}");
}

/// The environment and user a process gets, as dockerd 20.10 gives them
/// (HOME from the image's /etc/passwd, groups=gid for `-u uid:gid`), and
/// `Config.Env` holding only the image's and the requested entries.
#[test]
fn env_home_and_groups_as_dockerd() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    assert_eq!(
        d.ok(&["run", "--rm", "bb:1", "sh", "-c", "echo $HOME"]),
        "/root\n"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "-u", "12345:777", "bb:1", "id"]),
        "uid=12345 gid=777 groups=777\n"
    );
    d.ok(&[
        "run", "-d", "--name", "envc", "-e", "A=1", "bb:1", "sleep", "300",
    ]);
    assert_eq!(d.ok(&["exec", "envc", "sh", "-c", "echo $HOME"]), "/root\n");
    assert_eq!(
        d.ok(&["exec", "-u", "12345:777", "envc", "id"]),
        "uid=12345 gid=777 groups=777\n"
    );
    assert_eq!(
        d.ok(&["exec", "-u", "nobody", "envc", "sh", "-c", "echo $HOME"]),
        "/home\n"
    );
    // HOSTNAME, HOME and PATH are the process's, not the config's
    let env = d.ok(&["inspect", "-f", "{{json .Config.Env}}", "envc"]);
    assert_eq!(env.trim(), r#"["A=1"]"#);
    let host = d.ok(&["exec", "envc", "sh", "-c", "echo $HOSTNAME $(hostname)"]);
    let h: Vec<&str> = host.split_whitespace().collect();
    assert!(h.len() == 2 && h[0] == h[1], "{host}");
    d.ok(&["create", "--name", "noenv", "bb:1", "true"]);
    let (_, v) = d.api_json("GET", "/containers/noenv/json", &serde_json::Value::Null);
    assert_eq!(v["Config"]["Env"], serde_json::Value::Null, "dockerd: null");
    d.ok(&["rm", "-f", "envc", "noenv"]);
}

/// An exec that cannot start exits 126 with dockerd's message, whatever
/// the reason (docker CLI and docker-py).
#[test]
fn exec_start_failures_exit_126() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["run", "-d", "--name", "ex", "bb:1", "sleep", "300"]);
    for (args, msg) in [
        (
            &["exec", "ex", "/nonexistent"][..],
            "exec: \"/nonexistent\": stat /nonexistent: no such file or directory: unknown",
        ),
        (
            &["exec", "-w", "/nonexistent", "ex", "true"][..],
            "chdir to cwd (\"/nonexistent\") set in config.json failed: no such file or directory",
        ),
        (
            &["exec", "-u", "nosuchuser", "ex", "id"][..],
            "unable to find user nosuchuser: no matching entries in passwd file",
        ),
    ] {
        let o = d.docker(args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(126), "{args:?}: {all}");
        assert!(all.contains(msg), "{args:?}: {all}");
    }
    let out = d.python(
        "import docker\n\
         c = docker.from_env().containers.get('ex')\n\
         r = c.exec_run(['/nonexistent'])\n\
         print(r.exit_code, r.output.decode().startswith('OCI runtime exec failed: exec failed:'))\n\
         r = c.exec_run('id', user='nosuchuser')\n\
         print(r.exit_code)\n\
         eid = c.client.api.exec_create(c.id, ['/nonexistent'])['Id']\n\
         c.client.api.exec_start(eid)\n\
         i = c.client.api.exec_inspect(eid)\n\
         print(i['ExitCode'], 'user' in i['ProcessConfig'])\n",
    );
    assert_eq!(out, "126 True\n126\n126 False\n");
    d.ok(&["rm", "-f", "ex"]);
}

/// `stats` as dockerd 20.10 sends it: `networks` per interface of the
/// container's namespace (none with `--network none`), `pids_stats`
/// without an unset limit, the blkio lists `[]` while it runs.
#[test]
fn stats_have_networks_and_dockerd_s_shape() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["run", "-d", "--name", "sn", "bb:1", "sleep", "300"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "snone",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ]);
    let gw = d.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "sn"]);
    d.ok(&["exec", "sn", "ping", "-c", "1", "-W", "2", gw.trim()]);
    let out = d.python(
        "import docker\n\
         c = docker.from_env()\n\
         s = c.containers.get('sn').stats(stream=False)\n\
         e = s['networks']['eth0']\n\
         print(sorted(e), e['rx_bytes'] > 0 and e['tx_packets'] > 0)\n\
         print('limit' in s['pids_stats'], s['blkio_stats']['sectors_recursive'], 'failcnt' in s['memory_stats'])\n\
         print('networks' in c.containers.get('snone').stats(stream=False))\n",
    );
    assert_eq!(
        out,
        "['rx_bytes', 'rx_dropped', 'rx_errors', 'rx_packets', 'tx_bytes', 'tx_dropped', 'tx_errors', 'tx_packets'] True\n\
         False [] False\n\
         False\n"
    );
    // the CLI's NET I/O column reads them
    let s = d.ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "sn"]);
    assert!(!s.starts_with("0B / 0B"), "{s}");
    d.ok(&["rm", "-f", "sn", "snone"]);
}

/// The other container endpoints as dockerd 20.10 answers them: top with
/// ps_args, filters checked before anything is listed or pruned, sizes,
/// diff, update, pause, wait, archive, and invalid query values refused
/// with nothing done.
#[test]
fn container_endpoints_answer_as_dockerd() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let null = serde_json::Value::Null;
    d.ok(&["run", "-d", "--name", "ep", "bb:1", "sleep", "300"]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "ep"]).trim().to_owned();
    // top: the host's ps -ef, or the caller's options
    let top = d.ok(&["top", "ep"]);
    let first = top.lines().next().unwrap_or("");
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    assert!(top.contains("root") && top.contains("sleep 300"), "{top}");
    assert_eq!(
        top.lines().count(),
        2,
        "the container's process only: {top}"
    );
    let (st, v) = d.api_json("GET", "/containers/ep/top?ps_args=-o%20pid,comm", &null);
    assert_eq!(st, 200);
    assert_eq!(v["Titles"], serde_json::json!(["PID", "COMMAND"]));
    assert_eq!(v["Processes"][0][1], "sleep");
    // filters: refused before anything is listed or removed
    d.ok(&["create", "--name", "old", "bb:1", "true"]);
    for path in [
        "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        "/containers/json?filters=%7B%22status%22%3A%5B%22bogus%22%5D%7D",
        "/containers/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
    ] {
        let method = if path.contains("prune") {
            "POST"
        } else {
            "GET"
        };
        let (st, v) = d.api_json(method, path, &null);
        assert_eq!(st, 400, "{path}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Invalid filter '"),
            "{v}"
        );
    }
    let (st, v) = d.api_json(
        "POST",
        "/containers/prune?filters=%7B%22until%22%3A%5B%221h%22%5D%7D",
        &null,
    );
    assert_eq!((st, &v["ContainersDeleted"]), (200, &null), "until: {v}");
    d.ok(&["inspect", "old"]);
    // sizes
    let (_, v) = d.api_json("GET", "/containers/json?size=1", &null);
    assert!(v[0]["SizeRootFs"].as_u64().unwrap_or(0) > 0, "{v}");
    let ps = d.ok(&["ps", "-s", "--format", "{{.Size}}", "--filter", "name=ep"]);
    assert!(ps.contains("virtual"), "{ps}");
    // diff, update, pause, unpause
    let (st, v) = d.api_json("GET", "/containers/old/changes", &null);
    assert_eq!((st, v), (200, null.clone()));
    let (st, v) = d.api_json(
        "POST",
        "/containers/ep/update",
        &serde_json::json!({"CpuShares": 512}),
    );
    assert_eq!((st, v), (200, serde_json::json!({"Warnings": null})));
    d.ok(&["pause", "ep"]);
    let (st, v) = d.api_json("POST", "/containers/ep/pause", &null);
    assert_eq!(st, 409);
    assert_eq!(v["message"], format!("Container {id} is already paused"));
    d.ok(&["unpause", "ep"]);
    let (st, v) = d.api_json("POST", "/containers/ep/unpause", &null);
    assert_eq!(st, 500);
    assert_eq!(v["message"], format!("Container {id} is not paused"));
    let (st, v) = d.api_json("GET", "/containers/ep/archive?path=/nope", &null);
    assert_eq!(st, 404);
    assert_eq!(
        v["message"],
        "Could not find the file /nope in container ep"
    );
    // invalid query values: 400, nothing stopped
    for (method, path) in [
        ("POST", "/containers/ep/stop?t=abc"),
        ("POST", "/containers/ep/restart?t=abc"),
        ("POST", "/containers/ep/resize?h=abc&w=10"),
        ("GET", "/containers/json?limit=abc"),
        ("GET", "/containers/ep/logs?stdout=1&tail=abc"),
    ] {
        let (st, _) = d.api(method, path, b"");
        assert_eq!(st, 400, "{method} {path}");
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "ep"]).trim(),
        "running"
    );
    // exec inspect leaves an empty user out; ps quotes arguments with spaces
    let out = d.python(
        "import docker\n\
         c = docker.from_env()\n\
         eid = c.api.exec_create('ep', ['true'])['Id']\n\
         print('user' in c.api.exec_inspect(eid)['ProcessConfig'])\n",
    );
    assert_eq!(out, "False\n");
    d.ok(&["create", "--name", "qq", "bb:1", "sh", "-c", "echo a b"]);
    let cmd = d.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.Command}}",
        "--filter",
        "name=q",
    ]);
    assert_eq!(cmd.trim(), "\"sh -c 'echo a b'\"");
    d.ok(&["rm", "-f", "ep", "old", "qq"]);
}

/// dockerd's events around a run: attach, volume mount before start and
/// unmount after die, resize with its size, container prune.
#[test]
fn attach_resize_volume_and_prune_events() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    assert_eq!(
        d.ok(&[
            "run",
            "--name",
            "evr",
            "-v",
            "evv:/data",
            "bb:1",
            "echo",
            "hi"
        ]),
        "hi\n"
    );
    d.ok(&["run", "-d", "--name", "evs", "bb:1", "sleep", "300"]);
    let (st, _) = d.api("POST", "/containers/evs/resize?h=20&w=30", b"");
    assert_eq!(st, 200);
    d.ok(&["rm", "-f", "evs"]);
    d.ok(&["container", "prune", "-f"]);
    let until = berth_testutil::until_now();
    let out = d.ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.destination}}{{.Actor.Attributes.height}}",
    ]);
    // the CLI prints <no value> for an attribute an event lacks
    let out = out.replace("<no value>", "");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let at = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("{l}: {out}"))
    };
    assert!(at("container attach") < at("volume mount /data"), "{out}");
    assert!(at("volume mount /data") < at("container start"), "{out}");
    assert!(at("container die") < at("volume unmount"), "{out}");
    at("container resize 20");
    at("container prune");
}

/// Runs `cmd` (a docker command line) on a terminal made by `script`,
/// typing each `(delay, bytes)` after its delay; the exit code and what the
/// terminal showed. The command is ended after 20 s so a detach that does
/// not happen fails the test instead of hanging it.
fn on_a_terminal(
    d: &berth_testutil::Daemon,
    cmd: &str,
    typed: &[(u64, &'static [u8])],
    config_dir: Option<&Path>,
) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut c = Command::new("script");
    c.args(["-eqc", cmd, "/dev/null"])
        .envs(d.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(dir) = config_dir {
        c.env("DOCKER_CONFIG", dir);
    }
    let mut child = c.spawn().expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    let typed = typed.to_vec();
    let typist = std::thread::spawn(move || {
        for (ms, bytes) in typed {
            std::thread::sleep(Duration::from_millis(ms));
            if stdin.write_all(bytes).is_err() {
                return;
            }
        }
        // keep the terminal open while the command reacts
        std::thread::sleep(Duration::from_secs(3));
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = typist.join();
    (status, out)
}

/// Detach keys as dockerd honours them: ctrl-p,ctrl-q by default,
/// `--detach-keys`, and the `detachKeys` of the docker CLI's config file,
/// for attach and for exec; the container (and the exec) keep running.
#[test]
fn detach_keys_leave_the_container_and_the_exec_running() {
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    d.ok(&["run", "-dit", "--name", "dk", "bb:1", "sh"]);
    let running = || d.ok(&["inspect", "-f", "{{.State.Running}}", "dk"]);
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        r#"{"detachKeys": "ctrl-x,x"}"#,
    )
    .unwrap();
    for (cmd, keys, config) in [
        ("docker attach dk", &b"\x10\x11"[..], None),
        (
            "docker attach --detach-keys ctrl-x,x dk",
            &b"\x18x"[..],
            None,
        ),
        ("docker attach dk", &b"\x18x"[..], Some(cfg.path())),
    ] {
        let (code, out) = on_a_terminal(&d, cmd, &[(1000, keys)], config);
        assert_eq!(code, Some(1), "{cmd}: {out}");
        assert!(out.contains("read escape sequence"), "{cmd}: {out}");
        assert_eq!(running(), "true\n", "{cmd}");
    }
    // an exec detached from keeps running in the container
    let (code, out) = on_a_terminal(
        &d,
        "docker exec -it dk sh",
        &[(1000, b"echo in-exec\r"), (1000, b"\x10\x11")],
        None,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("in-exec") && out.contains("read escape sequence"),
        "{out}"
    );
    let top = d.ok(&["top", "dk"]);
    assert_eq!(
        top.lines().filter(|l| l.ends_with(" sh")).count(),
        2,
        "{top}"
    );
    d.ok(&["rm", "-f", "dk"]);
}

/// Details dockerd 20.10 answers that clients rely on: an exec started
/// without `Upgrade` streams as a 200 body, framed by the start request's
/// `Tty` (not the create's); `Env` entries without `=` are kept in the
/// config (and left out of the process); `max-file` alone is a valid log
/// option; `Runtime: runc` is accepted (reported back), another is "not
/// supported yet".
#[test]
fn exec_framing_env_and_options_as_dockerd() {
    use serde_json::{Value, json};
    let Some((_b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/containers/create?name=det",
        &json!({"Image": "bb:1", "Cmd": ["sleep", "300"], "Env": ["NOEQ", "A=1"],
                "HostConfig": {"Runtime": "runc",
                               "LogConfig": {"Type": "json-file", "Config": {"max-file": "3"}}}}),
    );
    assert_eq!(st, 201, "{v}");
    let (_, c) = d.api_json("GET", "/v1.41/containers/det/json", &Value::Null);
    assert_eq!(c["Config"]["Env"], json!(["NOEQ", "A=1"]));
    assert_eq!(c["HostConfig"]["Runtime"], "runc");
    assert_eq!(
        c["HostConfig"]["LogConfig"]["Config"],
        json!({"max-file": "3"})
    );
    let (st, v) = d.api_json(
        "POST",
        "/v1.41/containers/create",
        &json!({"Image": "bb:1", "HostConfig": {"Runtime": "nope"}}),
    );
    // (dockerd: 400 "Unknown runtime specified nope"; berth has one)
    assert_eq!(st, 501, "{v}");
    assert!(v["message"].as_str().unwrap().contains("nope"), "{v}");
    d.ok(&["start", "det"]);
    let env = d.ok(&["exec", "det", "env"]);
    assert!(env.contains("A=1\n") && !env.contains("NOEQ"), "{env}");
    for (create_tty, start_tty, want) in [
        (false, true, "hi\n"),
        (true, false, "\u{1}\0\0\0\0\0\0\u{4}hi\r\n"),
        (false, false, "\u{1}\0\0\0\0\0\0\u{3}hi\n"),
    ] {
        let (st, e) = d.api_json(
            "POST",
            "/v1.41/containers/det/exec",
            &json!({"Cmd": ["echo", "hi"], "AttachStdout": true, "AttachStderr": true,
                    "Tty": create_tty}),
        );
        assert_eq!(st, 201, "{e}");
        let id = e["Id"].as_str().unwrap();
        let (st, body) = d.api(
            "POST",
            &format!("/v1.41/exec/{id}/start"),
            json!({"Detach": false, "Tty": start_tty})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(
            (st, body.as_str()),
            (200, want),
            "create {create_tty} start {start_tty}"
        );
    }
    d.ok(&["rm", "-f", "det"]);
}
