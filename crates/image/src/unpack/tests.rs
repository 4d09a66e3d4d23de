//! Unpacking, including hostile layers (shared/specs/security-and-reliability.md §5.2).

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

/// Builds tar entries with raw names (the tar crate refuses `..` paths,
/// which is what a hostile layer contains).
struct Tar {
    out: Vec<u8>,
}

impl Tar {
    fn new() -> Tar {
        Tar { out: Vec::new() }
    }

    fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        data: &[u8],
        link: &str,
        mode: u32,
    ) -> &mut Tar {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.raw(name, tar::EntryType::Regular, data, "", 0o644)
    }
    fn dir(&mut self, name: &str) -> &mut Tar {
        self.raw(name, tar::EntryType::Directory, b"", "", 0o755)
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name, tar::EntryType::Symlink, b"", target, 0o777)
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name, tar::EntryType::Link, b"", target, 0o644)
    }
    fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.out);
        v.extend(std::iter::repeat_n(0u8, 1024));
        v
    }
}

fn opts() -> UnpackOptions {
    UnpackOptions {
        unprivileged: false,
        ..UnpackOptions::default()
    }
}

/// Unpacks with the default limits.
fn unpack_with(dir: &Path, bytes: Vec<u8>, opts: &UnpackOptions) -> Result<Unpacked> {
    let budget = opts.budget("sha256:test", bytes.len() as u64, None);
    unpack(io::Cursor::new(bytes), dir, None, opts, &budget)
}

fn unpack_into(dir: &Path, bytes: Vec<u8>) -> Result<Unpacked> {
    unpack_with(dir, bytes, &opts())
}

/// A tar of `files` files of `each` zero bytes, through `enc` as it is
/// made (the uncompressed bytes never exist at once).
fn zeros_into<W: Write>(mut enc: W, files: usize, each: u64) -> W {
    let zeros = vec![0u8; 1 << 20];
    for i in 0..files {
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("zero-{i}")).unwrap();
        h.set_size(each);
        h.set_mode(0o644);
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        let mut left = each;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            enc.write_all(&zeros[..n]).unwrap();
            left -= n as u64;
        }
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    enc
}

fn gzip_zeros(files: usize, each: u64) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    zeros_into(enc, files, each).finish().unwrap()
}

fn zstd_zeros(files: usize, each: u64) -> Vec<u8> {
    let enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    zeros_into(enc, files, each).finish().unwrap()
}

/// Bytes of regular files under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping: unpacking whiteouts and owners needs root");
        false
    }
}

/// A layer directory inside a sandbox: `host` stands for everything
/// outside it, with a canary that must never change.
struct Sandbox {
    _t: tempfile::TempDir,
    host: PathBuf,
    layer: PathBuf,
}

fn sandbox() -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    let host = t.path().to_path_buf();
    let layer = host.join("a/b/c/layer");
    std::fs::create_dir_all(&layer).unwrap();
    std::fs::create_dir_all(host.join("etc")).unwrap();
    std::fs::write(host.join("etc/shadow"), "host secret").unwrap();
    std::fs::set_permissions(
        host.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir_all(host.join("tmp")).unwrap();
    Sandbox { _t: t, host, layer }
}

impl Sandbox {
    fn canary_intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.host.join("etc/shadow")).unwrap(),
            "host secret"
        );
        assert_eq!(
            std::fs::metadata(self.host.join("etc/shadow"))
                .unwrap()
                .mode()
                & 0o7777,
            0o600
        );
        assert!(!self.host.join("escape").exists() && !self.host.join("tmp/escape").exists());
        assert!(!self.host.join("a/b/escape").exists() && !self.host.join("a/escape").exists());
    }
}

#[test]
fn regular_layer_with_whiteouts_links_and_metadata() {
    if !root() {
        return;
    }
    let s = sandbox();
    let mut t = Tar::new();
    t.dir("etc/").file("etc/hostname", b"box\n").raw(
        "bin/su",
        tar::EntryType::Regular,
        b"#!",
        "",
        0o4755,
    );
    t.symlink("etc/link", "/etc/hostname")
        .hardlink("etc/hard", "etc/hostname");
    t.file("gone/.wh.old", b"").file("opaque/.wh..wh..opq", b"");
    t.raw("dev/null2", tar::EntryType::Char, b"", "", 0o666);
    let u = unpack_into(&s.layer, t.finish()).unwrap();
    let l = &s.layer;
    assert_eq!(
        std::fs::read_to_string(l.join("etc/hostname")).unwrap(),
        "box\n"
    );
    assert_eq!(
        std::fs::metadata(l.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755,
        "setuid kept"
    );
    assert_eq!(
        std::fs::read_link(l.join("etc/link")).unwrap(),
        Path::new("/etc/hostname")
    );
    assert_eq!(
        std::fs::metadata(l.join("etc/hard")).unwrap().ino(),
        std::fs::metadata(l.join("etc/hostname")).unwrap().ino()
    );
    let wh = std::fs::metadata(l.join("gone/old")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 device"
    );
    let x =
        rustix::fs::getxattr(l.join("opaque"), "trusted.overlay.opaque", &mut [0u8; 4]).unwrap();
    assert_eq!(x, 1);
    assert!(
        std::fs::metadata(l.join("dev/null2"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        std::fs::metadata(l.join("etc/hostname")).unwrap().mtime(),
        1_700_000_000
    );
    assert_eq!(
        std::fs::metadata(l.join("etc")).unwrap().mtime(),
        1_700_000_000,
        "directory times set last"
    );
    assert!(u.lower_links.is_empty());
    assert_eq!(u.size, 6);
}

#[test]
fn path_traversal_is_refused() {
    for evil in ["../../../../tmp/escape", "a/../../escape", "../escape"] {
        let s = sandbox();
        let err = unpack_into(&s.layer, Tar::new().file(evil, b"x").finish()).unwrap_err();
        assert!(err.to_string().contains("climbs out"), "{evil}: {err}");
        s.canary_intact();
    }
    // absolute paths are inside the layer
    let s = sandbox();
    unpack_into(&s.layer, Tar::new().file("/escape", b"x").finish()).unwrap();
    assert!(s.layer.join("escape").exists());
    s.canary_intact();
}

#[test]
fn symlink_then_write_stays_inside() {
    for target in ["/", "../../..", "../../../../../..", "/tmp/../.."] {
        let s = sandbox();
        let mut t = Tar::new();
        t.symlink("link", target)
            .file("link/tmp/escape", b"x")
            .file("link/escape", b"y");
        if let Err(e) = unpack_into(&s.layer, t.finish()) {
            panic!("{target}: {e}");
        }
        assert!(
            s.layer.join("tmp/escape").exists(),
            "{target}: lands in the layer root"
        );
        s.canary_intact();
    }
}

#[test]
fn hardlinks_out_of_the_layer_are_refused_and_lower_ones_deferred() {
    let s = sandbox();
    let err = unpack_into(
        &s.layer,
        Tar::new().hardlink("hl", "../../../etc/shadow").finish(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("points out of the layer"), "{err}");
    s.canary_intact();
    // "/etc/shadow" means the layer's own /etc/shadow, which this layer
    // does not have: it is left for a lower layer
    let s = sandbox();
    let u = unpack_into(&s.layer, Tar::new().hardlink("hl", "/etc/shadow").finish()).unwrap();
    assert_eq!(
        u.lower_links,
        vec![(PathBuf::from("hl"), PathBuf::from("etc/shadow"))]
    );
    assert!(!s.layer.join("hl").exists());
    s.canary_intact();
    // a lower layer provides it
    let lower = s.host.join("lower");
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    std::fs::write(lower.join("etc/shadow"), "lower file").unwrap();
    resolve_lower_links(&s.layer, &u.lower_links, &[lower]).unwrap();
    assert_eq!(
        std::fs::read_to_string(s.layer.join("hl")).unwrap(),
        "lower file"
    );
    // through a symlink: still inside
    let s = sandbox();
    let mut t = Tar::new();
    t.symlink("up", "../../../../")
        .hardlink("hl", "up/etc/shadow");
    let u = unpack_into(&s.layer, t.finish()).unwrap();
    assert!(!s.layer.join("hl").exists() || std::fs::read_to_string(s.layer.join("hl")).is_err());
    assert_eq!(u.lower_links.len(), 1);
    s.canary_intact();
}

#[test]
fn whiteout_tricks() {
    if !root() {
        return;
    }
    let s = sandbox();
    // lower: a -> /etc ; upper: a/.wh.passwd must not touch /etc/passwd
    std::fs::write(s.host.join("etc/passwd"), "host passwd").unwrap();
    let mut t = Tar::new();
    t.symlink("a", "/etc")
        .file("a/.wh.passwd", b"")
        .file("a/.wh.shadow", b"");
    unpack_into(&s.layer, t.finish()).unwrap();
    assert_eq!(
        std::fs::read_to_string(s.host.join("etc/passwd")).unwrap(),
        "host passwd"
    );
    s.canary_intact();
    // ".wh." with ".." is refused
    let s = sandbox();
    let err = unpack_into(&s.layer, Tar::new().file("x/.wh...", b"").finish()).unwrap_err();
    assert!(
        err.to_string().contains("malformed") || err.to_string().contains("climbs"),
        "{err}"
    );
    s.canary_intact();
    // a whiteout for something that does not exist is a plain whiteout
    let s = sandbox();
    unpack_into(&s.layer, Tar::new().file(".wh.nothing", b"").finish()).unwrap();
    assert!(
        std::fs::metadata(s.layer.join("nothing"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn chmod_through_a_symlink_does_not_reach_the_host() {
    // containerd CVE-2021-32760: a layer sets the mode of link/etc/shadow
    // where link -> /.
    let s = sandbox();
    let mut t = Tar::new();
    t.symlink("link", "/")
        .raw("link/etc/shadow", tar::EntryType::Regular, b"", "", 0o777);
    t.raw("link/etc", tar::EntryType::Directory, b"", "", 0o777);
    unpack_into(&s.layer, t.finish()).unwrap();
    s.canary_intact();
}

#[test]
fn decompression_bombs_stop_early() {
    // 1 GiB of zeros after a tiny archive, gzip-compressed to a few MB
    let s = sandbox();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&Tar::new().file("x", b"1").finish()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 8 << 20);
    let err = unpack_into(&s.layer, bomb).unwrap_err();
    assert!(err.to_string().contains("follow the end"), "{err}");
    // one entry claiming more than the limit: refused before writing
    let s = sandbox();
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(20 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend(vec![0u8; 4096]);
    let err = unpack_into(&s.layer, bytes).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert!(
        err.to_string()
            .contains("an entry declares 21474836480 bytes"),
        "{err}"
    );
    assert!(
        !s.layer.join("big").exists() || std::fs::metadata(s.layer.join("big")).unwrap().len() == 0
    );
    // zstd bomb
    let s = sandbox();
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&Tar::new().file("x", b"1").finish()).unwrap();
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let err = unpack_into(&s.layer, bomb).unwrap_err();
    assert!(err.to_string().contains("follow the end"), "{err}");
}

#[test]
fn layers_expand_at_most_a_multiple_of_their_compressed_size() {
    // 96 MiB of zeros in 4 MiB files: about 100 kB of gzip, far less of
    // zstd. By default a layer may grow to 100 times its size, but always
    // to 64 MiB: both stop at 64 MiB, well before the end.
    for (name, blob) in [
        ("gzip", gzip_zeros(24, 4 << 20)),
        ("zstd", zstd_zeros(24, 4 << 20)),
    ] {
        let s = sandbox();
        let size = blob.len();
        assert!(size < 1 << 20, "{name}: {size}");
        let err = unpack_into(&s.layer, blob).unwrap_err();
        let m = err.to_string();
        assert!(matches!(err, Error::Limit(_)), "{m}");
        assert!(
            m.starts_with(&format!(
                "layer sha256:test ({size} bytes, {name}) expands to more than 67108864 bytes: max-layer-expansion"
            )),
            "{m}"
        );
        let written = bytes_under(&s.layer);
        assert!(written <= 64 << 20, "{name}: {written} bytes written");
        s.canary_intact();
    }
    // the ratio counts once the floor is passed: 1 MiB of gzip may give 100 MiB
    let opts = UnpackOptions {
        min_bytes: 1 << 20,
        ..opts()
    };
    let s = sandbox();
    let blob = gzip_zeros(8, 4 << 20);
    let max = blob.len() as u64 * 100;
    let err = unpack_with(&s.layer, blob, &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("expands to more than {max} bytes")),
        "{err}"
    );
    // a larger ratio lets the same layer through
    let opts = UnpackOptions {
        max_expansion: 100_000,
        ..opts
    };
    let s = sandbox();
    let u = unpack_with(&s.layer, gzip_zeros(8, 4 << 20), &opts).unwrap();
    assert_eq!(u.size, 32 << 20);
    // the absolute cap wins over the ratio
    let opts = UnpackOptions {
        max_bytes: 8 << 20,
        ..opts
    };
    let s = sandbox();
    let err = unpack_with(&s.layer, zstd_zeros(8, 4 << 20), &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("zstd) expands to more than 8388608 bytes, the max-layer-size"),
        "{err}"
    );
}

#[test]
fn layers_stop_at_the_free_space_they_share() {
    let opts = UnpackOptions {
        max_expansion: 100_000,
        ..opts()
    };
    let space = Arc::new(SpaceBudget::new(20 << 20, PathBuf::from("/snapshots")));
    // two layers of 12 MiB each: the first fits, the second does not
    let s = sandbox();
    let blob = gzip_zeros(3, 4 << 20);
    let budget = opts.budget("sha256:one", blob.len() as u64, Some(space.clone()));
    unpack(io::Cursor::new(blob), &s.layer, None, &opts, &budget).unwrap();
    let s = sandbox();
    let blob = gzip_zeros(3, 4 << 20);
    let size = blob.len();
    let budget = opts.budget("sha256:two", size as u64, Some(space));
    let err = unpack(io::Cursor::new(blob), &s.layer, None, &opts, &budget).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "layer sha256:two ({size} bytes, gzip) expands to more than the 20971520 bytes free on the filesystem of /snapshots (with the layers unpacked alongside it)"
        )
    );
}

#[test]
fn diff_ids_are_verified_and_formats_detected() {
    let s = sandbox();
    let plain = Tar::new().file("f", b"data").finish();
    let want = crate::store::sha256(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let opts = opts();
    let budget = opts.budget("l", 1 << 20, None);
    let u = unpack(io::Cursor::new(gz), &s.layer, Some(&want), &opts, &budget).unwrap();
    assert_eq!(u.diff_id, want);
    let s = sandbox();
    let zs = zstd::encode_all(&plain[..], 3).unwrap();
    let u = unpack(io::Cursor::new(zs), &s.layer, None, &opts, &budget).unwrap();
    assert_eq!(u.diff_id, want);
    let s = sandbox();
    let wrong = crate::store::sha256(b"other");
    let err = unpack(
        io::Cursor::new(plain),
        &s.layer,
        Some(&wrong),
        &opts,
        &budget,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)));
    // garbage is an error, not a panic
    let s = sandbox();
    assert!(unpack_into(&s.layer, vec![0x1f, 0x8b, 1, 2, 3]).is_err());
    let mut junk = vec![b'x'; 2000];
    junk[0] = b'a';
    assert!(unpack_into(&s.layer, junk).is_err());
}

#[test]
fn normalize_paths() {
    assert_eq!(normalize(b"./a/b").unwrap(), Path::new("a/b"));
    assert_eq!(normalize(b"/a/./b/../c").unwrap(), Path::new("a/c"));
    assert_eq!(normalize(b"./").unwrap(), Path::new(""));
    assert!(normalize(b"a/../../b").is_none());
    assert!(normalize(b"..").is_none());
}
