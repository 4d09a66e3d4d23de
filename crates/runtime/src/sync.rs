//! The parent ↔ container-init channel: a SOCK_SEQPACKET socketpair that
//! carries small JSON messages and, with one of them, a file descriptor.
//! When the init execs the container process its end closes
//! (close-on-exec), which the parent sees as end-of-file: a precise
//! "the container process is running" signal.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

/// A message between the runtime and a container's init (or exec child).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Parent → child: ids are mapped; go on. Carries the child's pid as
    /// the host sees it (for hook state).
    Go {
        /// Host pid of the child.
        pid: i32,
    },
    /// Parent → child (after `Go`): the child is in its cgroup. The parent
    /// joins it there while the child mounts (on cgroup v1 the join waits
    /// for an RCU grace period, ~10 ms); the child waits for this before
    /// anything that depends on its cgroup (a cgroup namespace, cgroup
    /// mounts, hooks, the process).
    CgroupJoined,
    /// Child → parent: mounts are ready; run prestart/createRuntime hooks.
    RunRuntimeHooks,
    /// Parent → child: the runtime hooks ran.
    HooksDone,
    /// Child → parent: everything is set up; waiting to be started.
    Ready {
        /// Setup phases with their monotonic timestamps (ns).
        phases: Vec<(String, u64)>,
    },
    /// Parent → child: start the container process now.
    Start,
    /// Child → parent: the pty master follows as the attached fd.
    Pty,
    /// Child → parent: setup failed.
    Error {
        /// Why.
        message: String,
    },
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair (close-on-exec).
pub fn pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Wraps an existing socket.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    /// Sends `msg`, with `fd` attached if given.
    pub fn send(&self, msg: &Msg, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let fds;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if let Some(fd) = fd {
            fds = [fd];
            anc.push(SendAncillaryMessage::ScmRights(&fds));
        }
        rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(&data)],
            &mut anc,
            SendFlags::NOSIGNAL,
        )?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` when the other end is closed.
    pub fn recv(&self) -> io::Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        // A peer that exits with our last message unread resets the
        // connection; a seqpacket socket reports that error before the
        // messages the peer sent first (its error, say). Reading the error
        // clears it: the next read gets them.
        let mut reset = false;
        let n = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut anc,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if !reset => reset = true,
                Err(e) => return Err(e.into()),
            }
        };
        let mut fd = None;
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = m {
                fd = fds.next();
            }
        }
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(io::Error::other)?;
        Ok(Some((msg, fd)))
    }

    /// Receives a message and insists on one kind.
    pub fn expect(&self, want: &str) -> io::Result<Msg> {
        match self.recv()? {
            Some((m, _)) => Ok(m),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("channel closed while waiting for {want}"),
            )),
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sends a file descriptor over a unix socket (the `--console-socket`
/// protocol: the payload names the terminal).
pub fn send_fd(sock: BorrowedFd<'_>, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(name.as_bytes())],
        &mut anc,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one file descriptor (and its name) sent by [`send_fd`].
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<(String, OwnedFd)> {
    let mut buf = vec![0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let n = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fd = None;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fd = fds.next();
        }
    }
    let fd = fd.ok_or_else(|| io::Error::other("no file descriptor was sent"))?;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), fd))
}

/// Monotonic clock in nanoseconds (comparable across processes).
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = pair().unwrap();
        a.send(
            &Msg::Ready {
                phases: vec![("x".into(), 1)],
            },
            None,
        )
        .unwrap();
        let (m, fd) = b.recv().unwrap().unwrap();
        assert_eq!(
            m,
            Msg::Ready {
                phases: vec![("x".into(), 1)]
            }
        );
        assert!(fd.is_none());
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        a.send(&Msg::Pty, Some(f.as_fd())).unwrap();
        let (m, fd) = b.recv().unwrap().unwrap();
        assert_eq!(m, Msg::Pty);
        assert!(fd.is_some());
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }
}
