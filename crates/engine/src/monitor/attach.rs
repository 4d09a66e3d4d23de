//! The attach server on `attach.sock`: the request line (`Request`),
//! attach/wait/resize clients, the container's stdio and terminal, and the
//! loop that follows the process, relays its output to the log and the
//! clients, and their input to its stdin.

use super::*;

impl Monitor {
    pub(super) fn prepare_io(
        &self,
        console_path: &Path,
    ) -> Result<(Io, Option<std::os::unix::net::UnixListener>, [OwnedFd; 3])> {
        let null = || -> Result<OwnedFd> {
            Ok(fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| sys_err("open /dev/null", e))?
                .into())
        };
        if self.record.tty {
            let _ = fs::remove_file(console_path);
            let l = berth_runtime::container::unix::listen(console_path)
                .map_err(|e| sys_err("listen on the console socket", e))?;
            let io = Io {
                out: None,
                err: None,
                stdin: None,
                pty: None,
            };
            return Ok((
                io,
                Some(std::os::unix::net::UnixListener::from(l)),
                [null()?, null()?, null()?],
            ));
        }
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| sys_err("pipe", e))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_r, stdin_w) = if self.record.open_stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (null()?, None)
        };
        Ok((
            Io {
                out: Some(out_r),
                err: Some(err_r),
                stdin: stdin_w,
                pty: None,
            },
            None,
            [stdin_r, out_w, err_w],
        ))
    }

    /// Accepts pending clients and reads their request lines.
    pub(super) fn accept(&mut self, io: Option<&Io>) {
        while let Ok((s, _)) = self.listener.accept() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
            let mut c = Client {
                fd: s,
                kind: Kind::New,
                read_done: false,
            };
            // read the request line (small; sent at once by the engine)
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while line.len() < 4096 {
                match c.fd.read(&mut b) {
                    Ok(1) if b[0] == b'\n' => break,
                    Ok(1) => line.push(b[0]),
                    _ => {
                        line.clear();
                        break;
                    }
                }
            }
            match Request::parse(&line) {
                Some(Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                }) => {
                    let stdin = stdin && self.record.open_stdin;
                    c.kind = Kind::Attach {
                        stdin,
                        stdout,
                        stderr,
                    };
                    c.read_done = !stdin;
                    if c.fd.write_all(b"\n").is_ok() {
                        let _ = c.fd.set_read_timeout(None);
                        let _ = c.fd.set_nonblocking(false);
                        self.clients.push(c);
                    }
                }
                Some(Request::Wait) => {
                    c.kind = Kind::Wait;
                    c.read_done = false;
                    if c.fd.write_all(b"\n").is_ok() {
                        self.clients.push(c);
                    }
                }
                Some(Request::Resize(h, w)) => {
                    if let Some(m) = io.and_then(|io| io.pty.as_ref()) {
                        let _ = rustix::termios::tcsetwinsize(
                            m,
                            rustix::termios::Winsize {
                                ws_row: h,
                                ws_col: w,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            },
                        );
                    }
                    let _ = c.fd.write_all(b"\n");
                }
                // wake / unknown: answered and closed
                Some(Request::Wake) | None => {
                    let _ = c.fd.write_all(b"\n");
                }
            }
        }
    }
    /// Sends output to the log and the attached clients.
    pub(super) fn output(&mut self, stream: u8, data: &[u8]) {
        self.log.write(stream, data);
        let mut frame = Vec::with_capacity(8 + data.len());
        frame.push(stream);
        frame.extend_from_slice(&[0, 0, 0]);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        self.clients.retain_mut(|c| match c.kind {
            Kind::Attach { stdout, stderr, .. } => {
                let wants = (stream == 1 && stdout) || (stream == 2 && stderr);
                !wants || c.fd.write_all(&frame).is_ok()
            }
            _ => true,
        });
    }

    /// Follows the running container until its init exits; returns the code.
    pub(super) fn follow(&mut self, io: &mut Io, pidfd: &OwnedFd, pid: i32) -> Result<i32> {
        for fd in [&io.out, &io.err, &io.pty].into_iter().flatten() {
            nonblocking(fd.as_fd());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut exited: Option<i32> = None;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let sources_open = io.out.is_some() || io.err.is_some() || io.pty.is_some();
            if let Some(code) = exited
                && (!sources_open || drain_deadline.is_some_and(|d| Instant::now() >= d))
            {
                self.log.flush();
                return Ok(code);
            }
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            let mut tags: Vec<u8> = Vec::new(); // 0 pidfd 1 out 2 err 3 pty 4 listener 10+i client
            if exited.is_none() {
                fds.push(PollFd::new(pidfd, PollFlags::IN));
                tags.push(0);
            }
            if let Some(f) = &io.out {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(1);
            }
            if let Some(f) = &io.err {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(2);
            }
            if let Some(f) = &io.pty {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(3);
            }
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
            tags.push(4);
            let mut client_idx = Vec::new();
            for (i, c) in self.clients.iter().enumerate() {
                if !c.read_done {
                    fds.push(PollFd::new(&c.fd, PollFlags::IN));
                    tags.push(10);
                    client_idx.push(i);
                }
            }
            let wake = match (
                drain_deadline,
                self.next_health.filter(|_| exited.is_none()),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                }
            });
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
                Ok(_) => {}
            }
            let ready: Vec<(u8, PollFlags)> = tags
                .iter()
                .zip(fds.iter())
                .map(|(t, f)| (*t, f.revents()))
                .collect();
            drop(fds);
            if exited.is_none() && self.next_health.is_some_and(|t| Instant::now() >= t) {
                self.health_check();
            }
            let mut ci = 0;
            for (tag, rev) in ready {
                if tag == 10 {
                    let idx = client_idx[ci];
                    ci += 1;
                    if !rev.is_empty() {
                        self.client_input(idx, io, &mut buf);
                    }
                    continue;
                }
                if rev.is_empty() {
                    continue;
                }
                match tag {
                    0 => {
                        let st = rustix::process::waitpid(
                            rustix::process::Pid::from_raw(pid),
                            rustix::process::WaitOptions::NOHANG,
                        );
                        if let Ok(Some((_, st))) = st {
                            exited = Some(berth_runtime::container::exit_code(st));
                            drain_deadline = Some(Instant::now() + Duration::from_millis(500));
                        }
                    }
                    1..=3 => {
                        let slot = match tag {
                            1 => &mut io.out,
                            2 => &mut io.err,
                            _ => &mut io.pty,
                        };
                        let stream = if tag == 2 { 2 } else { 1 };
                        let n = match slot.as_ref().map(|f| rustix::io::read(f, &mut buf)) {
                            Some(Ok(n)) => n,
                            Some(Err(rustix::io::Errno::AGAIN)) => continue,
                            _ => 0,
                        };
                        if n == 0 {
                            *slot = None;
                            if tag == 3 {
                                io.stdin = None;
                            }
                        } else {
                            let data = buf[..n].to_vec();
                            self.output(stream, &data);
                        }
                    }
                    4 => self.accept(Some(io)),
                    _ => {}
                }
            }
            // clients whose reads ended and that are not attached for output go
            self.clients.retain(|c| !matches!(c.kind, Kind::New));
        }
    }

    pub(super) fn client_input(&mut self, idx: usize, io: &mut Io, buf: &mut [u8]) {
        let c = &mut self.clients[idx];
        let n = match c.fd.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => 0,
        };
        match c.kind {
            Kind::Attach { stdin: true, .. } if n > 0 => {
                if let Some(w) = &io.stdin
                    && rustix::io::write(w, &buf[..n]).is_err()
                {
                    io.stdin = None;
                }
            }
            Kind::Attach { stdin: true, .. } => {
                c.read_done = true;
                // docker: with StdinOnce the container's stdin closes when
                // the attached client's input ends
                if self.record.stdin_once && io.pty.is_none() {
                    io.stdin = None;
                }
            }
            Kind::Wait if n == 0 => {
                // the waiter went away
                c.read_done = true;
                let _ = c.fd.shutdown(std::net::Shutdown::Both);
                self.clients.remove(idx);
            }
            _ => {
                if n == 0 {
                    c.read_done = true;
                }
            }
        }
    }

    /// Ends clients at an exit: attach streams close; waiters get the code
    /// (`final_` also ends waiters when there is no code to give).
    pub(super) fn finish_clients(&mut self, code: Option<i32>, final_: bool) {
        let mut keep = Vec::new();
        for mut c in self.clients.drain(..) {
            match c.kind {
                Kind::Wait => match code {
                    Some(code) => {
                        let _ = c.fd.write_all(format!("{code}\n").as_bytes());
                    }
                    None if final_ => {}
                    None => keep.push(c),
                },
                _ => {
                    let _ = c.fd.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        self.clients = keep;
    }
}

/// Receives the terminal the runtime sends to the console socket `l` and
/// makes it the process's stdio (`io.pty`, `io.stdin`).
pub(super) fn take_terminal(
    l: &std::os::unix::net::UnixListener,
    path: &Path,
    io: &mut Io,
) -> Result<()> {
    let conn = rustix::net::accept(l).map_err(|e| sys_err("accept the console", e))?;
    let (_, master) = berth_runtime::sync::recv_fd(conn.as_fd())
        .map_err(|e| sys_err("receive the terminal", e))?;
    let _ = fs::remove_file(path);
    io.stdin = Some(rustix::io::fcntl_dupfd_cloexec(&master, 3).map_err(|e| sys_err("dup", e))?);
    io.pty = Some(master);
    Ok(())
}

/// A request on a monitor's socket: one JSON line (berth-shim reads the
/// same lines), answered with a newline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Attach to the process's streams: output comes as multiplexed frames
    /// (1 stdout, 2 stderr), the client's bytes go to stdin.
    Attach {
        /// Send the client's bytes to stdin.
        stdin: bool,
        /// Receive stdout.
        stdout: bool,
        /// Receive stderr.
        stderr: bool,
    },
    /// Receive the exit code (and a newline) when the process exits.
    Wait,
    /// Set the terminal's rows and columns.
    Resize(u16, u16),
    /// Wake a monitor waiting out a restart delay (to see a stop).
    Wake,
}

impl Request {
    /// The request line.
    pub fn line(&self) -> String {
        match *self {
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => format!(
                "{{\"attach\":{{\"stdin\":{stdin},\"stdout\":{stdout},\"stderr\":{stderr}}}}}"
            ),
            Request::Wait => r#"{"wait":true}"#.to_owned(),
            Request::Resize(h, w) => format!("{{\"resize\":[{h},{w}]}}"),
            Request::Wake => r#"{"wake":true}"#.to_owned(),
        }
    }

    /// Reads a request line (`None`: not one berth sends).
    pub fn parse(line: &[u8]) -> Option<Request> {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        if let Some(a) = v.get("attach") {
            let flag = |k: &str| a.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
            return Some(Request::Attach {
                stdin: flag("stdin"),
                stdout: flag("stdout"),
                stderr: flag("stderr"),
            });
        }
        if v.get("wait").is_some() {
            return Some(Request::Wait);
        }
        if let Some(hw) = v.get("resize").and_then(|v| v.as_array()) {
            let n = |i: usize| {
                hw.get(i)
                    .and_then(|v| v.as_u64())
                    .and_then(|x| u16::try_from(x).ok())
            };
            return Some(Request::Resize(n(0)?, n(1)?));
        }
        v.get("wake").map(|_| Request::Wake)
    }
}

/// Connects to a container's monitor with a request; `None` if no monitor
/// listens.
pub fn connect(dir: &Path, request: &Request) -> Option<std::os::unix::net::UnixStream> {
    connect_socket(&dir.join(ATTACH_SOCKET), request)
}

/// Connects to a monitor's socket at `path` with a request.
pub fn connect_socket(path: &Path, request: &Request) -> Option<std::os::unix::net::UnixStream> {
    let fd = berth_runtime::container::unix::connect(path).ok()?;
    let mut s = std::os::unix::net::UnixStream::from(fd);
    let mut line = request.line();
    line.push('\n');
    s.write_all(line.as_bytes()).ok()?;
    let mut ack = [0u8; 1];
    match s.read(&mut ack) {
        Ok(1) if ack[0] == b'\n' => Some(s),
        _ => None,
    }
}
