//! `berth-probe`: runs inside test containers and reports what it sees.
//! Statically linked, no dependencies beyond libc, so it works in a bare
//! busybox rootfs. Each subcommand prints `key=value` lines (or a plain
//! value) and exits 0 when it could look; the tests judge the values.
//!
//!   berth-probe pid                 pid and ppid as the process sees them
//!   berth-probe syscall NAME        try a syscall; prints errno=N (0 = allowed)
//!   berth-probe fds                 open fds other than the one used to list
//!   berth-probe read PATH           bytes=N or errno=N
//!   berth-probe write PATH DATA     errno=N (0 = written)
//!   berth-probe status              the lines of /proc/self/status
//!   berth-probe forkbomb            forks until refused; prints forked=N errno=N
//!   berth-probe alloc MIB           touches MIB MiB of memory, then prints done
//!   berth-probe exe-attack SECS     tries to open every other /proc/*/exe for
//!                                   writing for SECS seconds; prints opened=N
//!   berth-probe sleep SECS          sleeps
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::{Read, Write};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

fn try_syscall(name: &str) -> i32 {
    // SAFETY: every call below passes arguments that are either null, small
    // integers or pointers to live local buffers; the probe only reports
    // whether the kernel (or seccomp) allowed the call.
    let ret = unsafe {
        match name {
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0),
            "add_key" => {
                let t = c"user";
                let d = c"probe";
                libc::syscall(
                    libc::SYS_add_key,
                    t.as_ptr(),
                    d.as_ptr(),
                    c"x".as_ptr(),
                    1,
                    -3,
                )
            }
            "unshare-user" => libc::unshare(libc::CLONE_NEWUSER) as libc::c_long,
            "unshare-mount" => libc::unshare(libc::CLONE_NEWNS) as libc::c_long,
            "bpf" => libc::syscall(libc::SYS_bpf, 0, 0, 0),
            "userfaultfd" => libc::syscall(libc::SYS_userfaultfd, 0),
            "perf_event_open" => libc::syscall(libc::SYS_perf_event_open, 0, 0, -1, -1, 0),
            "mount" => libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ) as libc::c_long,
            "cgroup-mount" => {
                let _ = libc::mkdir(c"/tmp/cg".as_ptr(), 0o755);
                libc::mount(
                    c"cgroup".as_ptr(),
                    c"/tmp/cg".as_ptr(),
                    c"cgroup".as_ptr(),
                    0,
                    c"rdma".as_ptr().cast(),
                ) as libc::c_long
            }
            "getpid" => libc::syscall(libc::SYS_getpid),
            _ => {
                eprintln!("unknown syscall {name}");
                std::process::exit(2)
            }
        }
    };
    if ret < 0 { errno() } else { 0 }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match cmd {
        "pid" => {
            println!("pid={}", std::process::id());
            // SAFETY: getppid has no arguments.
            println!("ppid={}", unsafe { libc::getppid() });
        }
        "syscall" => println!("errno={}", try_syscall(&arg(2))),
        "fds" => {
            let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
            let mut fds: Vec<i32> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort();
            // The highest fd is the directory being listed.
            fds.pop();
            let list: Vec<String> = fds
                .iter()
                .map(|fd| {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    format!("{fd}:{target}")
                })
                .collect();
            println!("fds={}", list.join(","));
        }
        "read" => match std::fs::File::open(arg(2)) {
            Ok(mut f) => {
                let mut buf = Vec::new();
                match f.read_to_end(&mut buf) {
                    Ok(n) => println!("bytes={n}"),
                    Err(e) => println!("errno={}", e.raw_os_error().unwrap_or(-1)),
                }
            }
            Err(e) => println!("errno={}", e.raw_os_error().unwrap_or(-1)),
        },
        "write" => {
            let r = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(arg(2))
                .and_then(|mut f| f.write_all(arg(3).as_bytes()));
            println!(
                "errno={}",
                r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
            );
        }
        "status" => {
            print!(
                "{}",
                std::fs::read_to_string("/proc/self/status").expect("status")
            );
        }
        "forkbomb" => {
            let mut n = 0;
            loop {
                // SAFETY: the child only sleeps and exits; it touches nothing.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    std::thread::sleep(std::time::Duration::from_secs(30));
                    // SAFETY: plain process exit in the child.
                    unsafe { libc::_exit(0) };
                }
                if pid < 0 {
                    println!("forked={n} errno={}", errno());
                    break;
                }
                n += 1;
                if n >= 100_000 {
                    println!("forked={n} errno=0");
                    break;
                }
            }
            // SAFETY: signal every child of the process group, then leave.
            unsafe { libc::kill(0, libc::SIGKILL) };
        }
        "alloc" => {
            let mib: usize = arg(2).parse().expect("MiB");
            let mut v: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mib {
                v.push(vec![1u8; 1 << 20]);
            }
            println!("done");
            std::hint::black_box(&v);
        }
        "exe-attack" => {
            let secs: u64 = arg(2).parse().unwrap_or(10);
            let me = std::process::id();
            let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            let mut opened = 0;
            let mut held: Vec<std::fs::File> = Vec::new();
            while std::time::Instant::now() < end {
                if let Ok(dir) = std::fs::read_dir("/proc") {
                    for e in dir.flatten() {
                        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                        else {
                            continue;
                        };
                        if pid == me {
                            continue;
                        }
                        let path = format!("/proc/{pid}/exe");
                        // Try to write the binary now, and keep a read handle
                        // to reopen for writing after the process is gone.
                        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                            let _ = f.write_all(b"#!/bin/sh\necho pwned\n");
                            opened += 1;
                        }
                        if let Ok(f) = std::fs::File::open(&path) {
                            held.push(f);
                        }
                    }
                }
                for f in &held {
                    use std::os::fd::AsRawFd;
                    let p = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd())).expect("path");
                    // SAFETY: p is a valid NUL-terminated path.
                    let fd = unsafe { libc::open(p.as_ptr(), libc::O_WRONLY) };
                    if fd >= 0 {
                        let msg = b"#!/bin/sh\necho pwned\n";
                        // SAFETY: fd was just opened; msg is a valid buffer.
                        unsafe {
                            libc::write(fd, msg.as_ptr().cast(), msg.len());
                            libc::close(fd);
                        }
                        opened += 1;
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            println!("opened={opened}");
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs_f64(
            arg(2).parse().unwrap_or(1.0),
        )),
        _ => {
            eprintln!(
                "usage: berth-probe pid|syscall NAME|fds|read PATH|write PATH DATA|status|forkbomb|alloc MIB|exe-attack SECS|sleep SECS"
            );
            std::process::exit(2);
        }
    }
}
