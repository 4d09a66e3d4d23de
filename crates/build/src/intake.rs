//! Receiving a build context that arrives as a stream (`POST /build`'s
//! body, `berth build -`): a tar, maybe gzip-, bzip2-, xz- or
//! zstd-compressed, written as it is read to one spool file under
//! `<root>/build/tmp` (never held in memory), then unpacked into a fresh
//! directory (nothing in it can leave the directory), removed when the
//! [`Received`] is dropped. A context of up to [`TMPFS_MAX`] bytes is
//! unpacked on a private tmpfs mounted there: creating thousands of small
//! files costs ~30x less on tmpfs than on a disk filesystem, and the whole
//! context goes with one unmount. A larger one stays on disk. A Dockerfile
//! sent alone (`-f -` with no context) is a context of that one file.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::builder::BuildError;

/// Contexts up to this many (uncompressed) bytes are unpacked on tmpfs.
pub const TMPFS_MAX: u64 = 256 << 20;

/// A received context directory, removed on drop.
#[derive(Debug)]
pub struct Received {
    dir: PathBuf,
    /// A tmpfs is mounted on `dir`.
    mounted: bool,
}

impl Received {
    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether it is unpacked on a tmpfs of its own.
    pub fn on_tmpfs(&self) -> bool {
        self.mounted
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
            let _ = std::fs::remove_dir(&self.dir);
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let _ = std::fs::remove_file(spool_path(&self.dir));
    }
}

fn spool_path(dir: &Path) -> PathBuf {
    let mut p = dir.as_os_str().to_owned();
    p.push(".spool");
    PathBuf::from(p)
}

/// Makes a fresh directory for a context under berth's root.
pub fn fresh_dir(root: &Path) -> Result<Received, BuildError> {
    let id = berth_engine::run::new_id().map_err(BuildError::from)?;
    let dir = root.join("build/tmp").join(format!(
        "context.{}.{}",
        std::process::id(),
        id.get(..16).unwrap_or(&id)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Io(format!("make {}", dir.display()), e))?;
    Ok(Received {
        dir,
        mounted: false,
    })
}

/// Removes what killed builds left under `<root>/build/tmp` (contexts,
/// downloads, secrets) whose process is gone.
pub fn sweep(root: &Path) {
    let Ok(dir) = std::fs::read_dir(root.join("build/tmp")) else {
        return;
    };
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for e in dir.flatten() {
        // image overlays of `RUN --mount from=` whose build was killed
        let name = e.file_name().to_string_lossy().into_owned();
        // and contexts (on tmpfs or not) of builds that were killed
        if let Some(rest) = name.strip_prefix("context.") {
            let pid = rest.split('.').next().unwrap_or("");
            if pid.is_empty() || !Path::new("/proc").join(pid).exists() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir_all(e.path());
                } else {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            continue;
        }
        if let Some(rest) = name.strip_prefix("mnt.") {
            let pid = rest.split('.').next().unwrap_or("");
            if !Path::new("/proc").join(pid).exists() || pid.is_empty() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
                let _ = std::fs::remove_dir(e.path());
            }
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The stream's compression, from its first bytes.
fn decoder<'r>(input: impl Read + 'r) -> Result<Box<dyn Read + 'r>, BuildError> {
    crate::context::decompress(BufReader::with_capacity(256 << 10, input)).map_err(BuildError::from)
}

/// Whether a tar header is the archive's top directory (`.`, `./`): a
/// directory entry without data whose name is only dots and slashes.
fn is_top_dir(header: &[u8]) -> bool {
    let Some(name) = header.get(..100) else {
        return false;
    };
    let name = name.split(|b| *b == 0).next().unwrap_or_default();
    let prefix = header.get(345..500).unwrap_or_default();
    let no_prefix = prefix.first().is_none_or(|b| *b == 0);
    !name.is_empty()
        && no_prefix
        && header.get(156) == Some(&b'5')
        && name.starts_with(b".")
        && name.iter().all(|b| *b == b'.' || *b == b'/')
        && !name.windows(2).any(|w| w == b"..")
}

/// Unpacks a (maybe compressed) context tar from `input` into a fresh
/// directory. A stream that is not a tar at all is taken as a Dockerfile
/// alone (docker's `-` with a Dockerfile on stdin), named `Dockerfile`.
pub fn receive(root: &Path, input: impl Read) -> Result<Received, BuildError> {
    let got = fresh_dir(root)?;
    let mut r = decoder(input)?;
    // the first tar header (512 bytes) tells a tar from a Dockerfile
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BuildError::Io("read the build context".into(), e)),
        }
    }
    head.truncate(n);
    let is_tar = n == 0 || (n >= 262 && &head[257..262] == b"ustar");
    if is_tar && is_top_dir(&head) {
        // `tar -C dir -cf - .` starts with the context directory itself
        // (`./`), which names nothing to create
        head.clear();
    }
    let r = BufReader::with_capacity(256 << 10, TarTail::new(std::io::Cursor::new(head).chain(r)));
    let mut got = got;
    if is_tar {
        // spooled first: its size decides where it is unpacked
        let spool = spool_path(&got.dir);
        let io = |e| BuildError::Io("spool the build context".into(), e);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&spool)
            .map_err(io)?;
        let mut r = r;
        let size = std::io::copy(&mut r, &mut f).map_err(io)?;
        std::io::Seek::rewind(&mut f).map_err(io)?;
        if size <= TMPFS_MAX {
            let opts = std::ffi::CString::new(format!(
                "size={},mode=0700",
                size.saturating_mul(2).saturating_add(16 << 20)
            ))
            .map_err(|_| BuildError::Image("tmpfs options".into()))?;
            got.mounted = rustix::mount::mount(
                "tmpfs",
                &got.dir,
                "tmpfs",
                rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
                Some(opts.as_c_str()),
            )
            .is_ok();
        }
        let dir = std::fs::File::open(&got.dir)
            .map_err(|e| BuildError::Io(format!("open {}", got.dir.display()), e))?;
        let r = BufReader::with_capacity(256 << 10, f);
        let _ = std::fs::remove_file(&spool);
        berth_engine::archive::extract_tar(std::os::fd::AsFd::as_fd(&dir), r, None).map_err(
            |e| match e {
                berth_engine::Error::Invalid(m) => {
                    BuildError::Image(format!("the build context is not a valid tar archive: {m}"))
                }
                other => BuildError::Engine(other),
            },
        )?;
    } else {
        let mut f = std::fs::File::create(got.dir.join("Dockerfile"))
            .map_err(|e| BuildError::Io("write the Dockerfile".into(), e))?;
        let mut r = r;
        std::io::copy(&mut r, &mut f)
            .map_err(|e| BuildError::Io("write the Dockerfile".into(), e))?;
    }
    Ok(got)
}

/// Where a [`TarTail`] is in the archive.
#[derive(Debug)]
enum Place {
    /// Collecting a header block (the bytes so far).
    Header(Vec<u8>),
    /// In an entry's data: bytes left, then padding.
    Data(u64, u64),
    /// In the padding after an entry's data: bytes left.
    Padding(u64),
    /// Past the end-of-archive block, or lost (a header that does not
    /// parse): everything passes as it is.
    End,
}

/// The docker CLI (20.10, `build -f -` with a directory) sends a context
/// tar that stops right after the last entry's data: no padding, no
/// end-of-archive blocks. Go's reader takes an end of input there as the
/// end of the archive; so does this reader, which supplies the missing
/// zeros when the input ends at an entry boundary or inside the padding.
/// An end inside a header or an entry's data stays an end (a truncated
/// archive, which the tar reader refuses).
#[derive(Debug)]
struct TarTail<R> {
    inner: R,
    place: Place,
    zeros: usize,
    ended: bool,
}

impl<R> TarTail<R> {
    fn new(inner: R) -> TarTail<R> {
        TarTail {
            inner,
            place: Place::Header(Vec::with_capacity(512)),
            zeros: 0,
            ended: false,
        }
    }

    /// Follows the archive's structure over bytes that were read.
    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.place {
                Place::End => return,
                Place::Header(h) => {
                    let k = (512 - h.len()).min(bytes.len());
                    h.extend_from_slice(&bytes[..k]);
                    bytes = &bytes[k..];
                    if h.len() == 512 {
                        self.place = if h.iter().all(|b| *b == 0) {
                            Place::End
                        } else {
                            match entry_size(h) {
                                Some(size) => Place::Data(size, (512 - size % 512) % 512),
                                None => Place::End,
                            }
                        };
                    }
                }
                Place::Data(left, pad) => {
                    let k = (*left).min(bytes.len() as u64);
                    *left -= k;
                    bytes = &bytes[k as usize..];
                    if *left == 0 {
                        self.place = Place::Padding(*pad);
                    }
                }
                Place::Padding(left) => {
                    let k = (*left).min(bytes.len() as u64);
                    *left -= k;
                    bytes = &bytes[k as usize..];
                }
            }
            if matches!(self.place, Place::Padding(0)) {
                self.place = Place::Header(Vec::with_capacity(512));
            }
        }
    }
}

/// A header's size field: octal text, or base-256 when the first byte's
/// high bit is set.
fn entry_size(h: &[u8]) -> Option<u64> {
    let field = h.get(124..136)?;
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

impl<R: Read> Read for TarTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.ended {
            let n = self.inner.read(buf)?;
            if n > 0 {
                self.advance(&buf[..n]);
                return Ok(n);
            }
            self.ended = true;
            self.zeros = match &self.place {
                Place::Header(h) if h.is_empty() => 1024,
                Place::Data(0, pad) => *pad as usize + 1024,
                Place::Padding(left) => *left as usize + 1024,
                _ => 0,
            };
        }
        let k = self.zeros.min(buf.len());
        buf[..k].fill(0);
        self.zeros -= k;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        TarTail::new(input).read_to_end(&mut out).unwrap();
        out
    }

    fn header(size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[0] = b'f';
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h
    }

    #[test]
    fn a_tar_cut_after_the_last_data_is_completed() {
        let mut t = header(47);
        t.extend_from_slice(&[b'x'; 47]);
        let out = through(&t);
        assert_eq!(out.len(), 512 + 512 + 1024);
        assert_eq!(&out[..t.len()], &t[..]);
        assert!(out[t.len()..].iter().all(|b| *b == 0));
        // ended at an entry boundary: the end blocks only
        let mut t = header(512);
        t.extend_from_slice(&[b'x'; 512]);
        assert_eq!(through(&t).len(), 1024 + 1024);
    }

    #[test]
    fn a_tar_cut_inside_a_header_or_data_stays_cut() {
        let mut t = header(1000);
        t.extend_from_slice(&[b'x'; 600]);
        assert_eq!(through(&t), t);
        let t = header(3)[..300].to_vec();
        assert_eq!(through(&t), t);
    }

    #[test]
    fn a_whole_tar_passes_unchanged() {
        let mut t = header(2);
        t.extend_from_slice(b"ab");
        t.resize(1024, 0);
        t.extend_from_slice(&[0u8; 1024]);
        t.extend_from_slice(b"trailing");
        assert_eq!(through(&t), t);
    }

    #[test]
    fn the_top_directory_entry_is_recognised() {
        let mut h = header(0);
        h[..2].copy_from_slice(b"./");
        h[156] = b'5';
        assert!(is_top_dir(&h));
        h[..3].copy_from_slice(b"../");
        assert!(!is_top_dir(&h));
        let mut f = header(0);
        f[156] = b'5';
        assert!(!is_top_dir(&f));
    }
}
