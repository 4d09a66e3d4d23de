//! A container's streams as one typed API: attach (stdin in; stdout and
//! stderr out, apart), logs (a cursor that reads from the end and follows
//! the file), the exit (a socket that becomes readable when the process
//! exits), and waits. Everything here is either quick or non-blocking with
//! a file descriptor to wait on, so an async server follows any number of
//! clients without a thread each, and a client that goes away frees its
//! descriptors at once. The blocking forms ([`Engine::logs`],
//! [`Engine::wait`]) are for the CLI.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::container::Status;
use crate::logs::{Entry, LogCursor, LogOptions};
use crate::monitor::{self, Request};
use crate::query::Container;
use crate::run::{Engine, Error, Result};

/// Which stream output came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The number docker's multiplexed frames use (1 or 2).
    pub fn number(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// Reads the monitor's frames (`[stream][0 0 0][len BE u32]` + payload)
/// into (stream, bytes) pieces, across reads.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Feeds bytes; returns the whole frames they complete.
    pub fn feed(&mut self, data: &[u8]) -> Vec<(Stream, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= 8 {
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let stream = if self.buf[0] == 2 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            out.push((stream, self.buf[8..8 + len].to_vec()));
            self.buf.drain(..8 + len);
        }
        out
    }
}

/// A client attached to a running process's stdio through its monitor.
#[derive(Debug)]
pub struct AttachStream {
    /// The connection: frames out, stdin bytes in.
    pub socket: UnixStream,
    /// The process has a terminal (its output is all "stdout").
    pub tty: bool,
}

impl AttachStream {
    /// Writes stdin bytes.
    pub fn write_stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.socket.write_all(data)
    }

    /// Ends stdin (the process sees EOF; output keeps coming).
    pub fn close_stdin(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }

    /// Reads the next output (blocking); `None` when the process has ended.
    pub fn read_output(&mut self, frames: &mut FrameReader) -> Option<Vec<(Stream, Vec<u8>)>> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self.socket.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            let got = frames.feed(&buf[..n]);
            if !got.is_empty() {
                return Some(got);
            }
        }
    }
}

/// What a wait found.
#[derive(Debug)]
pub enum WaitStep {
    /// The condition holds: the exit code.
    Done(i32),
    /// The monitor will send the exit code on this socket (a line).
    Exit(UnixStream),
    /// Nothing to wait on yet (a created container not started): look
    /// again when the container's directory changes.
    Pending,
}

/// `wait` conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if it is not running.
    NotRunning,
    /// The next exit (even if it is not running now).
    NextExit,
    /// After it is removed.
    Removed,
}

impl Engine {
    /// A container's directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.store.dir(id)
    }

    /// Reads a container's log (blocking; follows with `opts.follow`
    /// until the container stops); `emit` returning false stops.
    pub fn logs(
        &self,
        key: &str,
        opts: &LogOptions,
        emit: impl FnMut(&Entry) -> bool,
    ) -> Result<()> {
        let id = self.store.resolve(key)?;
        let dir = self.store.dir(&id);
        crate::logs::read(
            &dir,
            opts,
            || {
                self.store
                    .state_raw(&id)
                    .map(|s| s.is_active())
                    .unwrap_or(false)
            },
            emit,
        )
    }

    /// The container, its log so far (per `opts`, the tail read from the
    /// end of the file) and a cursor for what comes next.
    pub fn log_cursor(
        &self,
        key: &str,
        opts: &LogOptions,
    ) -> Result<(Container, Vec<Entry>, LogCursor)> {
        let c = self.container(key)?;
        let (entries, cursor) = LogCursor::open(&c.dir, opts)?;
        Ok((c, entries, cursor))
    }

    /// Attaches to a container's stdio through its monitor (`None` if it
    /// has no monitor, i.e. it is not running or starting).
    pub fn attach(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Option<AttachStream> {
        let record = self.store.record(id).ok();
        let tty = record.as_ref().is_some_and(|r| r.tty);
        let socket = monitor::connect(
            &self.store.dir(id),
            &Request::Attach {
                stdin,
                stdout,
                stderr,
            },
        )?;
        if let Some(r) = &record {
            self.event(r, "attach", &[]);
        }
        Some(AttachStream { socket, tty })
    }

    /// A socket that becomes readable (the exit code, a line) when the
    /// container's process exits; `None` when nothing runs.
    pub fn exit_watch(&self, id: &str) -> Option<UnixStream> {
        monitor::connect(&self.store.dir(id), &Request::Wait)
    }

    /// One step of a wait: done, a socket to wait on, or look again later.
    /// `initial` is the container as it was when the wait began.
    pub fn wait_step(&self, initial: &Container, cond: WaitCondition) -> Result<WaitStep> {
        let id = &initial.record.id;
        let dir = self.store.dir(id);
        if cond == WaitCondition::NotRunning && !initial.state.is_active() {
            return Ok(WaitStep::Done(initial.state.exit_code));
        }
        if cond == WaitCondition::Removed && !dir.exists() {
            return Ok(WaitStep::Done(initial.state.exit_code));
        }
        if let Some(s) = self.exit_watch(id) {
            return Ok(WaitStep::Exit(s));
        }
        if !dir.exists() {
            return Ok(WaitStep::Done(initial.state.exit_code));
        }
        let st = self.store.state_raw(id)?;
        let ended = st.status == Status::Exited && st.finished_at > initial.state.finished_at;
        if ended && cond != WaitCondition::Removed {
            return Ok(WaitStep::Done(st.exit_code));
        }
        if cond == WaitCondition::Removed
            && !initial.record.auto_remove
            && !st.is_active()
            && (ended || !initial.state.is_active())
        {
            // wait for someone to remove it
            return Ok(WaitStep::Pending);
        }
        Ok(WaitStep::Pending)
    }

    /// Waits for a container per `cond`; returns its exit code (blocking,
    /// woken by the container's directory changing). `cancelled` is
    /// checked so that a caller whose client left can stop.
    pub fn wait(
        &self,
        key: &str,
        cond: WaitCondition,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<i32> {
        let initial = self.container(key)?;
        let dir = self.store.dir(&initial.record.id);
        // made at the first step that has to wait: closing an inotify
        // descriptor waits for a grace period in the kernel (10-20 ms)
        let mut watches = None;
        let mut code = None;
        loop {
            if cancelled() {
                return Err(Error::Conflict("wait cancelled".into()));
            }
            match self.wait_step(&initial, cond)? {
                WaitStep::Done(c) => return Ok(code.unwrap_or(c)),
                WaitStep::Exit(mut s) => {
                    let mut line = String::new();
                    let _ = s.read_to_string(&mut line);
                    let c = line.trim().parse::<i32>().ok();
                    if cond != WaitCondition::Removed {
                        return Ok(c.unwrap_or(initial.state.exit_code));
                    }
                    code = code.or(c);
                    if !dir.exists() {
                        return Ok(code.unwrap_or(initial.state.exit_code));
                    }
                }
                WaitStep::Pending => {}
            }
            if cond == WaitCondition::Removed && !dir.exists() {
                return Ok(code.unwrap_or(initial.state.exit_code));
            }
            let Some((watch, parent)) = &watches else {
                watches = Some((
                    crate::watch::FileWatch::new(&dir).ok(),
                    crate::watch::FileWatch::new(dir.parent().unwrap_or(&dir)).ok(),
                ));
                // look again: a change before the watches began is not missed
                continue;
            };
            let d = std::time::Duration::from_millis(200);
            match (watch, parent) {
                (Some(w), _) if dir.exists() => w.wait(d),
                (_, Some(p)) => p.wait(d),
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
}

impl WaitCondition {
    /// Docker's names (`not-running` is the default; dockerd ignores
    /// names it does not know).
    pub fn parse(s: &str) -> WaitCondition {
        match s {
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            _ => WaitCondition::NotRunning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_across_reads() {
        let mut r = FrameReader::default();
        let mut f = vec![1, 0, 0, 0, 0, 0, 0, 3];
        f.extend_from_slice(b"hi\n");
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 1, b'e']);
        assert!(r.feed(&f[..5]).is_empty());
        let got = r.feed(&f[5..]);
        assert_eq!(
            got,
            [
                (Stream::Stdout, b"hi\n".to_vec()),
                (Stream::Stderr, b"e".to_vec())
            ]
        );
        assert_eq!(WaitCondition::parse("bogus"), WaitCondition::NotRunning);
    }
}
