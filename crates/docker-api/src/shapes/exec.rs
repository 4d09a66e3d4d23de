//! `GET /exec/{id}/json`.

use serde_json::{Value, json};

/// `GET /exec/{id}/json`.
pub fn exec_inspect(r: &berth_engine::exec::ExecRecord) -> Value {
    let mut v = json!({
        "ID": r.id,
        "Running": r.running,
        "ExitCode": r.exit_code,
        "ProcessConfig": {
            "tty": r.tty,
            "entrypoint": r.cmd.first().cloned().unwrap_or_default(),
            "arguments": r.cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": r.privileged,
        },
        "OpenStdin": r.attach_stdin,
        "OpenStderr": r.attach_stderr,
        "OpenStdout": r.attach_stdout,
        "CanRemove": false,
        "ContainerID": r.container_id,
        "DetachKeys": "",
        "Pid": r.pid,
    });
    // dockerd leaves an empty user out
    if !r.user.is_empty() {
        v["ProcessConfig"]["user"] = json!(r.user);
    }
    v
}
