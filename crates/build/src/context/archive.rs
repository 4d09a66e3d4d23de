//! ADD's local archives: recognised by content (a tar stream, plain or
//! compressed with gzip, bzip2, xz or zstd, whose first header reads), and
//! re-emitted below the destination with every path normalised so that
//! nothing leaves it.

use std::io::{self, BufReader, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ContextError;
use super::fsops;

/// A stream's compression, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Guesses the compression from the first bytes (gzip and zstd as the
/// layer unpacker recognises them, bzip2 and xz by their magic numbers).
pub(super) fn detect(head: &[u8]) -> Compression {
    match berth_image::unpack::Compression::detect(head) {
        berth_image::unpack::Compression::Gzip => Compression::Gzip,
        berth_image::unpack::Compression::Zstd => Compression::Zstd,
        berth_image::unpack::Compression::None => {
            if head.starts_with(b"BZh") {
                Compression::Bzip2
            } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
                Compression::Xz
            } else {
                Compression::None
            }
        }
    }
}

/// The decompressed stream of `input`.
pub(super) fn decoder<'a>(mut input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        let n = input.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let chained = io::Cursor::new(head[..got].to_vec()).chain(input);
    Ok(match detect(&head[..got]) {
        Compression::None => Box::new(chained),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(chained))),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(chained))),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(BufReader::new(chained), true)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained)?),
    })
}

/// Whether the file `rel` (canonical) is a tar archive Docker's ADD would
/// unpack: it decompresses and its first tar header reads.
pub(super) fn is_archive(root: BorrowedFd<'_>, rel: &str) -> bool {
    let Ok((f, _)) = fsops::open_file(root, rel) else {
        return false;
    };
    let Ok(dec) = decoder(f) else {
        return false;
    };
    let mut ar = tar::Archive::new(dec);
    let Ok(mut entries) = ar.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

fn invalid(e: io::Error) -> ContextError {
    ContextError::Invalid(format!("ADD failed: reading the archive: {e}"))
}

/// Re-emits the entries of the tar stream `input` below `dest` (relative
/// to `/`): paths normalised (`berth_image::unpack::normalize`), an entry
/// or hard link climbing out of the archive's root refused.
pub(super) fn emit<W: Write>(
    out: &mut tar::Builder<W>,
    input: impl Read,
    dest: &str,
    name: &str,
) -> Result<(), ContextError> {
    let w = |e: io::Error| fsops::io_err("write the copy's archive", e);
    let mut ar = tar::Archive::new(input);
    for entry in ar.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) = berth_image::unpack::normalize(&raw) else {
            return Err(ContextError::Invalid(format!(
                "ADD failed: the archive {name} has an entry {:?} that leaves the destination",
                String::from_utf8_lossy(&raw)
            )));
        };
        if rel.as_os_str().is_empty() {
            continue; // "./": the destination itself
        }
        let path = Path::new(dest).join(&rel);
        let src = entry.header().clone();
        let kind = src.entry_type();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        // archives from other tools may leave numeric fields empty
        let default_mode = if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        };
        h.set_mode(src.mode().unwrap_or(default_mode) & 0o7777);
        h.set_uid(src.uid().unwrap_or(0));
        h.set_gid(src.gid().unwrap_or(0));
        h.set_mtime(src.mtime().unwrap_or(0));
        h.set_size(0);
        if let Ok(Some(u)) = src.username() {
            let _ = h.set_username(u);
        }
        if let Ok(Some(g)) = src.groupname() {
            let _ = h.set_groupname(g);
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(entry.size());
                out.append_data(&mut h, &path, &mut entry).map_err(w)?;
            }
            tar::EntryType::Directory | tar::EntryType::Fifo => {
                out.append_data(&mut h, &path, io::empty()).map_err(w)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let major = src.device_major().map_err(invalid)?.unwrap_or(0);
                let minor = src.device_minor().map_err(invalid)?.unwrap_or(0);
                h.set_device_major(major).map_err(w)?;
                h.set_device_minor(minor).map_err(w)?;
                out.append_data(&mut h, &path, io::empty()).map_err(w)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| {
                        ContextError::Invalid(format!(
                            "ADD failed: a symlink without a target in {name}"
                        ))
                    })?
                    .into_owned();
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
                out.append_link(&mut h, &path, &target).map_err(w)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .and_then(|t| berth_image::unpack::normalize(&t))
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| {
                        ContextError::Invalid(format!(
                            "ADD failed: the archive {name} has a hard link {:?} that leaves the destination",
                            String::from_utf8_lossy(&raw)
                        ))
                    })?;
                out.append_link(&mut h, &path, Path::new(dest).join(target))
                    .map_err(w)?;
            }
            tar::EntryType::GNUSparse => {
                return Err(ContextError::Invalid(format!(
                    "ADD failed: not supported yet: sparse files in archives ({} in {name})",
                    rel.display()
                )));
            }
            // global pax headers and other metadata entries: nothing to create
            _ => {}
        }
    }
    Ok(())
}
