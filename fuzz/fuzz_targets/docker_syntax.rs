//! Docker's string syntaxes (`-v`, `--mount`, `--tmpfs`, `-p`, `--expose`,
//! `--device`, `--device-cgroup-rule`, `--add-host`, `--security-opt`,
//! modes, restart policies, durations, timestamps, sizes, ulimits, links,
//! detach keys, signals): every parser returns a value or an error for any
//! text, never a panic.
#![no_main]

use berth_docker_api::{detach, model, syntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = syntax::parse_volume(s);
    let _ = syntax::parse_mount(s);
    let (p, o) = s.split_once(':').unwrap_or((s, ""));
    let _ = syntax::parse_tmpfs(p, o);
    let _ = syntax::parse_volumes_from(s);
    let _ = syntax::parse_publish(s);
    let _ = syntax::parse_expose(s);
    let _ = syntax::parse_port_key(s);
    let _ = syntax::parse_device(s);
    let _ = syntax::parse_device_cgroup_rule(s);
    let _ = syntax::parse_add_host(s);
    let _ = syntax::parse_security_opt(s, |_| Ok("{}".into()));
    let _ = syntax::parse_network_mode(s);
    let _ = syntax::parse_pid_mode(s);
    let _ = syntax::parse_ipc_mode(s);
    let _ = syntax::parse_uts_mode(s);
    let _ = syntax::parse_cgroupns_mode(s);
    let _ = syntax::parse_restart(s, Some(3));
    let _ = syntax::parse_duration(s);
    let _ = syntax::parse_timestamp(s, 1_700_000_000_000_000_000);
    let _ = syntax::parse_size(s);
    let _ = syntax::parse_ulimit(s);
    let _ = syntax::key_value(s, "fuzz");
    let _ = model::container::parse_link(s);
    let _ = detach::parse_detach_keys(s);
    let _ = s.parse::<berth_types::Signal>();
});
