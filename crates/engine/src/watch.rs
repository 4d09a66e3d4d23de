//! Waiting for files to change without polling: an inotify descriptor on
//! a directory (a container's log directory, the root's event log). It is
//! a plain non-blocking fd, so an async server registers it with its
//! reactor (one fd per follower, no thread), and the CLI blocks on it with
//! a timeout.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::fs::inotify;

/// Changes in one directory (files written, created, renamed into it).
#[derive(Debug)]
pub struct FileWatch {
    fd: OwnedFd,
}

impl FileWatch {
    /// Watches `dir`.
    pub fn new(dir: &Path) -> std::io::Result<FileWatch> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        Ok(FileWatch { fd })
    }

    /// Reads the pending notifications (they only say "look again").
    pub fn drain(&self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut r = inotify::Reader::new(&self.fd, &mut buf);
        while r.next().is_ok() {}
    }

    /// Blocks until something changed or `timeout` passed, then drains.
    pub fn wait(&self, timeout: Duration) {
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        self.drain();
    }
}

impl AsRawFd for FileWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        AsRawFd::as_raw_fd(&self.fd)
    }
}

impl AsFd for FileWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
