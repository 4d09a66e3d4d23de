//! The builder through its three interfaces: `berth build` (no daemon), the
//! docker CLI's classic `docker build` against `berth daemon`, and
//! docker-py's `images.build` / `api.build`. Real containers run every RUN;
//! the results are run and inspected.

use std::path::Path;
use std::process::{Command, Stdio};

use berth_testutil::{Berth, busybox_daemon, have_docker_py, root_or_skip};
use serde_json::Value;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

const TWO_STAGE: &str = r#"# a small two-stage build
ARG BASE=bb:1
FROM $BASE AS builder
ARG GREETING=hello
WORKDIR /src
COPY greet.txt ./
RUN echo "$GREETING from $(cat greet.txt)" > /src/out.txt \
 && echo built
FROM bb:1
LABEL org.example.name="two stage" \
      version=1
ENV APP_HOME=/app PATH_EXTRA=x
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt ./
COPY data/ ./data/
EXPOSE 8080/tcp 53/udp
USER 1000:1000
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out.txt"]
"#;

#[test]
fn berth_build_runs_a_two_stage_dockerfile_and_caches_every_step() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let ctx = b.context(
        "ctx",
        &[
            ("Dockerfile", TWO_STAGE),
            ("greet.txt", "berth"),
            ("data/a.txt", "A"),
            ("data/sub/b.txt", "B"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (ok, out, err) = b.build(&["-t", "two:1", "--build-arg", "GREETING=hi", c]);
    assert!(ok, "build failed:\n{out}\n{err}");
    assert!(out.contains("Step 1/16 : ARG BASE=bb:1\n"), "{out}");
    assert!(out.contains("Step 2/16 : FROM $BASE AS builder\n"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("\nbuilt\n"), "RUN output is shown: {out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged two:1"), "{out}");
    // the image runs as built
    let run = b.ok(&["run", "--rm", "two:1"]);
    assert_eq!(run.trim(), "hi from berth");
    let i = b.inspect_image("two:1");
    let cfg = &i["Config"];
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/cat"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["/app/out.txt"]));
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["Labels"]["org.example.name"], "two stage");
    assert_eq!(cfg["Labels"]["version"], "1");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{cfg}");
    assert!(cfg["ExposedPorts"]["53/udp"].is_object(), "{cfg}");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"APP_HOME=/app".to_owned()), "{env:?}");
    // the build argument is not in the image
    assert!(!env.iter().any(|e| e.starts_with("GREETING")), "{env:?}");
    let ls = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        "two:1",
        "-R",
        "/app/data",
    ]);
    assert!(ls.contains("a.txt") && ls.contains("b.txt"), "{ls}");
    // history reads as Docker's
    let h = b.ok(&["history", "--no-trunc", "two:1"]);
    assert!(
        h.contains("/bin/sh -c #(nop)  CMD [\"/app/out.txt\"]"),
        "{h}"
    );
    assert!(h.contains("/bin/sh -c #(nop) COPY "), "{h}");
    // a rebuild takes every step from the cache, and gives the same image
    let id1 = b.inspect_image("two:1")["Id"].as_str().unwrap().to_owned();
    let (ok, out2, err) = b.build(&["-t", "two:1", "--build-arg", "GREETING=hi", c]);
    assert!(ok, "{out2}\n{err}");
    assert!(!out2.contains("Running in"), "everything cached: {out2}");
    assert_eq!(out2.matches("Using cache").count(), 13, "{out2}");
    assert_eq!(b.inspect_image("two:1")["Id"].as_str().unwrap(), id1);
    // another build argument value misses the cache from the ARG on
    let (ok, out3, err) = b.build(&["-t", "two:2", "--build-arg", "GREETING=yo", c]);
    assert!(ok, "{out3}\n{err}");
    assert!(out3.contains("Running in"), "{out3}");
    assert_eq!(b.ok(&["run", "--rm", "two:2"]).trim(), "yo from berth");
    // a changed source file: cached up to its COPY, built after
    std::fs::write(ctx.join("greet.txt"), "changed").unwrap();
    let (ok, out4, err) = b.build(&["-t", "two:3", "--build-arg", "GREETING=hi", c]);
    assert!(ok, "{out4}\n{err}");
    let step = |n: usize| {
        out4.split("Step ")
            .find(|s| s.starts_with(&format!("{n}/")))
            .unwrap_or("")
            .to_owned()
    };
    assert!(step(4).contains("Using cache"), "WORKDIR cached: {out4}");
    assert!(!step(5).contains("Using cache"), "COPY rebuilt: {out4}");
    assert_eq!(b.ok(&["run", "--rm", "two:3"]).trim(), "hi from changed");
    // nothing of the steps is left behind
    assert_eq!(
        b.ok(&["ps", "-aq"]).trim(),
        "",
        "intermediate containers removed"
    );
    let tmp = b.root().join("build/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn berth_build_errors_read_like_dockers_and_change_nothing() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let names = |b: &Berth| b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let before = names(&b);
    let cases: &[(&str, &str)] = &[
        ("FROM bb:1\nRUNN true\n", "unknown instruction: RUNN"),
        (
            "FROM bb:1\nRUN exit 3\n",
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        ),
        ("FROM bb:1\nCOPY missing.txt /\n", "missing.txt"),
        ("FROM bb:1\nCOPY ../x /\n", "outside"),
        ("FROM no-such-image:1\n", "no-such-image"),
        (
            "FROM bb:1 AS a\nCOPY --from=b /x /\nFROM bb:1 AS b\nCOPY --from=a / /\n",
            "refers to current or future build stage",
        ),
        (
            "FROM bb:1\nADD git@example.invalid:x/y.git /\n",
            "not supported yet",
        ),
        (
            "FROM --platform=linux/s390x bb:1\n",
            "not supported yet: FROM --platform=linux/s390x",
        ),
        ("FROM --platform=nonsense bb:1\n", "invalid platform"),
        (
            "FROM bb:1\nRUN --mount=type=ssh,required=true true\n",
            "no SSH key \"default\"",
        ),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let ctx = b.context(&format!("bad{i}"), &[("Dockerfile", df)]);
        let (ok, out, err) = b.build(&["--force-rm", ctx.to_str().unwrap()]);
        assert!(!ok, "{df:?} should fail:\n{out}");
        assert!(
            err.contains(want),
            "{df:?}: want {want:?} in:\n{err}\n{out}"
        );
    }
    // a failed RUN without --force-rm keeps its container (docker's --rm
    // is for successful steps); with it, nothing stays
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    // a failing build names no image (the steps before the failure stay,
    // untagged, as Docker keeps them)
    let after: Vec<String> = names(&b)
        .lines()
        .filter(|l| !l.contains("<none>"))
        .map(str::to_owned)
        .collect();
    let before: Vec<String> = before.lines().map(str::to_owned).collect();
    assert_eq!(after, before);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(b.root().to_str().unwrap()),
        "no mount left under the root"
    );
}

#[test]
fn the_cache_never_takes_a_step_of_another_base() {
    // CVE-2024-24557: identical instructions over different bases
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let c1 = b.context("base1", &[("Dockerfile", "FROM bb:1\nRUN echo one > /f\n")]);
    b.ok(&["build", "-t", "base-a", c1.to_str().unwrap()]);
    let c = b.context(
        "same",
        &[("Dockerfile", "FROM base-a\nRUN cat /f > /g; echo x >> /g\n")],
    );
    b.ok(&["build", "-t", "r1", c.to_str().unwrap()]);
    let c2 = b.context("base2", &[("Dockerfile", "FROM bb:1\nRUN echo two > /f\n")]);
    b.ok(&["build", "-t", "base-a", c2.to_str().unwrap()]);
    let (ok, out, err) = b.build(&["-t", "r2", c.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(!out.contains("Using cache"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", "r2", "cat", "/g"]), "two\nx\n");
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1 AS broken\nRUN exit 1\n\
              FROM bb:1 AS base\nRUN echo base > /base\n\
              FROM base AS test\nRUN echo test > /test\n\
              FROM bb:1\nCOPY --from=base /base /\n";
    let ctx = b.context("ms", &[("Dockerfile", df)]);
    let (ok, out, err) = b.build(&["-t", "ms:final", ctx.to_str().unwrap()]);
    assert!(ok, "the unused broken stage is not built: {out}\n{err}");
    assert!(!out.contains("echo test"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", "ms:final", "cat", "/base"]), "base\n");
    let (ok, out, err) = b.build(&["--target", "test", "-t", "ms:test", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(b.ok(&["run", "--rm", "ms:test", "cat", "/test"]), "test\n");
    let (ok, _, err) = b.build(&["--target", "nope", ctx.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("failed to reach build target nope in Dockerfile"),
        "{err}"
    );
}

#[test]
fn dockerignore_heredocs_onbuild_and_secrets() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\n\
COPY . /ctx/\n\
RUN <<EOF\n\
echo from heredoc > /h\n\
EOF\n\
COPY <<EOT /etc/greeting\n\
hello $HOSTNAME_NOT_SET!\n\
EOT\n\
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && echo secret-seen\n\
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /runs\n\
ONBUILD RUN echo triggered > /onbuild\n";
    let secret = b.dir.path().join("tok.txt");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let ctx = b.context(
        "misc",
        &[
            ("Dockerfile", df),
            (".dockerignore", "*.log\n!keep.log\nsecret/\n"),
            ("a.log", "x"),
            ("keep.log", "k"),
            ("secret/key", "k"),
            ("src/main.txt", "m"),
        ],
    );
    let sec = format!("id=tok,src={}", secret.display());
    let (ok, out, err) = b.build(&["-t", "misc", "--secret", &sec, ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("secret-seen"), "{out}");
    let ls = b.ok(&["run", "--rm", "misc", "find", "/ctx"]);
    assert!(
        ls.contains("/ctx/keep.log") && ls.contains("/ctx/src/main.txt"),
        "{ls}"
    );
    assert!(!ls.contains("a.log") && !ls.contains("secret"), "{ls}");
    assert_eq!(
        b.ok(&["run", "--rm", "misc", "cat", "/h"]),
        "from heredoc\n"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "misc", "cat", "/etc/greeting"]),
        "hello !\n"
    );
    // the secret is in no layer and not in the history
    let save = b.dir.path().join("misc.tar");
    b.ok(&["save", "-o", save.to_str().unwrap(), "misc"]);
    let bytes = std::fs::read(&save).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret leaked into the image"
    );
    // the cache mount persists across builds (--no-cache still uses it)
    let (ok, out, err) = b.build(&[
        "-t",
        "misc2",
        "--no-cache",
        "--secret",
        &sec,
        ctx.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(b.ok(&["run", "--rm", "misc2", "cat", "/runs"]).trim(), "2");
    // ONBUILD triggers run in a child build
    let child = b.context("child", &[("Dockerfile", "FROM misc\nRUN cat /onbuild\n")]);
    let (ok, out, err) = b.build(&["-t", "child", child.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(
        b.ok(&["run", "--rm", "child", "cat", "/onbuild"]),
        "triggered\n"
    );
}

#[test]
fn docker_build_against_the_daemon() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let ctx = b.context(
        "dctx",
        &[
            (
                "Dockerfile",
                "FROM bb:1\nARG FOO=default\nRUN echo building $FOO\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n",
            ),
            ("a.txt", "content-a\n"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let o = Command::new("docker")
        .args([
            "build",
            "-t",
            "dk:1",
            "--build-arg",
            "FOO=bar",
            "--label",
            "l1=v1",
            c,
        ])
        .envs(d.env())
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("Step 1/5 : FROM bb:1"), "{out}");
    assert!(out.contains("building bar"), "{out}");
    assert!(out.contains("Successfully tagged dk:1"), "{out}");
    // the context (on a tmpfs of its own) is gone when the answer is
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(b.root().to_str().unwrap()),
        "the build's context is still mounted"
    );
    assert_eq!(d.ok(&["run", "--rm", "dk:1"]), "content-a\n");
    let labels = d.ok(&["inspect", "-f", "{{json .Config.Labels}}", "dk:1"]);
    assert!(labels.contains("\"l1\":\"v1\""), "{labels}");
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "dk:1",
    ]);
    assert!(
        hist.contains("|1 FOO=bar /bin/sh -c echo building $FOO"),
        "{hist}"
    );
    // -q prints the id only
    let q = d.ok(&["build", "-q", "-t", "dk:1", "--build-arg", "FOO=bar", c]);
    assert!(q.trim().starts_with("sha256:"), "{q}");
    // a failing RUN: docker's message, and the CLI exits with the step's
    // code (errorDetail.code), as against dockerd
    let bad = b.context("dbad", &[("Dockerfile", "FROM bb:1\nRUN exit 7\n")]);
    let o = d.docker(&["build", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(7));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("returned a non-zero code: 7"), "{err}");
    // a syntax error is the daemon's 400 with the line
    let bad = b.context("dsyn", &[("Dockerfile", "FROM bb:1\nFOO bar\n")]);
    let o = d.docker(&["build", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2: unknown instruction: FOO"), "{err}");
    // resource flags reach the RUN containers
    let ul = b.context(
        "dul",
        &[("Dockerfile", "FROM bb:1\nRUN echo nofile=$(ulimit -n)\n")],
    );
    let out = d.ok(&[
        "build",
        "--ulimit",
        "nofile=1024:2048",
        "--no-cache",
        ul.to_str().unwrap(),
    ]);
    assert!(out.contains("nofile=1024"), "{out}");
    let (ok, out, err) = b.build(&[
        "--ulimit",
        "nofile=1500:2048",
        "--no-cache",
        ul.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("nofile=1500"), "{out}");
    // build prune answers with what it removed
    let (st, v) = d.api_json("POST", "/v1.41/build/prune", &Value::Null);
    assert_eq!(st, 200);
    assert!(v["SpaceReclaimed"].is_u64(), "{v}");
}

#[test]
fn docker_py_builds_with_its_parameters() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    if !have_docker_py() {
        return;
    }
    let ctx = b.context(
        "pyctx",
        &[(
            "Dockerfile.custom",
            "FROM bb:1 AS first\nARG X\nRUN echo x=$X > /x\nFROM first\nLABEL from=py\n",
        )],
    );
    let script = format!(
        r#"
import docker, io, json
c = docker.DockerClient(base_url="unix://{sock}")
img, logs = c.images.build(path="{ctx}", dockerfile="Dockerfile.custom", tag="py:1",
                           buildargs={{"X": "42"}}, labels={{"extra": "yes"}}, rm=True, forcerm=True,
                           network_mode="none", shmsize=64*1024*1024)
print("ID", img.id)
print("LABELS", json.dumps(img.labels, sort_keys=True))
print("STREAM", "".join(l.get("stream", "") for l in logs).count("Step "))
out = c.containers.run("py:1", "cat /x", remove=True)
print("RUN", out.decode().strip())
# the low-level API with a Dockerfile as a file object and target
f = io.BytesIO(b"FROM bb:1\nRUN echo low > /low\n")
lines = list(c.api.build(fileobj=f, tag="py:2", decode=True))
print("LOW", any("Successfully built" in l.get("stream", "") for l in lines))
try:
    c.images.build(fileobj=io.BytesIO(b"FROM bb:1\nRUN exit 4\n"), tag="py:3")
except docker.errors.BuildError as e:
    print("ERR", e.msg)
"#,
        sock = d.sock.display(),
        ctx = ctx.display()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("ID sha256:"), "{out}");
    assert!(
        out.contains(r#"LABELS {"extra": "yes", "from": "py"}"#),
        "{out}"
    );
    assert!(out.contains("STREAM 5"), "{out}");
    assert!(out.contains("RUN x=42"), "{out}");
    assert!(out.contains("LOW True"), "{out}");
    assert!(
        out.contains("ERR The command '/bin/sh -c exit 4' returned a non-zero code: 4"),
        "{out}"
    );
}

#[test]
fn cache_from_reuses_the_steps_of_a_named_image_only() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\nENV A=1\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g\nCMD [\"cat\", \"/g\"]\n";
    let ctx = b.context("cf", &[("Dockerfile", df), ("f.txt", "from cache\n")]);
    let c = ctx.to_str().unwrap();
    b.ok(&["build", "-t", "cf:1", c]);
    // the image travels (save, load) and berth's own records go
    let tar = b.dir.path().join("cf.tar");
    b.ok(&["save", "-o", tar.to_str().unwrap(), "cf:1"]);
    let b2 = Berth::with_busybox(bin(), "bb:1");
    b2.ok(&["load", "-i", tar.to_str().unwrap()]);
    // without --cache-from the loaded image is not a cache
    let (ok, out, err) = b2.build(&["-t", "cf:2", c]);
    assert!(ok, "{out}\n{err}");
    assert!(
        !out.contains("Using cache"),
        "a look-alike is never a cache: {out}"
    );
    let b3 = Berth::with_busybox(bin(), "bb:1");
    b3.ok(&["load", "-i", tar.to_str().unwrap()]);
    let (ok, out, err) = b3.build(&["--cache-from", "cf:1", "-t", "cf:3", c]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 4, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(b3.ok(&["run", "--rm", "cf:3"]), "from cache\n");
    // a changed source ends the reuse at its COPY
    std::fs::write(ctx.join("f.txt"), "changed\n").unwrap();
    let (ok, out, err) = b3.build(&["--cache-from", "cf:1", "-t", "cf:4", c]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    assert_eq!(b3.ok(&["run", "--rm", "cf:4"]), "changed\n");
}

#[test]
fn independent_stages_build_at_the_same_time_and_print_in_order() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    // each stage waits (up to 20 s) for the other's mark in a shared cache
    // mount: built one after the other, the first would give up
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/c,sharing=shared \
             touch /c/{me}; i=0; while [ ! -e /c/{other} ]; do sleep 0.1; i=$((i+1)); \
             [ $i -gt 200 ] && exit 9; done; echo {me} > /{me}\n"
        )
    };
    let df = format!(
        "FROM bb:1 AS a\n{}FROM bb:1 AS b\n{}FROM bb:1\nCOPY --from=a /a /\nCOPY --from=b /b /\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let ctx = b.context("conc", &[("Dockerfile", &df)]);
    let (ok, out, err) = b.build(&["-t", "conc", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s:?} in {out}"));
    assert!(
        pos("Step 1/7 : FROM bb:1 AS a") < pos("Step 2/7 : RUN"),
        "{out}"
    );
    assert!(
        pos("Step 2/7 : RUN") < pos("Step 3/7 : FROM bb:1 AS b"),
        "{out}"
    );
    assert!(
        pos("Step 3/7 : FROM bb:1 AS b") < pos("Step 5/7 : FROM bb:1\n"),
        "{out}"
    );
    assert_eq!(b.ok(&["run", "--rm", "conc", "cat", "/a", "/b"]), "a\nb\n");
}

#[test]
fn on_a_terminal_berth_build_shows_a_live_line_per_step() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let ctx = b.context(
        "tty",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN echo step-output\nENV A=1\nRUN exit 3\n",
        )],
    );
    // util-linux's script gives the build a terminal
    let cmdline = format!("{} build {}", bin().display(), ctx.display());
    let o = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_ROOT", b.root())
        .env("BERTH_CONFIG", b.dir.path().join("daemon.json"))
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let out = String::from_utf8_lossy(&o.stdout).replace('\r', "\n");
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("[2/4] RUN echo step-output  done"), "{out}");
    assert!(out.contains("[3/4] ENV A=1  done"), "{out}");
    assert!(out.contains("[4/4] RUN exit 3  ERROR"), "{out}");
    assert!(out.contains("returned a non-zero code: 3"), "{out}");
    assert!(
        !out.contains("Step 2/4"),
        "no classic text on a terminal: {out}"
    );
}

#[test]
fn run_mount_bind_from_a_stage_or_an_image() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1 AS tools\n\
              RUN mkdir /tools && echo tool-data > /tools/data && ln -s /etc /tools/etc-link\n\
              FROM bb:1\n\
              RUN --mount=type=bind,from=tools,source=/tools,target=/mnt/t cat /mnt/t/data > /copied\n\
              RUN --mount=type=bind,from=bb:1,target=/mnt/bb test -x /mnt/bb/bin/busybox && echo ok > /bb\n\
              RUN --mount=from=tools,source=tools/etc-link,target=/mnt/e test -e /mnt/e/passwd && echo in-image > /e\n\
              RUN --mount=type=bind,source=sub/ctxfile,target=/in cat /in > /fromctx\n";
    let ctx = b.context(
        "bindfrom",
        &[("Dockerfile", df), ("sub/ctxfile", "from-context\n")],
    );
    let (ok, out, err) = b.build(&["-t", "bindfrom", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        b.ok(&[
            "run", "--rm", "bindfrom", "cat", "/copied", "/bb", "/e", "/fromctx"
        ]),
        "tool-data\nok\nin-image\nfrom-context\n"
    );
    // the mount left nothing in the image, and nothing is mounted any more
    let gone = b.ok(&[
        "run",
        "--rm",
        "bindfrom",
        "sh",
        "-c",
        "test ! -e /mnt/t && echo gone",
    ]);
    assert_eq!(gone, "gone\n");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(b.root().to_str().unwrap()),
        "no mount left under the root"
    );
    // a from= that names nothing is an error in Docker's words
    let bad = b.context(
        "bindbad",
        &[(
            "Dockerfile",
            "FROM bb:1 AS a\nFROM bb:1\nRUN --mount=from=a,source=/nope,target=/x true\n",
        )],
    );
    let (ok, _, err) = b.build(&[bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("/nope\" not found"), "{err}");
}

#[test]
fn no_cache_filter_rebuilds_only_the_named_stages() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df =
        "FROM bb:1 AS deps\nRUN echo deps > /d\nFROM bb:1\nCOPY --from=deps /d /d\nRUN cat /d\n";
    let ctx = b.context("ncf", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    b.ok(&["build", "-t", "ncf", c]);
    let (ok, out, err) = b.build(&["--no-cache-filter", "deps", "-t", "ncf", c]);
    assert!(ok, "{out}\n{err}");
    let step = |n: usize| {
        out.split("Step ")
            .find(|s| s.starts_with(&format!("{n}/")))
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        step(2).contains("Running in"),
        "the deps stage is rebuilt: {out}"
    );
    // the final stage's own steps may use the cache, but what changed
    // upstream (a new /d layer of the same content) keeps its COPY cached
    assert!(step(4).contains("Using cache"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", "ncf", "cat", "/d"]), "deps\n");
}

#[test]
fn a_run_that_changes_nothing_adds_an_empty_layer() {
    // Docker keeps the container's mount points (/etc/hosts, /dev, …) in
    // a layer commits never see: a RUN that changes nothing has an empty
    // layer; one that changes a directory's mode keeps that change
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\nRUN true\nRUN chmod 0700 /etc\n";
    let ctx = b.context("empty", &[("Dockerfile", df)]);
    b.ok(&["build", "-t", "emptylayer", ctx.to_str().unwrap()]);
    let save = b.dir.path().join("empty.tar");
    b.ok(&["save", "-o", save.to_str().unwrap(), "emptylayer"]);
    let tar_out = |args: &[&str]| -> String {
        let o = Command::new("tar").args(args).output().unwrap();
        assert!(o.status.success(), "tar {args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let manifest: Value =
        serde_json::from_str(&tar_out(&["-xOf", save.to_str().unwrap(), "manifest.json"])).unwrap();
    let layers: Vec<String> = serde_json::from_value(manifest[0]["Layers"].clone()).unwrap();
    let n = layers.len();
    let list = |l: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("tar -xOf {} {} | tar -t", save.display(), l))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(list(&layers[n - 2]), "", "RUN true: an empty layer");
    let chmod = list(&layers[n - 1]);
    assert_eq!(
        chmod.trim().trim_end_matches('/'),
        "etc",
        "the chmod is kept: {chmod}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "emptylayer", "stat", "-c", "%a", "/etc"])
            .trim(),
        "700"
    );
}

#[test]
fn run_mount_ssh_binds_the_clients_agent_socket() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    // a stand-in for an SSH agent: the socket is what is forwarded
    let sock = b.dir.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let df = "FROM bb:1\n\
              RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent-at-$SSH_AUTH_SOCK\n\
              RUN --mount=type=ssh,id=work,target=/tmp/a.sock test -S /tmp/a.sock && echo work-agent\n\
              RUN --mount=type=ssh,id=absent true\n";
    let ctx = b.context("ssh", &[("Dockerfile", df)]);
    let default = format!("default={}", sock.display());
    let work = format!("work={}", sock.display());
    let (ok, out, err) = b.build(&["--ssh", &default, "--ssh", &work, ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("agent-at-/run/buildkit/ssh_agent.0"), "{out}");
    assert!(out.contains("work-agent"), "{out}");
    // a key file is not an agent
    let key = b.dir.path().join("id_ed25519");
    std::fs::write(&key, "not a socket").unwrap();
    let keyarg = format!("default={}", key.display());
    let (ok, _, err) = b.build(&["--no-cache", "--ssh", &keyarg, ctx.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not key files"), "{err}");
}

#[test]
fn from_platform_of_this_host_builds() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM --platform=$BUILDPLATFORM bb:1 AS a\nRUN echo $BUILDPLATFORM > /p\n\
              FROM --platform=$TARGETPLATFORM bb:1\nARG TARGETPLATFORM\nCOPY --from=a /p /p\nRUN echo $TARGETPLATFORM >> /p\n";
    let ctx = b.context("plat", &[("Dockerfile", df)]);
    let (ok, out, err) = b.build(&["-t", "plat", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let p = b.ok(&["run", "--rm", "plat", "cat", "/p"]);
    let want = format!("linux/{}", berth_testutil::archives::host_arch());
    assert_eq!(
        p,
        format!("\n{want}\n"),
        "BUILDPLATFORM is not declared in stage a; TARGETPLATFORM is"
    );
}
