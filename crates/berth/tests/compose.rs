//! docker-compose v1 (Debian's 1.29.2) against `berth daemon`: projects
//! with user networks and aliases, healthchecks gating `depends_on`,
//! named volumes, env files, published ports, `run --rm`, scaling,
//! restart, stop, `down -v`, legacy links on the default bridge, and a
//! second `up` that finds everything up to date.

use std::path::{Path, PathBuf};

use berth_testutil::{Berth, Daemon, have_compose, have_docker, http_get, root_or_skip, wait_for};

fn setup() -> Option<(Berth, Daemon)> {
    if !root_or_skip("docker-compose") || !have_docker() || !have_compose() {
        return None;
    }
    let b = Berth::with_busybox(Path::new(env!("CARGO_BIN_EXE_berth")), "busybox:local");
    let d = Daemon::start(&b);
    Some((b, d))
}

/// A project directory with `files` (name, content) in the root's
/// temporary directory.
fn project(b: &Berth, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = b.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

/// Names of the project's containers (`ps -a`), sorted.
fn containers(d: &Daemon, project: &str) -> Vec<String> {
    let out = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn id_of(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn both(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_project_with_a_network_healthcheck_volume_and_ports_runs_scales_and_goes_down() {
    let Some((b, d)) = setup() else { return };
    let port = berth_testutil::free_port();
    let yml = format!(
        r#"version: "2.4"
services:
  db:
    image: busybox:local
    command: ["sh", "-c", "echo db starting; echo hello > /data/index.html; echo DBVAR=$$DBVAR; exec httpd -f -p 8080 -h /data"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/index.html"]
      interval: 1s
    volumes:
      - dbdata:/data
    networks:
      appnet:
        aliases: [database, db-alias]
    env_file: app.env
    ports:
      - "127.0.0.1:{port}:8080"
  web:
    image: busybox:local
    command: ["sh", "-c", "echo web up FOO=$$FOO; while true; do wget -q -O- http://database:8080/ && echo fetched; sleep 1; done"]
    depends_on:
      db:
        condition: service_healthy
    env_file: app.env
    environment:
      - BAR=2
    ports:
      - "127.0.0.1::80"
    networks:
      - appnet
volumes:
  dbdata:
networks:
  appnet:
"#
    );
    let dir = project(
        &b,
        "cmp",
        &[
            ("docker-compose.yml", &yml),
            ("app.env", "FOO=from_env_file\nDBVAR=dbvalue\n# comment\n"),
        ],
    );

    let o = d.compose(&dir, &["up", "-d"]);
    assert!(o.status.success(), "up -d: {}", both(&o));
    assert_eq!(containers(&d, "cmp"), ["cmp_db_1", "cmp_web_1"]);
    // web was created only once db was healthy
    let health = d.ok(&["inspect", "-f", "{{.State.Health.Status}}", "cmp_db_1"]);
    assert_eq!(health.trim(), "healthy");
    let ps = d.compose_ok(&dir, &["ps"]);
    assert!(ps.contains("Up (healthy)"), "{ps}");
    assert!(ps.contains(&format!("127.0.0.1:{port}->8080/tcp")), "{ps}");

    // the published port, the network alias, the env file
    assert!(http_get(port, "/index.html").ends_with("hello\n"));
    wait_for("web fetching through the alias", || {
        let logs = stdout(&d.compose(&dir, &["logs", "--no-color", "web"]));
        logs.contains("fetched").then_some(())
    });
    let logs = d.compose_ok(&dir, &["logs", "--no-color"]);
    assert!(logs.contains("web up FOO=from_env_file"), "{logs}");
    assert!(logs.contains("DBVAR=dbvalue"), "{logs}");
    let env = d.compose_ok(&dir, &["exec", "-T", "db", "env"]);
    assert!(env.lines().any(|l| l == "FOO=from_env_file"), "{env}");
    // root's home from the image's /etc/passwd, as dockerd sets it
    assert!(env.lines().any(|l| l == "HOME=/root"), "{env}");
    let got = d.compose_ok(
        &dir,
        &[
            "exec",
            "-T",
            "web",
            "wget",
            "-q",
            "-O-",
            "http://db-alias:8080/",
        ],
    );
    assert_eq!(got, "hello\n");
    let o = d.compose(&dir, &["exec", "-T", "web", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "exec's exit code: {}", both(&o));

    // a one-off container, removed afterwards
    let run = d.compose_ok(
        &dir,
        &[
            "run",
            "--rm",
            "web",
            "sh",
            "-c",
            "echo run-ok FOO=$FOO BAR=$BAR",
        ],
    );
    assert!(run.contains("run-ok FOO=from_env_file BAR=2"), "{run}");
    assert_eq!(containers(&d, "cmp"), ["cmp_db_1", "cmp_web_1"]);

    // a second up finds the project as it is; scaling adds replicas and
    // leaves db alone
    let db_id = id_of(&d, "cmp_db_1");
    let o = d.compose(&dir, &["up", "-d"]);
    assert!(o.status.success(), "second up: {}", both(&o));
    assert!(both(&o).contains("cmp_db_1 is up-to-date"), "{}", both(&o));
    let o = d.compose(&dir, &["up", "-d", "--scale", "web=3"]);
    assert!(o.status.success(), "scale up: {}", both(&o));
    assert_eq!(
        containers(&d, "cmp"),
        ["cmp_db_1", "cmp_web_1", "cmp_web_2", "cmp_web_3"]
    );
    assert_eq!(id_of(&d, "cmp_db_1"), db_id, "db was recreated");
    let o = d.compose(&dir, &["up", "-d", "--scale", "web=1"]);
    assert!(o.status.success(), "scale down: {}", both(&o));
    assert_eq!(containers(&d, "cmp"), ["cmp_db_1", "cmp_web_1"]);

    // restart and stop
    let started = d.ok(&["inspect", "-f", "{{.State.StartedAt}}", "cmp_web_1"]);
    d.compose_ok(&dir, &["restart", "-t", "1"]);
    let again = d.ok(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}} {{.State.Running}}",
        "cmp_web_1",
    ]);
    assert_ne!(started.trim(), again.trim());
    assert!(again.trim().ends_with("true"), "{again}");
    d.compose_ok(&dir, &["stop", "-t", "1"]);
    let ps = d.compose_ok(&dir, &["ps"]);
    assert_eq!(ps.matches("Exit").count(), 2, "{ps}");

    // down -v takes containers, network and volume
    d.compose_ok(&dir, &["down", "-v"]);
    assert!(containers(&d, "cmp").is_empty());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("cmp_appnet"), "{nets}");
    let vols = d.ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(!vols.contains("cmp_dbdata"), "{vols}");
}

#[test]
fn links_on_the_default_bridge_and_a_foreground_up() {
    let Some((b, d)) = setup() else { return };
    let yml = r#"version: "2.4"
services:
  db:
    image: busybox:local
    command: ["sh", "-c", "echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    network_mode: bridge
  client:
    image: busybox:local
    command: ["sh", "-c", "sleep 1; wget -q -O- http://database:8080/ && echo linked FOO=$$FOO"]
    links: ["db:database"]
    network_mode: bridge
    environment:
      FOO: bar
    depends_on: [db]
"#;
    let dir = project(&b, "lnk", &[("docker-compose.yml", yml)]);
    // foreground: attaches to the logs and stops when client exits
    let o = d.compose(
        &dir,
        &[
            "up",
            "--abort-on-container-exit",
            "--exit-code-from",
            "client",
        ],
    );
    let out = both(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("hello"), "{out}");
    assert!(out.contains("linked FOO=bar"), "{out}");
    d.compose_ok(&dir, &["down"]);
    assert!(containers(&d, "lnk").is_empty());
}

#[test]
fn named_volumes_keep_their_data_across_down_and_up() {
    let Some((b, d)) = setup() else { return };
    let yml = r#"version: "3.8"
services:
  w:
    image: busybox:local
    command: ["sh", "-c", "cat /data/n 2>/dev/null || echo none; date +%s%N > /data/n; sleep 600"]
    stop_grace_period: 1s
    volumes:
      - keep:/data
volumes:
  keep:
    labels:
      purpose: test
"#;
    let dir = project(&b, "vol", &[("docker-compose.yml", yml)]);
    d.compose_ok(&dir, &["up", "-d"]);
    wait_for("the first run's write", || {
        let logs = stdout(&d.compose(&dir, &["logs", "--no-color"]));
        logs.contains("none").then_some(())
    });
    let written = d.compose_ok(&dir, &["exec", "-T", "w", "cat", "/data/n"]);
    d.compose_ok(&dir, &["down"]);
    let label = d.ok(&["volume", "inspect", "-f", "{{.Labels.purpose}}", "vol_keep"]);
    assert_eq!(label.trim(), "test");
    d.compose_ok(&dir, &["up", "-d"]);
    wait_for("the second run's read", || {
        let logs = stdout(&d.compose(&dir, &["logs", "--no-color"]));
        logs.contains(written.trim()).then_some(())
    });
    d.compose_ok(&dir, &["down", "-v"]);
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains("vol_keep"), "{vols}");
}
