//! A monitor started for one exec: its process in the running container,
//! its stdio and its recorded exit.

use super::*;

impl Monitor {
    /// Runs `f` (which makes the process) with fds 0-2 set to the process's
    /// stdio, then puts /dev/null and the monitor's log back.
    pub(super) fn with_child_stdio<T>(
        &self,
        stdio: [OwnedFd; 3],
        f: impl FnOnce() -> T,
    ) -> Result<T> {
        rustix::stdio::dup2_stdin(&stdio[0]).map_err(|e| sys_err("dup2", e))?;
        rustix::stdio::dup2_stdout(&stdio[1]).map_err(|e| sys_err("dup2", e))?;
        rustix::stdio::dup2_stderr(&stdio[2]).map_err(|e| sys_err("dup2", e))?;
        let r = f();
        let null = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| sys_err("open /dev/null", e))?;
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&self.own_err);
        drop(stdio);
        Ok(r)
    }

    /// Runs the exec this monitor was started for, once.
    pub(super) fn run_exec(&mut self) -> Result<()> {
        let eid = self.exec.clone().unwrap_or_default();
        if let Err(e) = self.exec_once(&eid) {
            let msg = crate::exec::failure_message(&e.to_string());
            let code = crate::exec::START_FAILURE_CODE;
            let _ = crate::exec::update(&self.dir, &eid, |x| {
                x.running = false;
                x.exit_code = Some(code);
                x.pid = 0;
                x.error = msg.clone();
            });
            write_line(&mut self.ctl_out, &format!("error: {msg}"));
            self.ctl_out = None;
            self.finish_clients(Some(code), true);
        }
        let _ = fs::remove_file(crate::exec::socket_path(&self.dir, &eid));
        let _ = fs::remove_file(crate::exec::pid_file(&self.dir, &eid));
        Ok(())
    }

    pub(super) fn exec_once(&mut self, eid: &str) -> Result<()> {
        let rt = self.runtime()?;
        let console_path = crate::exec::console_path(&self.dir, eid);
        let (mut io, console, child_stdio) = self.prepare_io(&console_path)?;
        write_line(&mut self.ctl_out, "created");
        if !self.await_go()? {
            return Ok(());
        }
        let st = self.store.state_raw(&self.id)?;
        if st.status != Status::Running || st.pid <= 0 {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                self.id
            )));
        }
        let rec = crate::exec::load(&self.dir, eid)?;
        let process = crate::exec::write_process(&self.dir, &rec, st.pid)?;
        let pid_file = crate::exec::pid_file(&self.dir, eid);
        let opts = berth_runtime::ExecOptions {
            process: Some(process),
            detach: true,
            pid_file: Some(pid_file.clone()),
            console_socket: console.as_ref().map(|_| console_path.clone()),
            ..Default::default()
        };
        self.with_child_stdio(child_stdio, || rt.exec(&self.id, &opts))??;
        if let Some(l) = console {
            take_terminal(&l, &console_path, &mut io)?;
        }
        let pid: i32 = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Invalid("the exec's pid file is missing".into()))?;
        let rec = crate::exec::update(&self.dir, eid, |x| {
            x.running = true;
            x.pid = pid;
        })?;
        // a resize that arrived before the terminal existed
        if let (Some(m), Some((h, w))) = (&io.pty, rec.console_size) {
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
        write_line(&mut self.ctl_out, "ok");
        self.ctl_out = None;
        self.event(
            &format!("exec_start: {}", rec.cmd.join(" ")),
            &[("execID", eid.to_owned())],
        );
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Invalid("no pid".into()))?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| sys_err("pidfd_open", e))?;
        let code = self.follow(&mut io, &pidfd, pid)?;
        self.event(
            "exec_die",
            &[("execID", eid.to_owned()), ("exitCode", code.to_string())],
        );
        // the code is on record before the streams close
        crate::exec::update(&self.dir, eid, |x| {
            x.running = false;
            x.exit_code = Some(code);
            x.pid = 0;
        })?;
        self.finish_clients(Some(code), true);
        Ok(())
    }
}
