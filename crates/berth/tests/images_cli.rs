//! The image verbs of the CLI end to end: import, images, inspect,
//! history, tag, rmi, prune, save, load (with podman's archives), and
//! `run IMAGE` honouring the image's config, copy-on-write over shared
//! layers, leaving nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testutil::{Berth, busybox_tar, root_or_skip};
use sha2::Digest as _;

fn berth() -> Berth {
    Berth::new(Path::new(env!("CARGO_BIN_EXE_berth")))
}

fn count_entries(p: &Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    !e.file_name().to_string_lossy().starts_with(".") && e.file_name() != "gc.lock"
                })
                .count()
        })
        .unwrap_or(0)
}

fn mounts_under(p: &Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&p)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn import_images_inspect_tag_history_rmi() {
    if !root_or_skip("image verbs") {
        return;
    }
    let b = berth();
    let tar = busybox_tar(b.dir.path());
    let id = b.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        "-c",
        "ENV A=1",
        "-c",
        "WORKDIR /tmp",
        "-m",
        "from a tar",
        tar.to_str().unwrap(),
        "bb:1",
    ]);
    let id = id.trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let list = b.ok(&["images"]);
    let mut lines = list.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["bb", "1", &id[7..19]]);
    assert_eq!(b.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
            .trim(),
        format!("bb:1 {}", &id[7..19])
    );
    assert_eq!(b.ok(&["images", "--no-trunc", "-q"]).trim(), id);

    let doc: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "bb:1"])).unwrap();
    let img = &doc[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"], serde_json::json!(["bb:1"]));
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(img["Config"]["WorkingDir"], "/tmp");
    assert!(
        img["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "A=1")
    );
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Comment"], "from a tar");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(img["Size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(
        b.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Os}}",
            &id[7..19]
        ])
        .trim(),
        format!("{id} linux")
    );
    let err = b.fails(&["image", "inspect", "nosuch:image"]);
    assert!(err.contains("No such image"), "{err}");

    let hist = b.ok(&["history", "bb:1"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    assert!(
        hist.lines().nth(1).unwrap().starts_with(&id[7..19]),
        "{hist}"
    );

    // tags are names for one image
    b.ok(&["tag", "bb:1", "example.test:5000/team/bb:v2"]);
    let list = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        list.contains("bb:1") && list.contains("example.test:5000/team/bb:v2"),
        "{list}"
    );
    assert_eq!(
        b.ok(&["images", "-q"]).trim(),
        &id[7..19],
        "one image, two names"
    );
    let err = b.fails(&["tag", "bb:1", "Bad/Name"]);
    assert!(err.contains("lowercase"), "{err}");
    let err = b.fails(&["tag", "nosuch", "x:1"]);
    assert!(err.contains("No such image"), "{err}");

    // rmi of one name untags; of the last name deletes, with its layers
    let out = b.ok(&["rmi", "bb:1"]);
    assert_eq!(out.trim(), "Untagged: bb:1");
    let out = b.ok(&["rmi", "example.test:5000/team/bb:v2"]);
    assert!(
        out.contains("Untagged: example.test:5000/team/bb:v2")
            && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    assert_eq!(
        count_entries(&b.root().join("snapshots")),
        0,
        "snapshots removed"
    );
    assert_eq!(
        count_entries(&b.root().join("content/blobs/sha256")),
        0,
        "blobs removed"
    );
    let err = b.fails(&["rmi", "bb:1"]);
    assert!(err.contains("No such image"), "{err}");

    // prune removes dangling images only unless -a
    b.ok(&["import", tar.to_str().unwrap()]);
    b.ok(&["import", tar.to_str().unwrap(), "keep:1"]);
    let dangling = b.ok(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(dangling.lines().count(), 1, "{dangling}");
    let out = b.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    b.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
}

fn import_app(b: &Berth, name: &str) -> String {
    let tar = busybox_tar(b.dir.path());
    b.ok(&[
        "import",
        "-c",
        "ENV GREETING=hello",
        "-c",
        "WORKDIR /tmp",
        "-c",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        "-c",
        r#"CMD ["echo default"]"#,
        "-c",
        "USER nobody",
        tar.to_str().unwrap(),
        name,
    ])
    .trim()
    .to_owned()
}

#[test]
fn run_uses_the_image_config_and_leaves_the_image_intact() {
    if !root_or_skip("run image") {
        return;
    }
    let b = berth();
    import_app(&b, "app:1");
    assert_eq!(b.ok(&["run", "--rm", "app:1"]).trim(), "default");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "app:1",
            "echo $GREETING $(pwd) $(id -u):$(id -g) $HOME $(hostname | wc -c)"
        ])
        .trim(),
        "hello /tmp 65534:65534 /home 13",
        "ENV, WORKDIR, USER (with its passwd entry), 12-character hostname"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-e",
            "GREETING=bye",
            "-e",
            "EXTRA=1",
            "-w",
            "/",
            "-u",
            "0",
            "app:1",
            "echo $GREETING$EXTRA $(pwd) $(id -u)"
        ])
        .trim(),
        "bye1 / 0"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "app:1",
            "a",
            "b"
        ])
        .trim(),
        "a b"
    );
    let o = b.run(&["run", "--rm", "app:1", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "the container's exit code");
    let o = b.run(&["run", "--rm", "--entrypoint", "/nosuch", "app:1"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = b.run(&["run", "--rm", "-u", "nosuchuser", "app:1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchuser"));
    let o = b.run(&["run", "--rm", "--pull", "never", "missing:1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No such image"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Docker's defaults: capabilities, loopback only with --network none,
    // masked paths
    let caps = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "0",
        "app:1",
        "grep CapEff /proc/self/status; ls /sys/class/net; cat /proc/kcore 2>&1 | wc -c",
    ]);
    assert!(
        caps.contains("00000000a80425fb"),
        "docker's default capability set: {caps}"
    );
    assert!(caps.contains("lo") && !caps.contains("eth0"), "{caps}");

    // copy-on-write: a container's changes never reach the image
    b.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "app:1",
        "echo changed > /etc/motd; rm /bin/ls; echo new > /newfile",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "app:1",
        "cat /etc/motd 2>&1; ls /newfile 2>&1; test -e /bin/ls && echo ls-intact",
    ]);
    assert!(
        !out.contains("changed") && out.contains("ls-intact") && out.contains("No such file"),
        "{out}"
    );
    let o = b.run(&["run", "--rm", "--read-only", "-u", "0", "app:1", "touch /x"]);
    assert_ne!(o.status.code(), Some(0), "read-only root");

    // the image cannot be removed while a container uses it
    let mut running = b.cmd(&["run", "--rm", "app:1", "sleep 3"]).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count_entries(&b.root().join("containers")) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = b.fails(&["rmi", "app:1"]);
    assert!(
        err.contains("container is using its referenced image"),
        "{err}"
    );
    assert!(running.wait().unwrap().success());

    // nothing left: container directories, mounts, runtime state
    assert_eq!(count_entries(&b.root().join("containers")), 0);
    assert!(
        mounts_under(&b.root()).is_empty(),
        "{:?}",
        mounts_under(&b.root())
    );
    assert_eq!(count_entries(&b.root().join("oci")), 0);
    b.ok(&["rmi", "app:1"]);
}

#[test]
fn unsupported_run_options_fail_clearly() {
    let b = berth();
    for args in [
        vec!["run", "--security-opt", "apparmor=docker-default", "x"],
        vec!["run", "--security-opt", "label=type:svirt_t", "x"],
    ] {
        let o = b.run(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not supported yet"),
            "{args:?}"
        );
    }
    // a seccomp profile that cannot be read, and a network that does not exist
    let o = b.run(&["run", "--security-opt", "seccomp=/nonexistent.json", "x"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("seccomp profile"));
    let o = b.run(&["run", "--rm", "--bogus-flag", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--bogus-flag"));
}

fn podman(dir: &Path) -> Option<Command> {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("skipping the podman interop test: podman is not installed");
        return None;
    }
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("pm-root"))
        .arg("--runroot")
        .arg(dir.join("pm-run"))
        .args(["--storage-driver", "vfs"]);
    Some(c)
}

fn pm(dir: &Path, args: &[&str]) -> String {
    let o = podman(dir).unwrap().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn podman_archives_load_and_run_and_berth_archives_load_in_podman() {
    if !root_or_skip("podman archives") {
        return;
    }
    let b = berth();
    let d = b.dir.path().to_path_buf();
    if podman(&d).is_none() {
        return;
    }
    let tar = busybox_tar(&d);
    let pid = pm(
        &d,
        &[
            "import",
            "--change",
            r#"CMD ["echo", "from podman"]"#,
            tar.to_str().unwrap(),
            "localhost/pb:1",
        ],
    );
    let pid = pid.trim().to_owned();
    let da = d.join("docker.tar");
    let oa = d.join("oci.tar");
    pm(
        &d,
        &[
            "save",
            "--format",
            "docker-archive",
            "-o",
            da.to_str().unwrap(),
            "localhost/pb:1",
        ],
    );
    pm(
        &d,
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oa.to_str().unwrap(),
            "localhost/pb:1",
        ],
    );

    let out = b.ok(&["load", "-i", da.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: localhost/pb:1");
    let id = b.ok(&["image", "inspect", "--format", "{{.Id}}", "localhost/pb:1"]);
    assert_eq!(
        id.trim(),
        pid,
        "the image id (config digest) survives the archive"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "localhost/pb:1"]).trim(),
        "from podman"
    );
    b.ok(&["rmi", "localhost/pb:1"]);

    // oci-archive, from stdin
    let o = b
        .cmd(&["load"])
        .stdin(std::fs::File::open(&oa).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        b.ok(&["run", "--rm", "localhost/pb:1"]).trim(),
        "from podman"
    );

    // and back: berth's archives load in podman (both formats)
    for (fmt, name) in [
        ("docker-archive", "b-docker.tar"),
        ("oci-archive", "b-oci.tar"),
    ] {
        let out = d.join(name);
        b.ok(&[
            "save",
            "--format",
            fmt,
            "-o",
            out.to_str().unwrap(),
            "localhost/pb:1",
        ]);
        pm(&d, &["rmi", "-f", "localhost/pb:1"]);
        let loaded = pm(&d, &["load", "-i", out.to_str().unwrap()]);
        assert!(loaded.contains("pb"), "{fmt}: {loaded}");
        let ids = pm(&d, &["images", "--no-trunc", "--format", "{{.ID}}"]);
        assert!(
            ids.contains(&pid[7..]),
            "{fmt}: podman sees the same image id: {ids}"
        );
    }

    // a damaged archive: a clear error and nothing named
    let bytes = std::fs::read(&da).unwrap();
    let cut = d.join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    b.ok(&["rmi", "localhost/pb:1"]);
    let err = b.fails(&["load", "-i", cut.to_str().unwrap()]);
    assert!(!err.is_empty());
    assert_eq!(b.ok(&["images", "-q"]).trim(), "", "nothing half-loaded");
}

/// Writes a docker-archive of `n` images that share one base layer (the
/// busybox rootfs) and add 100 kB each.
fn shared_base_archive(dir: &Path, n: usize) -> PathBuf {
    let base = busybox_tar(dir);
    let base_bytes = std::fs::read(&base).unwrap();
    let hex = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let base_id = hex(&base_bytes);
    let staging = dir.join("archive");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join(format!("{base_id}.tar")), &base_bytes).unwrap();
    let mut manifest = Vec::new();
    for i in 0..n {
        let layer_dir = dir.join(format!("layer{i}"));
        std::fs::create_dir_all(layer_dir.join("app")).unwrap();
        std::fs::write(
            layer_dir.join(format!("app/{i}.bin")),
            vec![i as u8; 100_000],
        )
        .unwrap();
        let layer = dir.join(format!("layer{i}.tar"));
        assert!(
            Command::new("tar")
                .arg("-C")
                .arg(&layer_dir)
                .arg("-cf")
                .arg(&layer)
                .arg("app")
                .status()
                .unwrap()
                .success()
        );
        let lb = std::fs::read(&layer).unwrap();
        let lid = hex(&lb);
        std::fs::write(staging.join(format!("{lid}.tar")), &lb).unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/ls", "/app"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{base_id}"), format!("sha256:{lid}")]},
            "history": [{"created_by": "base"}, {"created_by": format!("app {i}")}],
        })
        .to_string();
        let cid = hex(config.as_bytes());
        std::fs::write(staging.join(format!("{cid}.json")), &config).unwrap();
        manifest.push(serde_json::json!({
            "Config": format!("{cid}.json"),
            "RepoTags": [format!("shared/app:{i}")],
            "Layers": [format!("{base_id}.tar"), format!("{lid}.tar")],
        }));
    }
    std::fs::write(
        staging.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let out = dir.join("shared.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .arg("-cf")
            .arg(&out)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    out
}

fn du(p: &Path) -> u64 {
    let o = Command::new("du")
        .args(["-s", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn images_sharing_a_base_store_it_once() {
    if !root_or_skip("shared layers") {
        return;
    }
    let b = berth();
    let archive = shared_base_archive(b.dir.path(), 10);
    let out = b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.lines().count(), 10, "{out}");
    // every image unpacked: the base once, ten small layers
    for i in 0..10 {
        let ls = b.ok(&["run", "--rm", &format!("shared/app:{i}")]);
        assert_eq!(ls.trim(), format!("{i}.bin"));
    }
    let snaps = b.root().join("snapshots");
    assert_eq!(count_entries(&snaps), 11, "one snapshot per distinct layer");
    let base = du(&berth_testutil::busybox_rootfs());
    let used = du(&snaps);
    // base once + 10 × (100 kB + a little for directories)
    assert!(
        used < base + 10 * 150_000,
        "snapshots use {used} bytes; base alone is {base}"
    );
    assert!(used >= base, "{used} < {base}");
    // and the base blob is stored once
    let content = du(&b.root().join("content"));
    let base_blob = std::fs::metadata(b.dir.path().join("busybox.tar"))
        .unwrap()
        .len();
    assert!(
        content < base_blob + 10 * 250_000,
        "content uses {content} bytes; the base blob is {base_blob}"
    );
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// specs/security-and-reliability.md §5.2 rows that need a running
/// container: device nodes in layers, image-config volume paths
/// (CVE-2022-23648), supplementary groups (CVE-2023-25173), data-root
/// permissions (CVE-2021-41091).
#[test]
fn hostile_image_contents_stay_harmless() {
    if !root_or_skip("hostile image contents") {
        return;
    }
    let b = berth();
    let staging = berth_testutil::busybox_copy(&b.dir.path().join("rootfs"));
    assert!(
        Command::new("mknod")
            .arg(staging.join("evil"))
            .args(["c", "1", "1"])
            .status()
            .unwrap()
            .success()
    );
    let mut passwd = std::fs::read_to_string(staging.join("etc/passwd")).unwrap();
    passwd.push_str("app:x:1000:1000::/home/app:/bin/sh\n");
    std::fs::write(staging.join("etc/passwd"), passwd).unwrap();
    let mut group = std::fs::read_to_string(staging.join("etc/group")).unwrap();
    group.push_str("app:x:1000:\ng1:x:2001:app\ng2:x:2002:other,app\ng3:x:2003:other\n");
    std::fs::write(staging.join("etc/group"), group).unwrap();
    let tar = b.dir.path().join("hostile.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    b.ok(&[
        "import",
        "-c",
        "USER app",
        "-c",
        r#"VOLUME ["/../../../../etc"]"#,
        tar.to_str().unwrap(),
        "hostile:1",
    ]);

    let groups = b.ok(&["run", "--rm", "hostile:1", "id", "-G"]);
    let mut g: Vec<&str> = groups.split_whitespace().collect();
    g.sort();
    assert_eq!(
        g,
        ["1000", "2001", "2002"],
        "USER app gets its supplementary groups"
    );

    let o = b.run(&[
        "run",
        "--rm",
        "-u",
        "0",
        "hostile:1",
        "head",
        "-c",
        "1",
        "/evil",
    ]);
    assert!(
        !o.status.success(),
        "a /dev/mem node from a layer must not be readable"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not permitted"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    if Path::new("/etc/debian_version").exists() {
        let out = b.ok(&[
            "run",
            "--rm",
            "hostile:1",
            "sh",
            "-c",
            "test -e /etc/debian_version && echo leaked || echo clean",
        ]);
        assert_eq!(
            out.trim(),
            "clean",
            "a VOLUME path climbing out of the rootfs brings no host files in"
        );
    } else {
        eprintln!(
            "(no /etc/debian_version on this host: the volume-path check has no host file to look for)"
        );
    }

    let root = b.root();
    assert_eq!(mode(&root), 0o711);
    for d in ["content", "snapshots", "containers"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
}

/// An image config's `created` is whatever the image's author wrote: a
/// multi-byte character inside the offset must not abort `images` or
/// `history`, and a real offset is honoured.
#[test]
fn odd_created_times_never_abort_images_or_history() {
    use berth_testutil::archives::{Compression, DockerArchive, layer};
    let b = berth();
    let l = layer(&[("hello", b"hi\n")], Compression::Gzip);
    let odd = "2023-11-14T22:13:20+0\u{e9}:0";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // three hours ago, written in India's time zone
    let local = berth_types::time::format_rfc3339(now - 3 * 3600 + 5 * 3600 + 1800, 0)
        .replace(".000000000Z", "+05:30");
    let mut a = DockerArchive::new();
    a.image(
        serde_json::json!({"created": odd, "history": [{"created": odd, "created_by": "odd layer"}]}),
        &[&l],
        &["odd/time:1"],
    )
    .image(
        serde_json::json!({"created": local, "history": [{"created": local, "created_by": "local layer"}]}),
        &[&l],
        &["odd/time:2"],
    );
    let p = b.dir.path().join("odd.tar");
    a.write(&p);
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    let out = b.ok(&["images", "--format", "{{.Tag}} {{.CreatedSince}}|"]);
    assert!(
        out.contains("1 |"),
        "an unparseable time shows as nothing: {out}"
    );
    assert!(out.contains("2 3 hours ago|"), "{out}");
    let out = b.ok(&["images"]);
    assert!(out.contains("N/A"), "{out}");
    let out = b.ok(&["history", "odd/time:1"]);
    assert!(out.contains("odd layer"), "{out}");
    let out = b.ok(&["history", "--human=false", "odd/time:1"]);
    assert!(out.contains(odd), "the raw value as written: {out}");
    let out = b.ok(&["history", "odd/time:2"]);
    assert!(out.contains("3 hours ago"), "{out}");
}

/// A docker-archive holding one image of `layer`.
fn archive_of(b: &Berth, name: &str, layer: &berth_testutil::archives::Layer) -> PathBuf {
    let mut a = berth_testutil::archives::DockerArchive::new();
    a.image(serde_json::json!({}), &[layer], &[&format!("{name}:1")]);
    let p = b.dir.path().join(format!("{name}.tar"));
    a.write(&p);
    p
}

/// Layers that inflate far past their size stop at a multiple of it
/// (specs/security-and-reliability.md §5.2 "decompression bomb"), gzip and
/// zstd alike, leaving nothing; berth's config file lets a legitimate huge
/// layer through.
#[test]
fn layer_bombs_stop_at_the_configured_expansion() {
    use berth_testutil::archives::{Compression, zeros_layer};
    let b = berth();
    for (kind, c) in [("gzip", Compression::Gzip), ("zstd", Compression::Zstd)] {
        // 96 MiB of zeros in 4 MiB files: about 100 kB of gzip, 10 kB of zstd
        let l = zeros_layer(24, 4 << 20, c);
        let size = l.blob.len();
        let p = archive_of(&b, &format!("bomb-{kind}"), &l);
        let err = b.fails(&["load", "-i", p.to_str().unwrap()]);
        assert!(
            err.contains(&format!(
                "({size} bytes, {kind}) expands to more than 67108864 bytes"
            )) && err.contains("max-layer-expansion"),
            "{err}"
        );
    }
    // the same layer with a larger ratio allowed; then an absolute cap
    let l = zeros_layer(24, 4 << 20, Compression::Zstd);
    let p = archive_of(&b, "big", &l);
    b.config(&serde_json::json!({"max-layer-expansion": 100_000_000}));
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    b.ok(&["rmi", "big:1"]);
    b.ok(&["image", "prune", "-f"]);
    b.config(&serde_json::json!({"max-layer-expansion": 100_000_000, "max-layer-size": 33554432}));
    let err = b.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(
        err.contains("expands to more than 33554432 bytes, the max-layer-size"),
        "{err}"
    );
    b.config(&serde_json::json!({"max-layer-expansion": 0}));
    let err = b.fails(&["images"]);
    assert!(
        err.contains("daemon.json: max-layer-expansion must be at least 1"),
        "{err}"
    );
}

/// A layer that does not fit in the free space of the snapshots'
/// filesystem stops there, with an error that says so.
#[test]
fn layers_stop_at_the_free_space() {
    use berth_testutil::archives::{Compression, zeros_layer};
    if !root_or_skip("a small tmpfs for snapshots") {
        return;
    }
    let b = berth();
    let snaps = b.root().join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&snaps)
            .status()
            .unwrap()
            .success()
    );
    let _unmount = Unmount(snaps.clone());
    // 24 MiB: under the expansion limit, over the free space
    let l = zeros_layer(6, 4 << 20, Compression::Gzip);
    let p = archive_of(&b, "roomy", &l);
    let err = b.fails(&["load", "-i", p.to_str().unwrap()]);
    assert!(
        err.contains("bytes free on the filesystem of") && err.contains("snapshots"),
        "{err}"
    );
    assert_eq!(b.ok(&["images", "-a", "-q"]).trim(), "");
    assert_eq!(count_entries(&snaps), 0, "the partial layer is gone");
}

/// A load or import that fails, however late, leaves the store exactly as
/// it was: no image row, no name, no layer or snapshot row, no snapshot
/// directory, no blob, nothing being written.
#[test]
fn failed_loads_and_imports_leave_the_store_as_it_was() {
    use berth_testutil::archives::{Compression, DockerArchive, layer, zeros_layer};
    let b = berth();
    let base = layer(&[("etc/base", b"base\n")], Compression::Gzip);
    let mut a = DockerArchive::new();
    a.image(
        serde_json::json!({"created": "2026-01-01T00:00:00Z"}),
        &[&base],
        &["kept:1"],
    );
    let p = b.dir.path().join("kept.tar");
    a.write(&p);
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    let before = b.store_state();
    assert_eq!(before.snapshots.len(), 1, "{before:?}");

    let new_layer = layer(&[("app/one", b"1\n")], Compression::Gzip);
    let mut bad_diff = layer(&[("app/two", b"2\n")], Compression::Zstd);
    bad_diff.diff_id = new_layer.diff_id.clone();
    let not_a_tar = berth_testutil::archives::Layer {
        blob: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4],
        diff_id: berth_testutil::archives::sha256(b"x"),
    };
    let escape = {
        // an entry climbing out of the layer: refused while unpacking
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..14].copy_from_slice(b"../../../evil\0");
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend([0u8; 1024]);
        berth_testutil::archives::Layer {
            diff_id: berth_testutil::archives::sha256(&t),
            blob: t,
        }
    };
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push((
        "garbage",
        b"this is not a tar archive at all".repeat(100),
        "",
    ));
    let mut two = DockerArchive::new();
    // the first image would load; the second's layer is not what its
    // config says: neither is kept, nor the snapshots of either
    two.image(serde_json::json!({}), &[&base, &new_layer], &["first:1"])
        .image(serde_json::json!({}), &[&base, &bad_diff], &["second:1"]);
    cases.push(("wrong diff id in a second image", two.bytes(), "diff id"));
    let whole = two.bytes();
    cases.push(("truncated", whole[..whole.len() - 3000].to_vec(), ""));
    let mut missing = DockerArchive::new();
    missing.image(serde_json::json!({}), &[&new_layer], &["missing:1"]);
    let bytes = missing.bytes();
    // drop the layer's file from the archive: rebuild without it
    let mut lacking = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with("layer.tar") {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        lacking
            .append_data(&mut h, e.path().unwrap(), &data[..])
            .unwrap();
    }
    cases.push((
        "a manifest naming a missing layer",
        lacking.into_inner().unwrap(),
        "is missing",
    ));
    for (what, l) in [
        ("a layer that is not gzip", &not_a_tar),
        ("a layer climbing out", &escape),
    ] {
        let mut x = DockerArchive::new();
        x.image(
            serde_json::json!({}),
            &[&base, &new_layer, l],
            &["broken:1"],
        );
        cases.push((what, x.bytes(), ""));
    }
    let bomb = zeros_layer(24, 4 << 20, Compression::Gzip);
    let mut x = DockerArchive::new();
    x.image(serde_json::json!({}), &[&new_layer, &bomb], &["bomb:1"]);
    cases.push(("a bomb", x.bytes(), "max-layer-expansion"));
    for (what, bytes, want) in cases {
        let p = b.dir.path().join("case.tar");
        std::fs::write(&p, bytes).unwrap();
        let err = b.fails(&["load", "-i", p.to_str().unwrap()]);
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(b.store_state(), before, "load of {what}");
    }

    // import: a rootfs that is not a tar, a corrupt gzip, an escaping entry
    for (what, bytes) in [
        ("not a tar", b"plain text, not a tar".repeat(50)),
        ("corrupt gzip", not_a_tar.blob.clone()),
        ("an entry climbing out", escape.blob.clone()),
    ] {
        let p = b.dir.path().join("rootfs.tar");
        std::fs::write(&p, bytes).unwrap();
        b.fails(&["import", p.to_str().unwrap(), "imported:1"]);
        assert_eq!(b.store_state(), before, "import of {what}");
    }
    // and the store still works
    b.ok(&[
        "load",
        "-i",
        b.dir.path().join("kept.tar").to_str().unwrap(),
    ]);
    let mut good = DockerArchive::new();
    good.image(serde_json::json!({}), &[&base, &new_layer], &["first:1"]);
    let p = b.dir.path().join("good.tar");
    good.write(&p);
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    assert_eq!(b.store_state().snapshots.len(), 2);
}

/// `kill -9` during a load leaves a partial blob in `content/ingest/` or a
/// partial layer in `snapshots/tmp-…`: the next berth to open the root
/// removes them, but never those of a load that is still running (here:
/// one stalled on its input, one stopped mid-unpack).
#[test]
fn killed_loads_are_swept_and_live_ones_are_not() {
    use berth_testutil::archives::{Compression, DockerArchive, layer, zeros_layer};
    use berth_testutil::cli::{names_in, wait_for};
    use std::io::Write;
    let b = berth();
    b.config(&serde_json::json!({"max-layer-expansion": 1_000_000}));
    let empty = b.store_state();
    let root = b.root();
    let ingest = root.join("content/ingest");
    let snaps = root.join("snapshots");

    // 1. stalled while the archive streams in on stdin, then killed
    let big = layer(&[("big", &vec![7u8; 4 << 20])], Compression::None);
    let mut a = DockerArchive::new();
    a.image(serde_json::json!({}), &[&big], &["stalled:1"]);
    let bytes = a.bytes();
    let mut child = b
        .cmd(&["load"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let partial = wait_for("the load to write a MiB of its layer", || {
        names_in(&ingest)
            .into_iter()
            .find(|n| std::fs::metadata(ingest.join(n)).is_ok_and(|m| m.len() >= 1 << 20))
    });
    b.ok(&["images"]);
    assert!(
        ingest.join(&partial).exists(),
        "a running load's partial blob is not swept"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(names_in(&ingest), [partial], "left behind");
    b.ok(&["images"]);
    assert_eq!(
        names_in(&ingest),
        Vec::<String>::new(),
        "swept at the next open"
    );
    // the config blob it had stored is unreferenced: prune takes it
    b.ok(&["image", "prune", "-f"]);
    assert_eq!(b.store_state(), empty);

    // 2. stopped while unpacking a layer (256 MiB of zeros), then killed
    let mut seen = false;
    for attempt in 0..3 {
        let l = zeros_layer(64 << attempt, 4 << 20, Compression::Gzip);
        let mut a = DockerArchive::new();
        a.image(serde_json::json!({}), &[&l], &["unpacking:1"]);
        let p = b.dir.path().join("unpacking.tar");
        a.write(&p);
        let mut child = b
            .cmd(&["load", "-i", p.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let tmp = loop {
            if let Some(t) = names_in(&snaps).into_iter().find(|n| n.starts_with("tmp-")) {
                rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
                break Some(t);
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
        };
        let frozen = tmp.filter(|t| snaps.join(t).exists());
        if let Some(tmp) = frozen {
            seen = true;
            b.ok(&["images"]);
            assert!(
                snaps.join(&tmp).exists(),
                "a running load's partial layer is not swept"
            );
            child.kill().unwrap();
            child.wait().unwrap();
            b.ok(&["images"]);
            assert_eq!(
                names_in(&snaps),
                Vec::<String>::new(),
                "swept at the next open"
            );
            assert_eq!(names_in(&ingest), Vec::<String>::new());
            // what the killed load had stored is unreferenced: prune takes it
            b.ok(&["image", "prune", "-f"]);
            assert_eq!(b.store_state(), empty);
            break;
        }
        // the load finished (or moved the layer into place) before it was
        // seen: start over with a bigger layer
        let _ = child.kill();
        let _ = child.wait();
        b.ok(&["image", "prune", "-a", "-f"]);
    }
    assert!(seen, "never caught a load while it unpacked");
}

/// `berth images`, `image prune` and the image verbs go through the same
/// engine functions as the daemon: docker's filters (labels AND-ed,
/// `dangling`, reference patterns, refused keys and values) and image
/// events.
#[test]
fn cli_image_filters_and_events_are_the_daemons() {
    if !root_or_skip("image filters") {
        return;
    }
    let b = berth();
    let tar = busybox_tar(b.dir.path());
    let tar = tar.to_str().unwrap();
    let import = |changes: &[&str], name: Option<&str>| -> String {
        let mut args = vec!["import"];
        for c in changes {
            args.extend(["-c", c]);
        }
        args.push(tar);
        args.extend(name);
        let id = b.ok(&args).trim().to_owned();
        id.strip_prefix("sha256:").unwrap()[..12].to_owned()
    };
    let a = import(&["LABEL tier=web", "LABEL team=x"], Some("web-a:1"));
    let bb = import(&["LABEL tier=web"], Some("web-b:1"));
    let c = import(&["LABEL tier=db"], None);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["images", "-q"];
        all.extend(args);
        let mut v: Vec<String> = b.ok(&all).lines().map(str::to_owned).collect();
        v.sort();
        v.dedup();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids(&["--filter", "label=tier=web", "--filter", "label=team=x"]),
        [a.as_str()]
    );
    assert_eq!(
        ids(&["--filter", "label=tier=web"]),
        sorted(vec![a.clone(), bb.clone()])
    );
    assert_eq!(ids(&["--filter", "dangling=true"]), [c.as_str()]);
    assert_eq!(ids(&["--filter", "reference=web-*"]).len(), 2);
    assert_eq!(ids(&["web-b"]), [bb.as_str()]);
    let err = b.fails(&["images", "--filter", "bogus=1"]);
    assert!(err.contains("Invalid filter 'bogus'"), "{err}");
    let err = b.fails(&["images", "--filter", "dangling=maybe"]);
    assert!(err.contains("Invalid filter 'dangling=[maybe]'"), "{err}");

    // a refused prune filter removes nothing; a label narrows the prune
    let err = b.fails(&["image", "prune", "-a", "-f", "--filter", "bogus=1"]);
    assert!(err.contains("Invalid filter 'bogus'"), "{err}");
    assert_eq!(ids(&[]).len(), 3);
    b.ok(&["image", "prune", "-a", "-f", "--filter", "label=team=x"]);
    assert_eq!(ids(&[]), sorted(vec![bb.clone(), c.clone()]));

    // the CLI's tag, rmi and prune are in the event log as the daemon's are
    b.ok(&["tag", "web-b:1", "other:2"]);
    b.ok(&["rmi", "other:2"]);
    let until = berth_testutil::until_now();
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    for want in ["import", "tag", "untag", "delete", "prune"] {
        assert!(actions.contains(&want), "{want} missing: {actions:?}");
    }
}
