//! `GET /exec/{id}/json`.

use serde_json::{Value, json};

/// `GET /exec/{id}/json`.
pub fn exec_inspect(r: &berth_engine::exec::ExecRecord) -> Value {
    json!({
        "ID": r.id,
        "Running": r.running,
        "ExitCode": r.exit_code,
        "ProcessConfig": {
            "tty": r.tty,
            "entrypoint": r.cmd.first().cloned().unwrap_or_default(),
            "arguments": r.cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": false,
            "user": r.user,
        },
        "OpenStdin": r.attach_stdin,
        "OpenStderr": r.attach_stderr,
        "OpenStdout": r.attach_stdout,
        "CanRemove": false,
        "ContainerID": r.container_id,
        "DetachKeys": "",
        "Pid": r.pid,
    })
}
