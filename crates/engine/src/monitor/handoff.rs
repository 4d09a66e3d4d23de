//! The hand-off to and from `berth-shim` (ADR 0013): while the container
//! runs with nobody attached, a 13 KiB program holds it; a client or the
//! exit brings the monitor back (`resume_main`).

use super::*;

/// Entry point of `berth monitor ROOT ID --resume ...`: the monitor again,
/// after its shim saw the container exit (the same process). Never returns.
pub fn resume_main(root: &Path, id: &str, args: &[String]) -> ! {
    let Some(r) = Resume::parse(args) else {
        eprintln!("berth monitor {id}: bad --resume arguments {args:?}");
        berth_sys::fork::exit_now(2)
    };
    let code = r.code;
    let code = match Monitor::new(root, id, None, Some(r)).and_then(|mut m| m.run(Some(code))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth monitor {id}: {e}");
            1
        }
    };
    berth_sys::fork::exit_now(code)
}

impl Monitor {
    /// Replaces this process with berth-shim, which follows the running
    /// container (init `pid`, stdio `io`) with a few pages of memory and
    /// executes berth again (`--resume`) at its exit. Returns only when the
    /// shim is not available or cannot be executed: the monitor then follows
    /// the container itself.
    pub(super) fn handoff(&mut self, io: &Io, pid: i32) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let shim = match crate::embedded::install(&self.root, "berth-shim", crate::embedded::SHIM) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                eprintln!("{e}; the monitor follows the container itself");
                return;
            }
        };
        // the berth binary the shim executes again (this one, even if the
        // file was replaced since)
        let exe = match rustix::fs::open(
            "/proc/self/exe",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("open /proc/self/exe: {e}; the monitor follows the container itself");
                return;
            }
        };
        let mut passed: Vec<BorrowedFd<'_>> = vec![exe.as_fd(), self.listener.as_fd()];
        let mut cmd = std::process::Command::new(&shim);
        let num = |fd: &dyn AsRawFd| fd.as_raw_fd().to_string();
        cmd.arg("--pid").arg(pid.to_string());
        cmd.arg("--listen").arg(num(&self.listener));
        cmd.arg("--exe").arg(num(&exe));
        for (flag, fd) in [
            ("--out", &io.out),
            ("--err", &io.err),
            ("--pty", &io.pty),
            ("--stdin", &io.stdin),
        ] {
            if let Some(fd) = fd {
                cmd.arg(flag).arg(num(fd));
                passed.push(fd.as_fd());
            }
        }
        if self.record.open_stdin {
            cmd.arg("--open-stdin");
        }
        if self.record.stdin_once {
            cmd.arg("--stdin-once");
        }
        if self.record.log.driver != crate::config::LogDriver::None {
            let (max, files) = self.record.log.rotation().unwrap_or((0, 1));
            cmd.arg("--log").arg(crate::logs::LOG_FILE);
            cmd.arg(max.to_string()).arg(files.to_string());
        }
        if let (Some(h), Some(next)) = (&self.record.healthcheck, self.next_health) {
            let ms = |ns: i64| (ns / 1_000_000).max(0);
            let first = next.saturating_duration_since(Instant::now()).as_millis();
            let start_end = if h.start_period > 0 {
                epoch_ms() + ms(h.start_period)
            } else {
                0
            };
            cmd.arg("--health").arg(first.to_string());
            cmd.arg(crate::health::interval(h, false).as_millis().to_string());
            cmd.arg(ms(h.start_interval).to_string());
            cmd.arg(start_end.to_string());
            cmd.arg(&self.root).arg(&self.id);
        }
        for c in &self.clients {
            let mode = match c.kind {
                Kind::Wait => "w".to_owned(),
                Kind::Attach {
                    stdin,
                    stdout,
                    stderr,
                } => {
                    let flag = |on: bool, f: &'static str| if on { f } else { "" };
                    format!(
                        "a{}{}{}",
                        flag(stdin, "i"),
                        flag(stdout, "o"),
                        flag(stderr, "e")
                    )
                }
                Kind::New => continue,
            };
            cmd.arg("--client").arg(num(&c.fd)).arg(mode);
            passed.push(c.fd.as_fd());
        }
        cmd.arg("--")
            .arg("berth")
            .arg("monitor")
            .arg(&self.root)
            .arg(&self.id);
        cmd.arg("--resume").arg(self.began_ms.to_string());
        cmd.arg(self.backoff.as_millis().to_string());
        cmd.arg(num(&self.listener));
        let cloexec = |on: bool| {
            for fd in &passed {
                let flags = if on {
                    rustix::io::FdFlags::CLOEXEC
                } else {
                    rustix::io::FdFlags::empty()
                };
                let _ = rustix::io::fcntl_setfd(fd, flags);
            }
        };
        cloexec(false);
        let e = cmd.exec();
        cloexec(true);
        eprintln!(
            "execute {}: {e}; the monitor follows the container itself",
            shim.display()
        );
    }
}
