//! Waiting for a foreground container process: forwarding signals and
//! relaying its terminal.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

use crate::console::{RawMode, copy_winsize};
use crate::error::{Context, Result};

/// The exit code of a wait status, shell-style (128+signal if killed).
pub fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        255
    }
}

/// Waits for `pid` (a child of this process), forwarding the signals that
/// arrive on `signals` and relaying `pty` to this process's stdio.
pub fn wait_child(pid: Pid, signals: BorrowedFd<'_>, pty: Option<OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = match &pty {
        Some(_) if rustix::termios::isatty(stdin.as_fd()) => RawMode::enter(stdin.as_fd()).ok(),
        _ => None,
    };
    if let Some(m) = &pty
        && rustix::termios::isatty(stdin.as_fd())
    {
        copy_winsize(stdin.as_fd(), m.as_fd());
    }
    let mut stdin_open = pty.is_some();
    let mut master_open = pty.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let mut exited: Option<i32> = None;
    loop {
        if let Some(code) = exited
            && !master_open
        {
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(&signals, PollFlags::IN)];
        let m_idx = if let (true, Some(m)) = (master_open, &pty) {
            fds.push(PollFd::new(m, PollFlags::IN));
            Some(fds.len() - 1)
        } else {
            None
        };
        let s_idx = if stdin_open && exited.is_none() {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
            Some(fds.len() - 1)
        } else {
            None
        };
        // Once the process has exited, drain the terminal without blocking.
        let timeout = if exited.is_some() {
            Some(&rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            })
        } else {
            None
        };
        match rustix::event::poll(&mut fds, timeout) {
            Ok(0) if exited.is_some() => master_open = false,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).ctx(|| "poll"),
        }
        let rev = |i: Option<usize>| i.map(|i| fds[i].revents()).unwrap_or(PollFlags::empty());
        let sig_ready = !fds[0].revents().is_empty();
        let m_rev = rev(m_idx);
        let s_rev = rev(s_idx);
        drop(fds);
        if sig_ready {
            while let Some(info) =
                berth_sys::signal::read_signalfd(signals).ctx(|| "read signals")?
            {
                match info.signo {
                    libc::SIGCHLD => {
                        if let Some((_, st)) =
                            rustix::process::waitpid(Some(pid), WaitOptions::NOHANG)
                                .ctx(|| "waitpid")?
                        {
                            exited = Some(exit_code(st));
                        }
                    }
                    libc::SIGWINCH => {
                        if let Some(m) = &pty {
                            copy_winsize(stdin.as_fd(), m.as_fd());
                        }
                    }
                    sig => {
                        if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                            let _ = rustix::process::kill_process(pid, s);
                        }
                    }
                }
            }
        }
        if !m_rev.is_empty()
            && let Some(m) = &pty
        {
            match rustix::io::read(m, &mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    let mut out = stdout.lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if !s_rev.is_empty() {
            match rustix::io::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = &pty {
                        let _ = rustix::io::write(m, &buf[..n]);
                    }
                }
            }
        }
        if exited.is_none() && pty.is_none() {
            // No terminal: only signals matter, and SIGCHLD may have been
            // merged with an earlier one.
            if let Some((_, st)) =
                rustix::process::waitpid(Some(pid), WaitOptions::NOHANG).ctx(|| "waitpid")?
            {
                exited = Some(exit_code(st));
            }
        }
    }
}
