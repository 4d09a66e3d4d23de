//! Protection of the runtime binary against being overwritten from inside
//! a container (CVE-2019-5736).
//!
//! A container process could reach the runtime's executable through
//! `/proc/<pid>/exe` of a runtime process in its pid namespace (the init
//! before it execs, an `exec` helper, or the runtime re-executed through a
//! `#!/proc/self/exe` script) and write to it once the runtime exits. So
//! every command that starts container processes first makes sure it runs
//! from a read-only file: if `/proc/self/exe` is not on a read-only mount,
//! it re-executes itself through a private, detached, read-only overlayfs
//! mount of its own directory (no copy: the page cache is shared; nothing
//! is left mounted). Where overlayfs is unavailable it falls back to a
//! sealed memfd copy.
//!
//! That re-exec costs about 2 ms, so a container that gets a pid
//! namespace of its own skips it: nothing in the container can see the
//! runtime while its init sets up (it is pid 1 and alone), and the init's
//! last step execs the container process through [`trampoline`], a
//! 180-byte static program in a sealed memfd, so that not even a
//! `#!/proc/self/exe` entrypoint (or LD_PRELOAD in the image's
//! environment) can make the kernel run the runtime binary inside the
//! container.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags, SealFlags, StatVfsMountFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

use crate::error::{Context, Error, Result};

/// Whether the running executable can be written through
/// `/proc/self/exe` (false when it is on a read-only mount or a sealed memfd).
pub fn exe_is_writable() -> bool {
    match rustix::fs::statvfs("/proc/self/exe") {
        Ok(st) if st.f_flag.contains(StatVfsMountFlags::RDONLY) => false,
        Ok(_) => !is_sealed_memfd(),
        Err(_) => true,
    }
}

fn is_sealed_memfd() -> bool {
    rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
    .and_then(|fd| rustix::fs::fcntl_get_seals(&fd).ok())
    .is_some_and(|s| s.contains(SealFlags::WRITE))
}

/// Re-executes the current process from a read-only view of its binary
/// unless it already runs from one. Returns only if no re-exec was needed
/// (or on error).
pub fn ensure_sealed() -> Result<()> {
    if !exe_is_writable() {
        return Ok(());
    }
    let fd = match overlay_view() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(
                "read-only overlay of the runtime binary failed ({e}); using a memfd copy"
            );
            memfd_copy()?
        }
    };
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| Error::Invalid("argument with NUL".into())))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let err = berth_sys::exec::execve_fd(fd.as_fd(), &argv, &envp);
    Err(Error::Io {
        context: "re-execute the runtime from its read-only view".into(),
        source: err,
    })
}

/// The running binary, opened through a detached read-only overlayfs whose
/// lower layer is the binary's directory.
fn overlay_view() -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ctx(|| "read /proc/self/exe")?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let name = exe
        .file_name()
        .ok_or_else(|| Error::Invalid("runtime binary has no name".into()))?;
    // The file at that path must still be the running binary.
    let running = rustix::fs::stat("/proc/self/exe").ctx(|| "stat /proc/self/exe")?;
    let on_disk = rustix::fs::stat(&exe).ctx(|| format!("stat {}", exe.display()))?;
    if (running.st_dev, running.st_ino) != (on_disk.st_dev, on_disk.st_ino) {
        return Err(Error::Invalid(
            "the runtime binary was replaced while running".into(),
        ));
    }
    // overlayfs needs two lower layers without an upper one; the second is
    // an empty detached tmpfs.
    let tmp = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).ctx(|| "fsopen tmpfs")?;
    rustix::mount::fsconfig_create(&tmp).ctx(|| "create tmpfs")?;
    let empty = rustix::mount::fsmount(
        &tmp,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .ctx(|| "fsmount tmpfs")?;
    let ov =
        rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ctx(|| "fsopen overlay")?;
    let lower = format!(
        "{}:{}",
        dir.display(),
        berth_sys::paths::fd_path(empty.as_fd())
    );
    rustix::mount::fsconfig_set_string(&ov, "lowerdir", lower.as_str())
        .ctx(|| "overlay lowerdir")?;
    rustix::mount::fsconfig_create(&ov).ctx(|| "create overlay")?;
    let mnt = rustix::mount::fsmount(
        &ov,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .ctx(|| "fsmount overlay")?;
    rustix::fs::openat(&mnt, name, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| "open the binary in the overlay")
}

/// A sealed in-memory copy of the running binary.
fn memfd_copy() -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(
        "berth-sealed",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .ctx(|| "memfd_create")?;
    let mut src = std::fs::File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).ctx(|| "copy the runtime binary")?;
    let fd = OwnedFd::from(dst);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .ctx(|| "seal the copy")?;
    Ok(fd)
}

/// The x86_64 trampoline: a static ELF that runs
/// `execve(argv[1], &argv[2], envp)` and exits 127 (after a message on
/// stderr) if that fails. Hand-assembled; see the comments for each
/// instruction.
#[cfg(target_arch = "x86_64")]
const TRAMPOLINE: &[u8] = &{
    const BASE: u64 = 0x40_0000;
    const CODE: &[u8] = &[
        // Only run as invoked by berth (argv[0] == "berth-exec"): as the
        // interpreter of a `#!/proc/self/exe` script it would exec that
        // script again, forever.
        0x48,
        0x8b,
        0x44,
        0x24,
        0x08, // mov rax, [rsp+8]     ; argv[0]
        0x48,
        0xba,
        b'b',
        b'e',
        b'r',
        b't',
        b'h',
        b'-',
        b'e',
        b'x', // movabs rdx, "berth-ex"
        0x48,
        0x39,
        0x10, // cmp [rax], rdx
        0x75,
        0x28, // jne fail
        0x66,
        0x81,
        0x78,
        0x08,
        b'e',
        b'c', // cmp word [rax+8], "ec"
        0x75,
        0x20, // jne fail
        0x80,
        0x78,
        0x0a,
        0x00, // cmp byte [rax+10], 0
        0x75,
        0x1a, // jne fail
        0x48,
        0x8b,
        0x0c,
        0x24, // mov rcx, [rsp]            ; argc
        0x48,
        0x8b,
        0x7c,
        0x24,
        0x10, // mov rdi, [rsp+16]   ; argv[1]: the program
        0x48,
        0x8d,
        0x74,
        0x24,
        0x18, // lea rsi, [rsp+24]   ; &argv[2]: its argv
        0x48,
        0x8d,
        0x54,
        0xcc,
        0x10, // lea rdx, [rsp+rcx*8+16] ; envp
        0xb8,
        0x3b,
        0x00,
        0x00,
        0x00, // mov eax, 59 (execve)
        0x0f,
        0x05, // syscall
        // fail:
        0xbf,
        0x02,
        0x00,
        0x00,
        0x00, // mov edi, 2 (stderr)
        0x48,
        0x8d,
        0x35,
        0x18,
        0x00,
        0x00,
        0x00, // lea rsi, [rip+24] ; the message
        0xba,
        MSG.len() as u8,
        0x00,
        0x00,
        0x00, // mov edx, len
        0xb8,
        0x01,
        0x00,
        0x00,
        0x00, // mov eax, 1 (write)
        0x0f,
        0x05, // syscall
        0xbf,
        0x7f,
        0x00,
        0x00,
        0x00, // mov edi, 127
        0xb8,
        0xe7,
        0x00,
        0x00,
        0x00, // mov eax, 231 (exit_group)
        0x0f,
        0x05, // syscall
    ];
    const MSG: &[u8] = b"berth: cannot execute the container process\n";
    const HDRS: usize = 64 + 2 * 56;
    const LEN: usize = HDRS + CODE.len() + MSG.len();
    let mut b = [0u8; LEN];
    // ELF header
    let ident = [0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    let mut i = 0;
    while i < ident.len() {
        b[i] = ident[i];
        i += 1;
    }
    put(&mut b, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut b, 18, &0x3eu16.to_le_bytes()); // x86_64
    put(&mut b, 20, &1u32.to_le_bytes()); // version
    put(&mut b, 24, &(BASE + HDRS as u64).to_le_bytes()); // entry
    put(&mut b, 32, &64u64.to_le_bytes()); // phoff
    put(&mut b, 52, &64u16.to_le_bytes()); // ehsize
    put(&mut b, 54, &56u16.to_le_bytes()); // phentsize
    put(&mut b, 56, &2u16.to_le_bytes()); // phnum
    // PT_LOAD, R+X, the whole file
    put(&mut b, 64, &1u32.to_le_bytes());
    put(&mut b, 68, &5u32.to_le_bytes());
    put(&mut b, 72 + 8, &BASE.to_le_bytes());
    put(&mut b, 72 + 16, &BASE.to_le_bytes());
    put(&mut b, 72 + 24, &(LEN as u64).to_le_bytes());
    put(&mut b, 72 + 32, &(LEN as u64).to_le_bytes());
    put(&mut b, 72 + 40, &0x1000u64.to_le_bytes());
    // PT_GNU_STACK, R+W: a non-executable stack
    put(&mut b, 120, &0x6474_e551u32.to_le_bytes());
    put(&mut b, 124, &6u32.to_le_bytes());
    put(&mut b, HDRS, CODE);
    put(&mut b, HDRS + CODE.len(), MSG);
    b
};

#[cfg(target_arch = "x86_64")]
const fn put<const N: usize>(b: &mut [u8; N], at: usize, v: &[u8]) {
    let mut i = 0;
    while i < v.len() {
        b[at + i] = v[i];
        i += 1;
    }
}

/// The trampoline in a sealed memfd, ready for `execveat`; `None` on
/// architectures without one (those use [`ensure_sealed`] instead).
pub fn trampoline() -> Option<OwnedFd> {
    #[cfg(target_arch = "x86_64")]
    {
        let fd = rustix::fs::memfd_create(
            "berth-exec",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .ok()?;
        let mut off = 0;
        while off < TRAMPOLINE.len() {
            off += rustix::io::write(&fd, &TRAMPOLINE[off..]).ok()?;
        }
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
        )
        .ok()?;
        Some(fd)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_trampoline_execs_its_first_argument_and_reports_failure() {
        let fd = trampoline().expect("x86_64 has a trampoline");
        let path = berth_sys::paths::fd_path(fd.as_fd());
        let out = std::process::Command::new(&path)
            .arg0("berth-exec")
            .args(["/bin/sh", "sh", "-c", "echo $0 $1 $FOO", "x"])
            .env("FOO", "bar")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x bar\n");
        let out = std::process::Command::new(&path)
            .arg0("berth-exec")
            .args(["/no/such/program", "p"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        // run any other way (as a script's interpreter) it refuses
        let out = std::process::Command::new(&path)
            .args(["/bin/sh", "sh", "-c", "echo ran"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "berth: cannot execute the container process\n"
        );
    }
}
