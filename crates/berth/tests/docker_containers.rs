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
