//! What the builder takes in, end to end: contexts on stdin (every
//! compression), Dockerfiles from stdin or outside the context, ignore
//! files; hostile contexts (escaping entries, symlinks out, broken
//! archives); `ADD` of archives and URLs; the instructions' effects on the
//! image; docker-py's build parameters; and a build cancelled by its client
//! going away, leaving nothing behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_testutil::{Berth, Daemon, busybox_daemon, have_docker_py, root_or_skip};
use serde_json::{Value, json};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn text(o: &Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    let _ = w.join();
    o
}

/// `berth build ARGS` with `input` on stdin.
fn build_stdin(b: &Berth, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    text(&with_stdin(b.cmd(&a), input))
}

/// The docker CLI's classic builder against the daemon, `input` on stdin.
fn docker_build(d: &Daemon, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut c = Command::new("docker");
    c.arg("build")
        .args(args)
        .envs(d.env())
        .env("DOCKER_BUILDKIT", "0");
    text(&with_stdin(c, input))
}

/// A tar of `dir`'s content made by the `tar` CLI with `flags` (`-cf`,
/// `-czf`, ...).
fn tar_cli(dir: &Path, flags: &str, out: &Path) -> Vec<u8> {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg(flags)
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar {flags} {}", dir.display());
    std::fs::read(out).unwrap()
}

/// A tar written byte by byte (the `tar` crate refuses the hostile names
/// these tests need): regular files, or symlinks with a `Some` target.
fn raw_tar(entries: &[(&str, &[u8], Option<&str>)]) -> Vec<u8> {
    fn octal(field: &mut [u8], v: u64) {
        let s = format!("{:0w$o}\0", v, w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    for (name, data, link) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        let size = if link.is_some() { 0 } else { data.len() };
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 1_700_000_000);
        h[148..156].copy_from_slice(b"        ");
        match link {
            Some(l) => {
                h[156] = b'2';
                h[157..157 + l.len()].copy_from_slice(l.as_bytes());
            }
            None => h[156] = b'0',
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        if link.is_none() {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// What is in `<root>/build/tmp` (nothing once every build is over).
fn build_tmp(b: &Berth) -> Vec<String> {
    std::fs::read_dir(b.root().join("build/tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The mounts under berth's root.
fn mounts_under(b: &Berth) -> Vec<String> {
    let root = b.root();
    let root = root.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(root))
        .map(String::from)
        .collect()
}

/// Docker's name for this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => panic!("no Go name for {other}"),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

// ---------------------------------------------------------------- contexts

#[test]
fn berth_build_takes_a_context_tar_on_stdin_in_every_compression() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let ctx = b.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM bb:1\nCOPY f.txt sub/ /c/\nRUN cat /c/f.txt > /seen\n",
        )],
    );
    for (i, (flags, ext)) in [
        ("-cf", "tar"),
        ("-czf", "tar.gz"),
        ("-cjf", "tar.bz2"),
        ("-cJf", "tar.xz"),
    ]
    .iter()
    .enumerate()
    {
        // each archive carries its own content: no step can come from
        // another one's cache
        std::fs::write(ctx.join("f.txt"), format!("content {ext}\n")).unwrap();
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("sub/g.txt"), ext).unwrap();
        let archive = tar_cli(&ctx, flags, &b.dir.path().join(format!("ctx{i}.{ext}")));
        let tag = format!("stdin:{i}");
        let (ok, out, err) = build_stdin(&b, &["-t", &tag, "-"], &archive);
        assert!(ok, "{ext}: build failed:\n{out}\n{err}");
        assert!(out.contains("Successfully tagged stdin:"), "{ext}: {out}");
        assert_eq!(
            b.ok(&["run", "--rm", &tag, "cat", "/seen"]),
            format!("content {ext}\n"),
            "{ext}"
        );
        assert_eq!(b.ok(&["run", "--rm", &tag, "cat", "/c/g.txt"]), *ext);
    }
    assert!(build_tmp(&b).is_empty(), "left: {:?}", build_tmp(&b));
}

#[test]
fn berth_build_reads_a_dockerfile_from_stdin_or_outside_the_context() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    // a Dockerfile alone on stdin: a context of that one file
    let (ok, out, err) = build_stdin(
        &b,
        &["-t", "alone", "-"],
        b"FROM bb:1\nRUN echo from-stdin > /s\n",
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(b.ok(&["run", "--rm", "alone", "cat", "/s"]), "from-stdin\n");
    // ... with nothing else to copy
    let (ok, out, err) = build_stdin(&b, &["-"], b"FROM bb:1\nCOPY Dockerfile /\n");
    assert!(ok, "the Dockerfile is the context's one file: {out}\n{err}");
    // -f - with a directory context: the context's files, the Dockerfile
    // from stdin (not the context's own)
    let ctx = b.context(
        "dir",
        &[
            (
                "Dockerfile",
                "FROM bb:1\nRUN echo wrong-dockerfile > /which\n",
            ),
            ("data.txt", "data\n"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (ok, out, err) = build_stdin(
        &b,
        &["-f", "-", "-t", "fdash", c],
        b"FROM bb:1\nCOPY data.txt /d\nRUN echo stdin-dockerfile > /which\n",
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(b.ok(&["run", "--rm", "fdash", "cat", "/d"]), "data\n");
    assert_eq!(
        b.ok(&["run", "--rm", "fdash", "cat", "/which"]),
        "stdin-dockerfile\n"
    );
    // both from stdin: refused
    let (ok, _, err) = build_stdin(&b, &["-f", "-", "-"], b"FROM bb:1\n");
    assert!(!ok);
    assert!(err.contains("can't use stdin for both"), "{err}");
    // -f outside the context
    let elsewhere = b.context(
        "elsewhere",
        &[(
            "Build.df",
            "FROM bb:1\nCOPY data.txt /d\nRUN echo outside > /which\n",
        )],
    );
    let df = elsewhere.join("Build.df");
    let (ok, out, err) = b.build(&["-f", df.to_str().unwrap(), "-t", "outside", c]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(b.ok(&["run", "--rm", "outside", "cat", "/d"]), "data\n");
    assert_eq!(
        b.ok(&["run", "--rm", "outside", "cat", "/which"]),
        "outside\n"
    );
    // ... and one that does not exist
    let missing = elsewhere.join("nope.df");
    let (ok, _, err) = b.build(&["-f", missing.to_str().unwrap(), c]);
    assert!(!ok);
    assert!(err.contains("no such file or directory"), "{err}");
    // no Dockerfile in the context at all
    let empty = b.context("empty", &[("a.txt", "a")]);
    let (ok, _, err) = b.build(&[empty.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile") && err.contains("no such file or directory"),
        "{err}"
    );
    assert!(build_tmp(&b).is_empty(), "left: {:?}", build_tmp(&b));
}

#[test]
fn the_dockerfiles_own_ignore_file_wins_and_globs_apply() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let ctx = b.context(
        "ign",
        &[
            ("build.Dockerfile", "FROM bb:1\nCOPY . /c/\n"),
            ("Dockerfile", "FROM bb:1\nCOPY . /c/\n"),
            // the general file: would drop a.txt and keep everything else
            (".dockerignore", "a.txt\n"),
            // the Dockerfile's own: ** and an exception under it
            (
                "build.Dockerfile.dockerignore",
                "**/*.tmp\n!keep/**/*.tmp\nb.txt\n",
            ),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("x.tmp", "x"),
            ("deep/er/y.tmp", "y"),
            ("deep/er/y.txt", "y"),
            ("keep/sub/z.tmp", "z"),
        ],
    );
    let c = ctx.to_str().unwrap();
    // docker's CLI takes a relative -f from the current directory
    let df = ctx.join("build.Dockerfile");
    let (ok, out, err) = b.build(&["-f", df.to_str().unwrap(), "-t", "own", c]);
    assert!(ok, "{out}\n{err}");
    let found = b.ok(&["run", "--rm", "own", "find", "/c", "-type", "f"]);
    let mut files: Vec<&str> = found.lines().collect();
    files.sort();
    assert_eq!(
        files,
        [
            "/c/.dockerignore",
            "/c/Dockerfile",
            "/c/a.txt",
            "/c/build.Dockerfile",
            "/c/build.Dockerfile.dockerignore",
            "/c/deep/er/y.txt",
            "/c/keep/sub/z.tmp",
        ],
        "{found}"
    );
    // the default Dockerfile takes .dockerignore
    let (ok, out, err) = b.build(&["-t", "general", c]);
    assert!(ok, "{out}\n{err}");
    let found = b.ok(&["run", "--rm", "general", "find", "/c", "-type", "f"]);
    assert!(!found.contains("a.txt"), "{found}");
    assert!(
        found.contains("/c/b.txt") && found.contains("/c/x.tmp") && found.contains("y.tmp"),
        "{found}"
    );
}

#[test]
fn docker_cli_contexts_from_stdin_iidfile_and_target() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let ctx = b.context(
        "dctx",
        &[
            (
                "Dockerfile",
                "FROM bb:1 AS one\nRUN echo one > /stage\nCOPY f.txt /f\n\
                 FROM bb:1 AS two\nRUN echo two > /stage\n",
            ),
            ("f.txt", "from the gzip context\n"),
        ],
    );
    // a gzip context on stdin, --target and --iidfile
    let archive = tar_cli(&ctx, "-czf", &b.dir.path().join("dctx.tar.gz"));
    let iid = b.dir.path().join("iid");
    let (ok, out, err) = docker_build(
        &d,
        &[
            "--target",
            "one",
            "--iidfile",
            iid.to_str().unwrap(),
            "-t",
            "dk:one",
            "-",
        ],
        &archive,
    );
    assert!(ok, "{out}\n{err}");
    assert!(!out.contains("echo two"), "stage two is not built: {out}");
    assert_eq!(d.ok(&["run", "--rm", "dk:one", "cat", "/stage"]), "one\n");
    assert_eq!(
        d.ok(&["run", "--rm", "dk:one", "cat", "/f"]),
        "from the gzip context\n"
    );
    let written = std::fs::read_to_string(&iid).unwrap();
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "dk:one"]);
    assert!(written.starts_with("sha256:"), "{written}");
    assert_eq!(written.trim(), id.trim());
    // a Dockerfile on stdin with a directory context: the CLI sends it in
    // the context under a random name and ignores it there
    let (ok, out, err) = docker_build(
        &d,
        &["-f", "-", "-t", "dk:fdash", ctx.to_str().unwrap()],
        b"FROM bb:1\nCOPY . /c/\n",
    );
    assert!(ok, "{out}\n{err}");
    let ls = d.ok(&["run", "--rm", "dk:fdash", "ls", "-a", "/c"]);
    assert!(ls.contains("f.txt"), "{ls}");
    assert!(!ls.contains(".dockerfile."), "the stdin Dockerfile: {ls}");
    // a plain Dockerfile as the whole stdin
    let (ok, out, err) = docker_build(
        &d,
        &["-t", "dk:plain", "-"],
        b"FROM bb:1\nRUN echo plain > /p\n",
    );
    assert!(ok, "{out}\n{err}");
    assert_eq!(d.ok(&["run", "--rm", "dk:plain", "cat", "/p"]), "plain\n");
    // the default (last) stage without --target
    let (ok, out, err) = docker_build(&d, &["-t", "dk:last", "-"], &archive);
    assert!(ok, "{out}\n{err}");
    assert_eq!(d.ok(&["run", "--rm", "dk:last", "cat", "/stage"]), "two\n");
    let (ok, _, err) = docker_build(&d, &["--target", "three", "-"], &archive);
    assert!(!ok);
    assert!(err.contains("failed to reach build target three"), "{err}");
}

// ------------------------------------------------------------ hostile input

/// POST /build with `body`: the status and the answer (a stream of JSON
/// lines, or an error document).
fn post_build(d: &Daemon, query: &str, body: &[u8]) -> (u16, String) {
    d.api_with(
        "POST",
        &format!("/v1.41/build{query}"),
        &[("Content-Type", "application/x-tar")],
        body,
    )
}

/// Whether a build answer is a failure: an HTTP error or an error line.
fn failed(status: u16, body: &str) -> bool {
    status >= 400 || body.contains("\"errorDetail\"")
}

#[test]
fn hostile_contexts_are_refused_and_write_nothing_outside() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let df: &[u8] = b"FROM bb:1\nCOPY . /c/\n";
    // ../escape lands in <root>/build/tmp if anywhere
    let tar = raw_tar(&[
        ("Dockerfile", df, None),
        ("../escape", b"escaped", None),
        ("a/../../escape2", b"escaped", None),
    ]);
    let (st, body) = post_build(&d, "?t=bad:1", &tar);
    assert!(failed(st, &body), "{st} {body}");
    assert!(body.contains("leaves the destination"), "{body}");
    for p in [
        b.root().join("build/tmp/escape"),
        b.root().join("build/tmp/escape2"),
        b.root().join("build/escape"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert!(
        d.fails(&["inspect", "bad:1"]).contains("No such"),
        "no image"
    );
    // an absolute name stays inside the context (as Docker's untar does),
    // never at that path on the host
    let host = std::env::temp_dir().join(format!("berth-abs-{}", std::process::id()));
    let abs = format!("{}", host.display());
    let tar = raw_tar(&[("Dockerfile", df, None), (abs.as_str(), b"absolute", None)]);
    let (st, body) = post_build(&d, "?t=abs:1", &tar);
    assert!(!host.exists(), "{} was written on the host", host.display());
    assert!(!failed(st, &body), "{st} {body}");
    let inside = format!("/c{abs}");
    assert_eq!(d.ok(&["run", "--rm", "abs:1", "cat", &inside]), "absolute");
    // a symlink entry pointing out, then a file through it
    let tar = raw_tar(&[
        ("Dockerfile", df, None),
        ("out", b"", Some("/tmp")),
        (
            &format!("out/berth-link-{}", std::process::id()),
            b"through the link",
            None,
        ),
    ]);
    let (st, body) = post_build(&d, "?t=link:1", &tar);
    let through = PathBuf::from(format!("/tmp/berth-link-{}", std::process::id()));
    assert!(!through.exists(), "written through the link: {st} {body}");
    // a truncated tar (cut inside a file) and a truncated gzip
    let ctx = b.context(
        "big",
        &[
            ("Dockerfile", "FROM bb:1\n"),
            ("big.bin", &"x".repeat(200_000)),
        ],
    );
    let whole = tar_cli(&ctx, "-cf", &b.dir.path().join("big.tar"));
    let (st, body) = post_build(&d, "", &whole[..whole.len() / 2]);
    assert!(failed(st, &body), "{st} {body}");
    assert!(body.contains("not a valid tar archive"), "{body}");
    let gz = tar_cli(&ctx, "-czf", &b.dir.path().join("big.tar.gz"));
    let (st, body) = post_build(&d, "", &gz[..gz.len() / 2]);
    assert!(failed(st, &body), "{st} {body}");
    // garbage: taken as a Dockerfile, which does not parse
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (st, body) = post_build(&d, "", &garbage);
    assert!(failed(st, &body), "{st} {body}");
    // a context without the Dockerfile named
    let tar = raw_tar(&[("a.txt", b"a", None)]);
    let (st, body) = post_build(&d, "", &tar);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("Cannot locate specified Dockerfile: Dockerfile"),
        "{body}"
    );
    let tar = raw_tar(&[("Dockerfile", df, None)]);
    let (st, body) = post_build(&d, "?dockerfile=Other.df", &tar);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("Cannot locate specified Dockerfile: Other.df"),
        "{body}"
    );
    // the docker CLI says the same for a tar context
    let o = {
        let mut c = Command::new("docker");
        c.args(["build", "-"])
            .envs(d.env())
            .env("DOCKER_BUILDKIT", "0");
        with_stdin(
            c,
            &tar_cli(
                &b.context("nodf", &[("a", "a")]),
                "-cf",
                &b.dir.path().join("nodf.tar"),
            ),
        )
    };
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Cannot locate specified Dockerfile"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // nothing of any of these is left
    assert!(build_tmp(&b).is_empty(), "left: {:?}", build_tmp(&b));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn a_symlink_to_etc_in_the_context_never_reaches_the_hosts_etc() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let ctx = b.context(
        "sym",
        &[
            ("Dockerfile", "FROM bb:1\nCOPY link/passwd /x\n"),
            ("etc/passwd", "the context's own passwd\n"),
        ],
    );
    std::os::unix::fs::symlink("/etc", ctx.join("link")).unwrap();
    let (ok, out, err) = b.build(&["-t", "sym", ctx.to_str().unwrap()]);
    if ok {
        // resolved inside the context, as Docker does
        assert_eq!(
            b.ok(&["run", "--rm", "sym", "cat", "/x"]),
            "the context's own passwd\n"
        );
    } else {
        assert!(!err.contains("root:x:0:0"), "{out}\n{err}");
    }
    // without a context file there, nothing is copied from the host
    std::fs::remove_dir_all(ctx.join("etc")).unwrap();
    let (ok, out, err) = b.build(&["-t", "sym2", ctx.to_str().unwrap()]);
    assert!(!ok, "the host's /etc/passwd was copied:\n{out}\n{err}");
    assert!(err.contains("passwd"), "{err}");
}

#[test]
fn multi_byte_text_round_trips_into_inspect() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\n\
LABEL description=\"héllo wörld ✓ 日本語\" \"ключ\"=\"значение\"\n\
ENV GREETING=こんにちは EMOJI=\"🦀 crab\"\n\
RUN echo \"$GREETING $EMOJI\" > /g\n";
    let ctx = b.context("mb", &[("Dockerfile", df)]);
    let (ok, out, err) = b.build(&["-t", "mb", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let cfg = b.inspect_image("mb")["Config"].clone();
    assert_eq!(cfg["Labels"]["description"], "héllo wörld ✓ 日本語");
    assert_eq!(cfg["Labels"]["ключ"], "значение");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"GREETING=こんにちは".to_owned()), "{env:?}");
    assert!(env.contains(&"EMOJI=🦀 crab".to_owned()), "{env:?}");
    assert_eq!(
        b.ok(&["run", "--rm", "mb", "cat", "/g"]),
        "こんにちは 🦀 crab\n"
    );
    assert!(
        out.contains("Step 2/4 : LABEL description=\"héllo"),
        "{out}"
    );
}

// --------------------------------------------------------------------- ADD

/// A tiny HTTP/1.0 server on loopback serving `files` (path → body); 404
/// for anything else. Records the paths asked for.
struct Http {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

fn serve(files: Vec<(String, Vec<u8>)>) -> Http {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            h.lock().unwrap().push(path.clone());
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(body);
                }
                None => {
                    let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    Http { port, hits }
}

#[test]
fn add_extracts_local_archives_and_fetches_urls() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    // archives made by the tar CLI
    let src = b.context(
        "arch-src",
        &[
            ("inner/file.txt", "inside the archive\n"),
            ("top.txt", "top"),
        ],
    );
    let ctx = b.context("addctx", &[("plain.gz.txt", "not an archive")]);
    tar_cli(&src, "-czf", &ctx.join("arch.tar.gz"));
    tar_cli(&src, "-cJf", &ctx.join("arch.tar.xz"));
    let remote_tgz = std::fs::read(ctx.join("arch.tar.gz")).unwrap();
    let body = b"fetched over http\n".to_vec();
    let sum = sha256_hex(&body);
    let http = serve(vec![
        ("/dl/hello.txt".into(), body.clone()),
        ("/dl/remote.tar.gz".into(), remote_tgz),
    ]);
    let base = format!("http://127.0.0.1:{}", http.port);
    let df = format!(
        "FROM bb:1\n\
ADD arch.tar.gz /x/\n\
ADD arch.tar.xz /y/\n\
ADD plain.gz.txt /p/\n\
ADD {base}/dl/hello.txt /dst/\n\
ADD --checksum=sha256:{sum} {base}/dl/hello.txt /sum/\n\
ADD {base}/dl/remote.tar.gz /r/\n\
ADD {base}/dl/hello.txt /renamed.txt\n"
    );
    std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
    let (ok, out, err) = b.build(&["-t", "added", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "added"];
        a.extend_from_slice(args);
        b.ok(&a)
    };
    assert_eq!(run(&["cat", "/x/inner/file.txt"]), "inside the archive\n");
    assert_eq!(run(&["cat", "/y/inner/file.txt"]), "inside the archive\n");
    assert_eq!(run(&["cat", "/y/top.txt"]), "top");
    assert_eq!(run(&["cat", "/p/plain.gz.txt"]), "not an archive");
    // a URL: the URL's file name, mode 0600, root's; never unpacked
    assert_eq!(
        run(&[
            "stat",
            "-c",
            "%a %u:%g %s",
            "/dst/hello.txt",
            "/sum/hello.txt"
        ]),
        format!("600 0:0 {n}\n600 0:0 {n}\n", n = body.len())
    );
    assert_eq!(run(&["cat", "/dst/hello.txt"]), "fetched over http\n");
    assert_eq!(
        run(&["stat", "-c", "%F", "/r/remote.tar.gz"]),
        "regular file\n"
    );
    assert_eq!(run(&["cat", "/renamed.txt"]), "fetched over http\n");
    assert!(
        http.hits
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "/dl/remote.tar.gz"),
        "the server was asked"
    );
    // a wrong checksum fails the build
    let wrong = "0".repeat(64);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM bb:1\nADD --checksum=sha256:{wrong} {base}/dl/hello.txt /\n"),
    )
    .unwrap();
    let (ok, out, err) = b.build(&[ctx.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&sum), "the digest got: {err}");
    // a URL that is not there
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM bb:1\nADD {base}/dl/missing.txt /\n"),
    )
    .unwrap();
    let (ok, out, err) = b.build(&[ctx.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(err.contains("404"), "{err}");
    // git sources and COPY of a URL are refused
    for (df, want) in [
        (
            "FROM bb:1\nADD git@github.com:moby/moby.git /src\n".to_owned(),
            "not supported yet",
        ),
        (
            format!("FROM bb:1\nADD {base}/repo/x.git /src\n"),
            "not supported yet",
        ),
        (
            format!("FROM bb:1\nCOPY {base}/dl/hello.txt /\n"),
            "source can't be a URL for COPY",
        ),
        // --checksum is for a URL only
        (
            format!("FROM bb:1\nADD --checksum=sha256:{sum} plain.gz.txt /\n"),
            "checksum can't be specified for non-HTTP(S) sources",
        ),
        (
            format!("FROM bb:1\nCOPY --checksum=sha256:{sum} plain.gz.txt /\n"),
            "checksum",
        ),
    ] {
        std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
        let (ok, out, err) = b.build(&[ctx.to_str().unwrap()]);
        assert!(!ok, "{df}: {out}");
        assert!(err.contains(want), "{df}: want {want:?} in {err}");
    }
    assert!(
        !http.hits.lock().unwrap().iter().any(|p| p.contains(".git")),
        "a git URL was fetched"
    );
    assert!(build_tmp(&b).is_empty(), "left: {:?}", build_tmp(&b));
}

// ------------------------------------------------------------ instructions

#[test]
fn copy_chown_chmod_and_metadata_instructions_reach_the_image() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = r#"FROM bb:1
WORKDIR /new/deep/dir
RUN pwd > /pwd && touch here
WORKDIR rel
SHELL ["/usr/bin/env", "FROM_SHELL=yes", "/bin/sh", "-c"]
RUN echo "shell=$FROM_SHELL" > /shell
CMD echo hi
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --start-interval=2s --retries=4 CMD ["true"]
VOLUME ["/data", "/logs"]
VOLUME /more
EXPOSE 8000-8002/udp 9000
COPY --chown=daemon:tty f /own/named
COPY --chown=1234 f /own/num
COPY --chmod=0640 f /own/mode
COPY --chown=nobody:nogroup --chmod=0600 f /own/both
"#;
    let ctx = b.context("ins", &[("Dockerfile", df), ("f", "f\n")]);
    let (ok, out, err) = b.build(&["-t", "ins", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "ins"];
        a.extend_from_slice(args);
        b.ok(&a)
    };
    assert_eq!(
        run(&[
            "stat",
            "-c",
            "%u:%g %a",
            "/own/named",
            "/own/num",
            "/own/mode",
            "/own/both"
        ]),
        "1:5 644\n1234:1234 644\n0:0 640\n65534:65534 600\n"
    );
    assert_eq!(run(&["cat", "/pwd"]), "/new/deep/dir\n");
    assert_eq!(
        run(&[
            "stat",
            "-c",
            "%F",
            "/new/deep/dir/here",
            "/new/deep/dir/rel"
        ]),
        "regular empty file\ndirectory\n"
    );
    assert_eq!(run(&["cat", "/shell"]), "shell=yes\n");
    let cfg = b.inspect_image("ins")["Config"].clone();
    let shell = json!(["/usr/bin/env", "FROM_SHELL=yes", "/bin/sh", "-c"]);
    assert_eq!(cfg["WorkingDir"], "/new/deep/dir/rel");
    assert_eq!(cfg["Shell"], shell);
    assert_eq!(
        cfg["Cmd"],
        json!(["/usr/bin/env", "FROM_SHELL=yes", "/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(
        cfg["Healthcheck"],
        json!({
            "Test": ["CMD", "true"],
            "Interval": 5_000_000_000u64,
            "Timeout": 3_000_000_000u64,
            "StartPeriod": 10_000_000_000u64,
            "StartInterval": 2_000_000_000u64,
            "Retries": 4
        })
    );
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&cfg["Volumes"]), ["/data", "/logs", "/more"]);
    assert_eq!(
        keys(&cfg["ExposedPorts"]),
        ["8000/udp", "8001/udp", "8002/udp", "9000/tcp"]
    );
    // the history shows the new shell for a RUN after SHELL
    let h = b.ok(&["history", "--no-trunc", "ins"]);
    assert!(
        h.contains("/usr/bin/env FROM_SHELL=yes /bin/sh -c echo \"shell=$FROM_SHELL\" > /shell"),
        "{h}"
    );
    // an unknown user or group names the problem
    for (flag, want) in [
        ("--chown=nosuchuser", "nosuchuser"),
        ("--chown=daemon:nosuchgroup", "nosuchgroup"),
        ("--chmod=999", "invalid chmod"),
    ] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM bb:1\nCOPY {flag} f /f\n"),
        )
        .unwrap();
        let (ok, out, err) = b.build(&[ctx.to_str().unwrap()]);
        assert!(!ok, "{flag}: {out}");
        assert!(err.contains(want), "{flag}: {err}");
    }
}

#[test]
fn entrypoint_resets_an_inherited_cmd() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = r#"FROM bb:1 AS base
CMD ["echo", "base-cmd"]
FROM base AS inherit
ENTRYPOINT ["echo", "ep"]
"#;
    let ctx = b.context("ep", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    let (ok, out, err) = b.build(&["--target", "inherit", "-t", "ep:inherit", c]);
    assert!(ok, "{out}\n{err}");
    let cfg = b.inspect_image("ep:inherit")["Config"].clone();
    assert_eq!(cfg["Entrypoint"], json!(["echo", "ep"]));
    assert!(cfg["Cmd"].is_null(), "the inherited CMD is reset: {cfg}");
    assert_eq!(b.ok(&["run", "--rm", "ep:inherit"]), "ep\n");
}

#[test]
fn entrypoint_keeps_a_cmd_set_in_the_same_stage() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\nCMD [\"own-cmd\"]\nENTRYPOINT [\"echo\"]\n";
    let ctx = b.context("ep", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    // Docker keeps a CMD the same stage set before the ENTRYPOINT
    let (ok, out, err) = b.build(&["-t", "ep:own", c]);
    assert!(ok, "{out}\n{err}");
    let cfg = b.inspect_image("ep:own")["Config"].clone();
    assert_eq!(cfg["Cmd"], json!(["own-cmd"]), "{cfg}");
    assert_eq!(b.ok(&["run", "--rm", "ep:own"]), "own-cmd\n");
}

#[test]
fn arg_scoping_platform_args_and_env_references() {
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = r#"ARG GLOBAL=g1
ARG OTHER=o1
FROM bb:1
RUN echo "global=[$GLOBAL] other=[$OTHER] arch=[$TARGETARCH]" > /before
ARG OTHER
ARG TARGETARCH
ARG TARGETPLATFORM
ARG LOCAL=l1
RUN echo "other=[$OTHER] local=[$LOCAL]" > /after && echo "$TARGETARCH $TARGETPLATFORM" > /plat
ENV A=1
ENV B=${A}2 C="$A-x" D=${LOCAL:-unset}
RUN echo "$B $C $D" > /env
"#;
    let ctx = b.context("args", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    let (ok, out, err) = b.build(&["-t", "args:1", "--build-arg", "UNUSED=1", c]);
    assert!(ok, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{all}"
    );
    let cat = |img: &str, f: &str| b.ok(&["run", "--rm", img, "cat", f]);
    assert_eq!(cat("args:1", "/before"), "global=[] other=[] arch=[]\n");
    assert_eq!(cat("args:1", "/after"), "other=[o1] local=[l1]\n");
    assert_eq!(
        cat("args:1", "/plat"),
        format!("{a} linux/{a}\n", a = go_arch())
    );
    assert_eq!(cat("args:1", "/env"), "12 1-x l1\n");
    let env: Vec<String> =
        serde_json::from_value(b.inspect_image("args:1")["Config"]["Env"].clone()).unwrap();
    assert!(!env.iter().any(|e| e.starts_with("LOCAL=")), "{env:?}");
    // a build argument overrides the global default of a re-declared ARG;
    // every argument used: no warning
    let (ok, out, err) = b.build(&[
        "-t",
        "args:2",
        "--build-arg",
        "OTHER=cli",
        "--build-arg",
        "GLOBAL=x",
        c,
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(!format!("{out}{err}").contains("[Warning]"), "{out}\n{err}");
    assert_eq!(cat("args:2", "/after"), "other=[cli] local=[l1]\n");
    assert_eq!(cat("args:2", "/before"), "global=[] other=[] arch=[]\n");
}

#[test]
fn env_pairs_of_one_instruction_see_the_values_before_it() {
    // Docker's reference ("Environment replacement"): `ENV abc=bye
    // def=$abc` gives def the value abc had before the instruction
    if !root_or_skip("berth build") {
        return;
    }
    let b = Berth::with_busybox(bin(), "bb:1");
    let df = "FROM bb:1\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n";
    let ctx = b.context("envdoc", &[("Dockerfile", df)]);
    let (ok, out, err) = b.build(&["-t", "envdoc", ctx.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let env: Vec<String> =
        serde_json::from_value(b.inspect_image("envdoc")["Config"]["Env"].clone()).unwrap();
    assert!(env.contains(&"abc=bye".to_owned()), "{env:?}");
    assert!(env.contains(&"def=hello".to_owned()), "{env:?}");
    assert!(env.contains(&"ghi=bye".to_owned()), "{env:?}");
}

// --------------------------------------------------------------- docker-py

#[test]
fn docker_py_custom_gzip_context_quiet_and_pull() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    if !have_docker_py() {
        return;
    }
    let ctx = b.context("pydir", &[("Dockerfile", "FROM bb:1\nRUN echo q > /q\n")]);
    // works with docker-py 5 (Debian's) and 7
    let script = format!(
        r#"
import docker, io, json, tarfile
c = docker.DockerClient(base_url="unix://{sock}")
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w:gz")
for name, data in [("Dockerfile", b"FROM bb:1\nCOPY msg /msg\n"), ("msg", "gzip ctx \u2713\n".encode())]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    t.addfile(info, io.BytesIO(data))
t.close()
buf.seek(0)
img, logs = c.images.build(fileobj=buf, custom_context=True, encoding="gzip", tag="pyctx:1")
print("CTX", img.id)
print("MSG", c.containers.run("pyctx:1", "cat /msg", remove=True).decode().strip())
lines = list(c.api.build(path="{ctx}", quiet=True, decode=True, tag="pyq:1"))
print("QUIET", json.dumps(lines))
img, logs = c.images.build(path="{ctx}", pull=False, tag="pyp:1", nocache=True)
text = "".join(l.get("stream", "") + l.get("status", "") for l in logs)
print("STEPS", text.count("Step "))
print("PULLING", "Pulling" in text or "Downloaded" in text)
try:
    c.images.build(path="{ctx}", pull=True, tag="pyp:2")
    print("PULLTRUE built")
except (docker.errors.BuildError, docker.errors.APIError) as e:
    print("PULLTRUE failed", str(e).replace("\n", " "))
"#,
        sock = d.sock.display(),
        ctx = ctx.display()
    );
    let out = d.python(&script);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "pyctx:1"]);
    assert!(out.contains(&format!("CTX {}", id.trim())), "{out}");
    assert!(out.contains("MSG gzip ctx ✓"), "{out}");
    let quiet: Vec<Value> = out
        .lines()
        .find_map(|l| l.strip_prefix("QUIET "))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_default();
    let qid = d.ok(&["inspect", "-f", "{{.Id}}", "pyq:1"]);
    let streams: Vec<&str> = quiet.iter().filter_map(|l| l["stream"].as_str()).collect();
    assert_eq!(streams, [format!("{}\n", qid.trim())], "quiet: {quiet:?}");
    assert!(out.contains("STEPS 2"), "{out}");
    assert!(out.contains("PULLING False"), "{out}");
    // pull=True is read: bb:1 is on no registry
    assert!(out.contains("PULLTRUE failed"), "{out}");
}

// ------------------------------------------------------------ cancellation

/// Processes running `sleep 30` (the step's shell or its child).
fn sleepers() -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.trim_end() == "sleep 30" || cmd.contains("-c sleep 30") {
            v.push(format!("{name}: {cmd}"));
        }
    }
    v
}

#[test]
fn a_client_that_goes_away_cancels_the_build_and_leaves_nothing() {
    let Some((b, d)) = busybox_daemon(bin()) else {
        return;
    };
    let tar = raw_tar(&[("Dockerfile", b"FROM bb:1\nRUN sleep 30\n", None)]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let head = format!(
        "POST /v1.41/build?t=cancelled:1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&tar).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(" ---> Running in ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    // the step is running
    berth_testutil::wait_for("the step's sleep", || {
        (!sleepers().is_empty()).then_some(())
    });
    assert!(
        !d.ok(&["ps", "-aq"]).trim().is_empty(),
        "the step container"
    );
    drop(s);
    let start = Instant::now();
    loop {
        let ps = d.ok(&["ps", "-aq"]);
        let sl = sleepers();
        let mounts = mounts_under(&b);
        let tmp = build_tmp(&b);
        if ps.trim().is_empty() && sl.is_empty() && mounts.is_empty() && tmp.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "after the client left: containers {ps:?}, sleeps {sl:?}, mounts {mounts:?}, build/tmp {tmp:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.fails(&["inspect", "cancelled:1"]).contains("No such"),
        "no image was tagged"
    );
    // the daemon builds on
    let (ok, out, err) = docker_build(&d, &["-t", "after:1", "-"], b"FROM bb:1\nRUN true\n");
    assert!(ok, "{out}\n{err}");
}
