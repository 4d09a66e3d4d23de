//! Safe, streaming layer unpacking into a directory in overlayfs "diff"
//! form (whiteouts become 0:0 character devices, opaque directories get
//! `trusted.overlay.opaque=y`).
//!
//! Nothing a layer says can make berth write outside the target: entry
//! paths are normalised lexically and refused if `..` climbs above the
//! root; every parent directory is resolved with `openat2(RESOLVE_IN_ROOT)`
//! (a symlink in the layer can only lead back inside it) and files are
//! created relative to that directory fd with `O_NOFOLLOW | O_EXCL`;
//! hardlink targets are resolved the same way and must be regular files.
//! Hardlinks to files of a lower layer are returned to the caller, which
//! copies them up ([`resolve_lower_links`]).
//!
//! The compressed stream is decoded and hashed (the diff id) on a second
//! thread while this one writes files. A size quota stops decompression
//! bombs, and at most [`UnpackOptions::max_trailing`] bytes may follow the
//! end of the tar archive.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use berth_types::{Algorithm, Digest};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

use crate::error::{Error, Result};
use crate::store::Hasher;

/// How far a layer may expand by default: 100 times its compressed size
/// (gzip reaches about 1000, zstd far more, real layers 2 to 10) ...
pub const DEFAULT_MAX_EXPANSION: u64 = 100;
/// ... but always to 64 MiB, however small its blob ...
pub const DEFAULT_MIN_BYTES: u64 = 64 << 20;
/// ... and never past 32 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 30;

/// Limits for every layer (from berth's config file, [`crate::config`]).
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// Uncompressed bytes a layer may have per byte of its blob
    /// (`max-layer-expansion`).
    pub max_expansion: u64,
    /// What any layer may expand to, however small its blob.
    pub min_bytes: u64,
    /// Most uncompressed bytes a layer may have (`max-layer-size`).
    pub max_bytes: u64,
    /// Most bytes allowed after the tar archive's end.
    pub max_trailing: u64,
    /// Running without the right to create device nodes or change owners
    /// (user namespaces): such entries are skipped, owners kept.
    pub unprivileged: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            max_expansion: DEFAULT_MAX_EXPANSION,
            min_bytes: DEFAULT_MIN_BYTES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_trailing: 1 << 20,
            unprivileged: !rustix::process::geteuid().is_root(),
        }
    }
}

impl UnpackOptions {
    /// The budget of one layer whose blob (`layer`, for messages) has
    /// `compressed` bytes; `space` is the free space shared with the layers
    /// unpacked at the same time (None: unchecked).
    pub fn budget(
        &self,
        layer: impl Into<String>,
        compressed: u64,
        space: Option<Arc<SpaceBudget>>,
    ) -> LayerBudget {
        let by_ratio = compressed
            .saturating_mul(self.max_expansion)
            .max(self.min_bytes);
        let (max, by_size) = if by_ratio <= self.max_bytes {
            (by_ratio, false)
        } else {
            (self.max_bytes, true)
        };
        LayerBudget {
            layer: layer.into(),
            compressed,
            max,
            by_size,
            expansion: self.max_expansion,
            min_bytes: self.min_bytes,
            space,
        }
    }
}

/// The free space of the filesystem layers are unpacked into, used up by
/// the layers unpacked at the same time.
#[derive(Debug)]
pub struct SpaceBudget {
    left: AtomicU64,
    free: u64,
    fs: PathBuf,
}

impl SpaceBudget {
    /// What `dir`'s filesystem has free for unprivileged users (the blocks
    /// reserved for root stay free for berth's database and logs).
    pub fn of(dir: &Path) -> Result<SpaceBudget> {
        let st = rustix::fs::statvfs(dir).map_err(|e| io_err(e, "statvfs", dir))?;
        Ok(SpaceBudget::new(
            st.f_bavail.saturating_mul(st.f_frsize),
            dir.to_path_buf(),
        ))
    }

    /// A budget of `free` bytes on the filesystem of `fs`.
    pub fn new(free: u64, fs: PathBuf) -> SpaceBudget {
        SpaceBudget {
            left: AtomicU64::new(free),
            free,
            fs,
        }
    }

    fn take(&self, n: u64) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(n))
            .is_ok()
    }
}

/// How far one layer may expand, and why.
#[derive(Clone, Debug)]
pub struct LayerBudget {
    layer: String,
    compressed: u64,
    max: u64,
    by_size: bool,
    expansion: u64,
    min_bytes: u64,
    space: Option<Arc<SpaceBudget>>,
}

impl LayerBudget {
    /// Most uncompressed bytes.
    pub fn max(&self) -> u64 {
        self.max
    }

    fn what(&self, comp: Option<Compression>) -> String {
        match comp {
            Some(c) => format!(
                "layer {} ({} bytes, {})",
                self.layer,
                self.compressed,
                c.name()
            ),
            None => format!("layer {} ({} bytes as stored)", self.layer, self.compressed),
        }
    }

    /// Why `total` uncompressed bytes are too many.
    fn exceeded(&self, comp: Option<Compression>) -> String {
        if self.by_size {
            format!(
                "{} expands to more than {} bytes, the max-layer-size of berth's config file",
                self.what(comp),
                self.max
            )
        } else {
            format!(
                "{} expands to more than {} bytes: max-layer-expansion in berth's config file allows {} times the compressed size (and {} bytes to any layer); a decompression bomb?",
                self.what(comp),
                self.max,
                self.expansion,
                self.min_bytes
            )
        }
    }

    fn no_space(&self, comp: Option<Compression>, space: &SpaceBudget) -> String {
        format!(
            "{} expands to more than the {} bytes free on the filesystem of {} (with the layers unpacked alongside it)",
            self.what(comp),
            space.free,
            space.fs.display()
        )
    }

    /// Accounts for `n` more uncompressed bytes, `total` in all.
    fn spend(&self, total: u64, n: u64, comp: Option<Compression>) -> io::Result<()> {
        if total > self.max {
            return Err(limit_error(self.exceeded(comp)));
        }
        if let Some(space) = &self.space
            && !space.take(n)
        {
            return Err(limit_error(self.no_space(comp, space)));
        }
        Ok(())
    }
}

/// A limit that stopped a layer (carried inside an `io::Error`).
#[derive(Debug)]
struct LimitHit(String);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitHit {}

fn limit_error(m: String) -> io::Error {
    io::Error::other(LimitHit(m))
}

/// The image error for a failed layer stream: a limit that was hit, or
/// what is wrong with the stream (`what` names it).
pub fn stream_error(e: io::Error, what: &str) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<LimitHit>()) {
        Some(l) => Error::Limit(l.0.clone()),
        None => Error::Invalid(format!("{what}: {e}")),
    }
}

/// What unpacking produced.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// sha256 of the uncompressed stream.
    pub diff_id: Digest,
    /// Uncompressed bytes.
    pub uncompressed: u64,
    /// Bytes of file content written.
    pub size: u64,
    /// Hardlinks whose target is not in this layer: (link, target), both
    /// relative to the layer root.
    pub lower_links: Vec<(PathBuf, PathBuf)>,
}

/// The compression of a layer stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// `gzip`, `zstd` or `uncompressed`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Guesses from the first bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Reads the whole stream: decompressing, hashing and counting, within
/// `budget`. Used both by the unpacker's decoder thread and to compute diff
/// ids alone.
pub fn decode_stream(
    mut input: impl Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    budget: &LayerBudget,
    tar_end: &AtomicU64,
    max_trailing: u64,
) -> io::Result<(Digest, u64)> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = input.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let chained = io::Cursor::new(head[..got].to_vec()).chain(input);
    let comp = Compression::detect(&head[..got]);
    let mut decoder: Box<dyn Read> = match comp {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 << 10,
            chained,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained)?),
        Compression::None => Box::new(chained),
    };
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        budget.spend(total, n as u64, Some(comp))?;
        let end = tar_end.load(Ordering::Acquire);
        if end != u64::MAX && total > end.saturating_add(max_trailing) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {max_trailing} bytes follow the end of the layer's tar archive"),
            ));
        }
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
    }
    Ok((hasher.finish(), total))
}

/// A reader fed by the decoder thread.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    consumed: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.consumed += n as u64;
        Ok(n)
    }
}

/// Unpacks the layer `input` (compressed or not) into `dest`, which must
/// exist and be empty. Verifies the diff id if `expect_diff_id` is given.
pub fn unpack(
    input: impl Read + Send + 'static,
    dest: &Path,
    expect_diff_id: Option<&Digest>,
    opts: &UnpackOptions,
    budget: &LayerBudget,
) -> Result<Unpacked> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
    let tar_end = Arc::new(AtomicU64::new(u64::MAX));
    let failed = Arc::new(AtomicBool::new(false));
    let decoder = {
        let tar_end = tar_end.clone();
        let failed = failed.clone();
        let trailing = opts.max_trailing;
        let budget = budget.clone();
        std::thread::Builder::new()
            .name("layer-decode".into())
            .spawn(move || {
                let mut open = true;
                decode_stream(
                    input,
                    |b| {
                        if failed.load(Ordering::Acquire) {
                            // nothing more to verify: stop decoding
                            return Err(io::Error::other("the extraction failed"));
                        }
                        // Once the tar reader is done, keep hashing only.
                        if open && tx.send(b.to_vec()).is_err() {
                            open = false;
                        }
                        Ok(())
                    },
                    &budget,
                    &tar_end,
                    trailing,
                )
            })
            .map_err(|e| Error::Io {
                context: "start the layer decoder".into(),
                source: e,
            })?
    };
    let mut reader = ChannelReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        consumed: 0,
    };
    let extracted = extract(&mut reader, dest, opts, budget);
    // Tell the decoder where the archive ended, then let it finish hashing.
    failed.store(extracted.is_err(), Ordering::Release);
    tar_end.store(reader.consumed, Ordering::Release);
    drop(reader);
    let decoded = decoder
        .join()
        .map_err(|_| Error::Invalid("the layer decoder panicked".into()))?;
    // A limit the decoder hit explains a failed extraction best; otherwise
    // the extraction's own error does.
    let (diff_id, uncompressed) = match (decoded, extracted.is_err()) {
        (Ok(d), _) => d,
        (Err(e), failed) => {
            let e = stream_error(e, "layer stream");
            if matches!(e, Error::Limit(_)) || !failed {
                return Err(e);
            }
            extracted?;
            return Err(e);
        }
    };
    let (size, lower_links) = extracted?;
    if let Some(want) = expect_diff_id
        && *want != diff_id
    {
        return Err(Error::Integrity(format!(
            "layer diff id mismatch: expected {want}, got {diff_id}"
        )));
    }
    Ok(Unpacked {
        diff_id,
        uncompressed,
        size,
        lower_links,
    })
}

/// Normalises a tar path to components below the root; `None` if it
/// climbs out (or is empty).
pub fn normalize(raw: &[u8]) -> Option<PathBuf> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if out.is_empty() {
        return Some(PathBuf::new());
    }
    Some(out.iter().collect())
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

struct Extractor<'a> {
    root: OwnedFd,
    dirs: HashMap<PathBuf, OwnedFd>,
    opts: &'a UnpackOptions,
    euid: u32,
    egid: u32,
    umask: u32,
    deferred_dirs: Vec<(PathBuf, Meta)>,
    lower_links: Vec<(PathBuf, PathBuf)>,
    size: u64,
}

#[derive(Clone, Debug, Default)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn io_err(e: impl Into<io::Error>, what: &str, p: &Path) -> Error {
    Error::Io {
        context: format!("{what} {}", p.display()),
        source: e.into(),
    }
}

fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_owned()))
        })
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

fn extract(
    input: &mut impl Read,
    dest: &Path,
    opts: &UnpackOptions,
    limit: &LayerBudget,
) -> Result<(u64, Vec<(PathBuf, PathBuf)>)> {
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(e, "open", dest))?;
    let mut x = Extractor {
        root,
        dirs: HashMap::new(),
        opts,
        euid: rustix::process::geteuid().as_raw(),
        egid: rustix::process::getegid().as_raw(),
        umask: current_umask(),
        deferred_dirs: Vec::new(),
        lower_links: Vec::new(),
        size: 0,
    };
    let mut archive = tar::Archive::new(input);
    let mut budget = limit.max;
    for entry in archive
        .entries()
        .map_err(|e| Error::Invalid(format!("layer: {e}")))?
    {
        let mut entry = entry.map_err(|e| Error::Invalid(format!("layer: malformed tar: {e}")))?;
        let size = entry.size();
        if size > budget {
            return Err(Error::Limit(format!(
                "{} (an entry declares {size} bytes)",
                limit.exceeded(None)
            )));
        }
        budget -= size;
        x.entry(&mut entry)?;
    }
    // Directory metadata last (creating children changes mtimes), deepest
    // first.
    let mut dirs = std::mem::take(&mut x.deferred_dirs);
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, meta) in dirs {
        let fd = x.open_dir(&p)?;
        x.apply_meta(fd.as_fd(), None, &meta, true, &p)?;
    }
    Ok((x.size, x.lower_links))
}

impl Extractor<'_> {
    /// An fd for directory `rel`, creating missing directories. Symlinks on
    /// the way are followed inside the layer root only; a dangling one gets
    /// its target created (inside the root), as Docker resolves such paths.
    fn open_dir(&mut self, rel: &Path) -> Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return self.root.try_clone().map_err(|e| io_err(e, "dup", rel));
        }
        if let Some(fd) = self.dirs.get(rel) {
            return fd.try_clone().map_err(|e| io_err(e, "dup", rel));
        }
        let fd =
            match berth_sys::paths::create_all(self.root.as_fd(), rel, berth_sys::paths::Kind::Dir)
            {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    // Something not a directory is in the way: replace it.
                    let parent_rel = rel.parent().unwrap_or(Path::new(""));
                    let parent = self.open_dir(parent_rel)?;
                    let name = rel.file_name().expect("non-empty");
                    remove_at(&parent, name).map_err(|e| io_err(e, "replace", rel))?;
                    self.forget_under(rel);
                    rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))
                        .map_err(|e| io_err(e, "create directory", rel))?;
                    rustix::fs::openat2(
                        &self.root,
                        rel,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(|e| io_err(e, "open directory", rel))?
                }
                Err(e) => return Err(io_err(e, "open directory", rel)),
            };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e, "stat", rel))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return Err(Error::Invalid(format!(
                "{} is not a directory in the layer",
                rel.display()
            )));
        }
        let copy = fd.try_clone().map_err(|e| io_err(e, "dup", rel))?;
        self.dirs.insert(rel.to_path_buf(), copy);
        Ok(fd)
    }

    fn forget_under(&mut self, rel: &Path) {
        if self.dirs.keys().any(|k| k.starts_with(rel)) {
            self.dirs.retain(|k, _| !k.starts_with(rel));
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let rel = normalize(&raw_path).ok_or_else(|| {
            Error::Invalid(format!(
                "layer entry {:?} climbs out of the layer root; refusing the layer",
                String::from_utf8_lossy(&raw_path)
            ))
        })?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let meta = self.meta_of(entry)?;
        if rel.as_os_str().is_empty() {
            if kind == tar::EntryType::Directory {
                self.deferred_dirs.push((rel, meta));
            }
            return Ok(());
        }
        let name = rel.file_name().expect("non-empty").to_owned();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let name_bytes = name.as_bytes();

        // Whiteouts.
        if let Some(target) = name_bytes.strip_prefix(b".wh.") {
            let parent = self.open_dir(&parent_rel)?;
            if target == b".wh..opq" {
                set_xattr_at(&parent, b"trusted.overlay.opaque", b"y")
                    .map_err(|e| io_err(e, "mark opaque", &parent_rel))?;
                return Ok(());
            }
            if target.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk and friends): not content.
                return Ok(());
            }
            let target = OsStr::from_bytes(target);
            if target.is_empty()
                || target == ".."
                || target == "."
                || target.as_bytes().contains(&b'/')
            {
                return Err(Error::Invalid(format!(
                    "layer whiteout {:?} is malformed",
                    String::from_utf8_lossy(&raw_path)
                )));
            }
            remove_at(&parent, target)
                .map_err(|e| io_err(e, "remove", &parent_rel.join(target)))?;
            self.forget_under(&parent_rel.join(target));
            if self.opts.unprivileged {
                return Err(Error::Unsupported(
                    "whiteouts in layers unpacked without root".into(),
                ));
            }
            rustix::fs::mknodat(
                &parent,
                target,
                rustix::fs::FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .map_err(|e| io_err(e, "create whiteout", &parent_rel.join(target)))?;
            return Ok(());
        }

        let parent = self.open_dir(&parent_rel)?;
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        let st = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| io_err(e, "stat", &rel))?;
                        if rustix::fs::FileType::from_raw_mode(st.st_mode)
                            != rustix::fs::FileType::Directory
                        {
                            remove_at(&parent, &name).map_err(|e| io_err(e, "replace", &rel))?;
                            rustix::fs::mkdirat(&parent, &name, Mode::from_raw_mode(0o700))
                                .map_err(|e| io_err(e, "create directory", &rel))?;
                        }
                    }
                    Err(e) => return Err(io_err(e, "create directory", &rel)),
                }
                self.deferred_dirs.push((rel, meta));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.replace(&parent, &name, &rel)?;
                let fd = rustix::fs::openat(
                    &parent,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(meta.mode & 0o777),
                )
                .map_err(|e| io_err(e, "create", &rel))?;
                let mut f = File::from(fd);
                let n = copy_data(entry, &mut f).map_err(|e| io_err(e, "write", &rel))?;
                self.size += n;
                self.apply_meta(f.as_fd(), None, &meta, false, &rel)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::Invalid(format!("symlink {} has no target", rel.display()))
                    })?
                    .into_owned();
                self.replace(&parent, &name, &rel)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, &name)
                    .map_err(|e| io_err(e, "create symlink", &rel))?;
                self.apply_meta(parent.as_fd(), Some(&name), &meta, false, &rel)?;
            }
            tar::EntryType::Link => {
                let raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        Error::Invalid(format!("hardlink {} has no target", rel.display()))
                    })?
                    .into_owned();
                let target = normalize(&raw)
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "hardlink {} points out of the layer ({:?}); refusing the layer",
                            rel.display(),
                            String::from_utf8_lossy(&raw)
                        ))
                    })?;
                self.replace(&parent, &name, &rel)?;
                let tparent_rel = target.parent().unwrap_or(Path::new(""));
                let tname = target.file_name().expect("non-empty");
                let tparent = match rustix::fs::openat2(
                    &self.root,
                    tparent_rel,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    RESOLVE,
                ) {
                    Ok(fd) => Some(fd),
                    Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => None,
                    Err(e) => return Err(io_err(e, "resolve hardlink target", &target)),
                };
                let st = tparent
                    .as_ref()
                    .and_then(|p| rustix::fs::statat(p, tname, AtFlags::SYMLINK_NOFOLLOW).ok());
                match (tparent, st) {
                    (Some(tp), Some(st)) => {
                        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
                        if ft == rustix::fs::FileType::Directory {
                            return Err(Error::Invalid(format!(
                                "hardlink {} points at a directory",
                                rel.display()
                            )));
                        }
                        rustix::fs::linkat(&tp, tname, &parent, &name, AtFlags::empty())
                            .map_err(|e| io_err(e, "create hardlink", &rel))?;
                    }
                    _ => self.lower_links.push((rel, target)),
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                if self.opts.unprivileged && kind != tar::EntryType::Fifo {
                    tracing::debug!(
                        "skipping device node {} (unprivileged unpack)",
                        rel.display()
                    );
                    return Ok(());
                }
                self.replace(&parent, &name, &rel)?;
                let (ft, dev) = match kind {
                    tar::EntryType::Char => {
                        (rustix::fs::FileType::CharacterDevice, self.dev_of(entry)?)
                    }
                    tar::EntryType::Block => {
                        (rustix::fs::FileType::BlockDevice, self.dev_of(entry)?)
                    }
                    _ => (rustix::fs::FileType::Fifo, 0),
                };
                rustix::fs::mknodat(
                    &parent,
                    &name,
                    ft,
                    Mode::from_raw_mode(meta.mode & 0o777),
                    dev,
                )
                .map_err(|e| io_err(e, "create device node", &rel))?;
                self.apply_meta(parent.as_fd(), Some(&name), &meta, false, &rel)?;
            }
            other => {
                tracing::debug!("skipping tar entry {} of type {other:?}", rel.display());
            }
        }
        Ok(())
    }

    fn dev_of<R: Read>(&self, entry: &tar::Entry<'_, R>) -> Result<u64> {
        let h = entry.header();
        let major = h.device_major().ok().flatten().unwrap_or(0);
        let minor = h.device_minor().ok().flatten().unwrap_or(0);
        Ok(rustix::fs::makedev(major, minor))
    }

    /// Removes whatever is at `name` so a new entry can take its place.
    fn replace(&mut self, parent: &OwnedFd, name: &OsStr, rel: &Path) -> Result<()> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => {
                remove_at(parent, name).map_err(|e| io_err(e, "replace", rel))?;
                self.forget_under(rel);
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io_err(e, "stat", rel)),
        }
        Ok(())
    }

    fn meta_of<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = entry.header();
        let mut m = Meta {
            mode: h.mode().unwrap_or(0o644),
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: (h.mtime().unwrap_or(0) as i64, 0),
            xattrs: Vec::new(),
        };
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let key = ext.key_bytes();
                let val = ext.value_bytes();
                match key {
                    b"uid" => {
                        m.uid = std::str::from_utf8(val)
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(m.uid)
                    }
                    b"gid" => {
                        m.gid = std::str::from_utf8(val)
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(m.gid)
                    }
                    b"mtime" => {
                        if let Some(t) = std::str::from_utf8(val).ok().and_then(parse_pax_time) {
                            m.mtime = t;
                        }
                    }
                    _ => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            m.xattrs.push((name.to_vec(), val.to_vec()));
                        }
                    }
                }
            }
        }
        Ok(m)
    }

    /// Owner, mode, xattrs and times, on an fd (`name` None) or on a
    /// name in a directory fd (symlinks and devices).
    fn apply_meta(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        name: Option<&OsStr>,
        m: &Meta,
        is_dir: bool,
        rel: &Path,
    ) -> Result<()> {
        let chown = !self.opts.unprivileged && (m.uid != self.euid || m.gid != self.egid);
        let is_link = name.is_some();
        if chown {
            let (u, g) = (
                Some(rustix::fs::Uid::from_raw(m.uid)),
                Some(rustix::fs::Gid::from_raw(m.gid)),
            );
            match name {
                Some(n) => rustix::fs::chownat(fd, n, u, g, AtFlags::SYMLINK_NOFOLLOW),
                // directory fds are O_PATH: fchownat(fd, "", AT_EMPTY_PATH)
                None if is_dir => rustix::fs::chownat(fd, "", u, g, AtFlags::EMPTY_PATH),
                None => rustix::fs::fchown(fd, u, g),
            }
            .map_err(|e| io_err(e, "chown", rel))?;
        }
        let perm = m.mode & 0o7777;
        if name.is_none() && (is_dir || chown || perm & !0o777 != 0 || perm & self.umask != 0) {
            // For an O_PATH directory fd, chmod through /proc.
            if is_dir {
                rustix::fs::chmodat(
                    rustix::fs::CWD,
                    fd_path(fd),
                    Mode::from_raw_mode(perm),
                    AtFlags::empty(),
                )
            } else {
                rustix::fs::fchmod(fd, Mode::from_raw_mode(perm))
            }
            .map_err(|e| io_err(e, "chmod", rel))?;
        }
        for (k, v) in &m.xattrs {
            let r = match name {
                Some(n) if is_link => {
                    // Only user/trusted xattrs on links; skip.
                    let _ = n;
                    Ok(())
                }
                _ => set_xattr_fd(fd, k, v, is_dir),
            };
            if let Err(e) = r
                && !matches!(e, rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::PERM)
            {
                return Err(io_err(e, "set xattr", rel));
            }
        }
        let ts = Timestamps {
            last_access: Timespec {
                tv_sec: m.mtime.0,
                tv_nsec: m.mtime.1,
            },
            last_modification: Timespec {
                tv_sec: m.mtime.0,
                tv_nsec: m.mtime.1,
            },
        };
        match name {
            Some(n) => rustix::fs::utimensat(fd, n, &ts, AtFlags::SYMLINK_NOFOLLOW),
            None if is_dir => {
                rustix::fs::utimensat(rustix::fs::CWD, fd_path(fd), &ts, AtFlags::empty())
            }
            None => rustix::fs::futimens(fd, &ts),
        }
        .map_err(|e| io_err(e, "set times", rel))?;
        Ok(())
    }
}

fn fd_path(fd: std::os::fd::BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    Some((secs, nanos))
}

fn copy_data(src: &mut impl Read, dst: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn set_xattr_at(dir: &OwnedFd, name: &[u8], value: &[u8]) -> rustix::io::Result<()> {
    set_xattr_fd(dir.as_fd(), name, value, true)
}

fn set_xattr_fd(
    fd: std::os::fd::BorrowedFd<'_>,
    name: &[u8],
    value: &[u8],
    is_path_fd: bool,
) -> rustix::io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(|_| rustix::io::Errno::INVAL)?;
    if is_path_fd {
        // O_PATH fds do not take fsetxattr: go through the magic link.
        rustix::fs::setxattr(
            fd_path(fd),
            name.as_c_str(),
            value,
            rustix::fs::XattrFlags::empty(),
        )
    } else {
        rustix::fs::fsetxattr(fd, name.as_c_str(), value, rustix::fs::XattrFlags::empty())
    }
}

/// Removes a file, symlink or directory tree at `name` in `dir` (without
/// following symlinks).
fn remove_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            remove_children(&sub)?;
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_children(dir: &OwnedFd) -> io::Result<()> {
    let mut names = Vec::new();
    let it = rustix::fs::Dir::read_from(dir)?;
    for e in it {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(std::ffi::OsString::from(OsStr::from_bytes(n)));
        }
    }
    for n in names {
        remove_at(dir, &n)?;
    }
    Ok(())
}

/// Removes a directory tree (used for abandoned snapshot directories).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(_) => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            let dir = rustix::fs::open(
                parent,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            remove_at(&dir, path.file_name().unwrap_or_default())
        }
    }
}

/// Materialises hardlinks that pointed into lower layers: for each
/// (link, target), the first of `lowers` (top first) that has the target
/// (and has not whited it out) provides a copy.
pub fn resolve_lower_links(
    dest: &Path,
    links: &[(PathBuf, PathBuf)],
    lowers: &[PathBuf],
) -> Result<()> {
    for (link, target) in links {
        let mut found = None;
        for lower in lowers {
            let root = rustix::fs::open(
                lower,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(e, "open", lower))?;
            match rustix::fs::openat2(
                &root,
                target,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
                RESOLVE,
            ) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e, "stat", target))?;
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::CharacterDevice
                        && st.st_rdev == 0
                    {
                        break; // a whiteout: the file is gone
                    }
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        != rustix::fs::FileType::RegularFile
                    {
                        return Err(Error::Invalid(format!(
                            "hardlink {} points at a non-regular file",
                            link.display()
                        )));
                    }
                    found = Some((fd, st));
                    break;
                }
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(io_err(e, "open hardlink target", target)),
            }
        }
        let Some((src, st)) = found else {
            return Err(Error::Invalid(format!(
                "hardlink {} points at {}, which no layer has",
                link.display(),
                target.display()
            )));
        };
        let root = rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(e, "open", dest))?;
        let parent_rel = link.parent().unwrap_or(Path::new(""));
        let parent = rustix::fs::openat2(
            &root,
            if parent_rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent_rel
            },
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| io_err(e, "open", parent_rel))?;
        let name = link.file_name().expect("non-empty");
        let out = rustix::fs::openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(st.st_mode & 0o7777),
        )
        .map_err(|e| io_err(e, "create", link))?;
        let mut out = File::from(out);
        let mut src = File::from(src);
        io::copy(&mut src, &mut out).map_err(|e| io_err(e, "copy up", link))?;
        let _ = rustix::fs::fchown(
            &out,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        let _ = rustix::fs::fchmod(&out, Mode::from_raw_mode(st.st_mode & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
#[path = "unpack/tests.rs"]
mod tests;
