//! A plan's outputs: its cache digest, Docker's history text, its stats
//! and the layer-shaped tar stream.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::ContextError;
use super::fsops::{self, Kind};
use super::plan::{CopyPlan, Item, ItemKind, record};

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn header(it: &Item, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(it.mode & 0o7777);
    h.set_uid(u64::from(it.uid));
    h.set_gid(u64::from(it.gid));
    h.set_mtime(it.mtime);
    h.set_size(0);
    h
}

impl CopyPlan {
    /// sha256 hex over everything that decides the result: dest paths,
    /// file type, mode (after `--chmod`), owner (after `--chown`), bytes,
    /// symlink targets — not mtimes. Stable across runs; the build cache's
    /// key input.
    pub fn digest(&self) -> Result<String, ContextError> {
        let mut h = Sha256::new();
        h.update(b"berth-copy-v1\n");
        for it in &self.items {
            h.update(record(it, "").as_bytes());
            h.update(b"\n");
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Docker's history text for the sources: `file:<sha256 of the
    /// content> in /dst `, `dir:<hex> in /dst ` or `multi:<hex> in /dst `
    /// (the classic builder's `CreatedBy` of COPY/ADD, after `COPY ` and
    /// any `--chown=…`).
    pub fn description(&self) -> String {
        let hash = match self.infos.as_slice() {
            [one] => one.clone(),
            many => format!(
                "multi:{}",
                hex::encode(Sha256::digest(many.join(",").as_bytes()))
            ),
        };
        format!("{hash} in {} ", self.dest)
    }

    /// Number of files and their total bytes (for progress output).
    pub fn stats(&self) -> (u64, u64) {
        self.items.iter().fold((0, 0), |(n, b), it| match &it.kind {
            ItemKind::File { size, .. } | ItemKind::Archive { size, .. } => (n + 1, b + size),
            ItemKind::Inline { data } => (n + 1, b + data.len() as u64),
            _ => (n, b),
        })
    }

    /// Streams the result as a tar whose entry names are relative to `/`
    /// (e.g. `app/src/main.rs`): the destination directory itself only
    /// when it was missing (mode 0755, owner = `--chown` or 0:0), parents
    /// of dest not emitted, every copied file/dir/symlink with its mode
    /// (after `--chmod`), owner and the source's mtime; ADD archives'
    /// entries below dest with normalised paths. Files are read while
    /// writing (and checked against what was planned).
    pub fn write_tar(&self, out: impl Write) -> Result<(), ContextError> {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let w = |e: io::Error| fsops::io_err("write the copy's archive", e);
        let root = self.root.as_fd();
        for it in &self.items {
            let path = Path::new(&it.dest);
            match &it.kind {
                ItemKind::Dir => {
                    let mut h = header(it, tar::EntryType::Directory);
                    tar.append_data(&mut h, path, io::empty()).map_err(w)?;
                }
                ItemKind::File { src, size, sha } => {
                    let (f, meta) = fsops::open_file(root, src)?;
                    if meta.size != *size {
                        return Err(ContextError::Changed(src.clone()));
                    }
                    let mut h = header(it, tar::EntryType::Regular);
                    h.set_size(*size);
                    let mut r = Hashing {
                        inner: f.take(*size),
                        hash: Sha256::new(),
                    };
                    tar.append_data(&mut h, path, &mut r).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            ContextError::Changed(src.clone())
                        } else {
                            w(e)
                        }
                    })?;
                    if <[u8; 32]>::from(r.hash.finalize()) != *sha {
                        return Err(ContextError::Changed(src.clone()));
                    }
                }
                ItemKind::Symlink { target } => {
                    let mut h = header(it, tar::EntryType::Symlink);
                    tar.append_link(&mut h, path, std::ffi::OsStr::from_bytes(target))
                        .map_err(w)?;
                }
                ItemKind::Link { to } => {
                    let mut h = header(it, tar::EntryType::Link);
                    tar.append_link(&mut h, path, to).map_err(w)?;
                }
                ItemKind::Inline { data } => {
                    let mut h = header(it, tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    tar.append_data(&mut h, path, data.as_slice()).map_err(w)?;
                }
                ItemKind::Device { kind, rdev } => {
                    let t = match kind {
                        Kind::Char => tar::EntryType::Char,
                        Kind::Block => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    };
                    let mut h = header(it, t);
                    if t != tar::EntryType::Fifo {
                        h.set_device_major(rustix::fs::major(*rdev)).map_err(w)?;
                        h.set_device_minor(rustix::fs::minor(*rdev)).map_err(w)?;
                    }
                    tar.append_data(&mut h, path, io::empty()).map_err(w)?;
                }
                ItemKind::Archive { src, sha, .. } => {
                    let (f, _) = fsops::open_file(root, src)?;
                    let mut r = Hashing {
                        inner: f,
                        hash: Sha256::new(),
                    };
                    {
                        let dec = super::archive::decoder(&mut r).map_err(|e| {
                            ContextError::Invalid(format!("ADD failed: {src}: {e}"))
                        })?;
                        super::archive::emit(&mut tar, dec, &it.dest, src)?;
                    }
                    io::copy(&mut r, &mut io::sink())
                        .map_err(|e| fsops::io_err(format!("read {src}"), e))?;
                    if <[u8; 32]>::from(r.hash.finalize()) != *sha {
                        return Err(ContextError::Changed(src.clone()));
                    }
                }
            }
        }
        tar.finish().map_err(w)
    }
}
