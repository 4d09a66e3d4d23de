//! Docker seccomp profiles (`--security-opt seccomp=profile.json`) as the
//! runtime spec's `linux.seccomp`.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

/// A docker seccomp profile: `archMap` becomes the architecture list, and
/// rules whose `includes`/`excludes` (capabilities, architectures) do not
/// fit this container are left out, as docker does.
pub fn docker_profile(profile: &str, caps: &[String]) -> Result<LinuxSeccomp, String> {
    let p: Value = serde_json::from_str(profile)
        .map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let default = p["defaultAction"]
        .as_str()
        .ok_or("the seccomp profile has no defaultAction")?;
    let mut arches: Vec<Value> = p["architectures"].as_array().cloned().unwrap_or_default();
    for m in p["archMap"].as_array().into_iter().flatten() {
        if let Some(a) = m["architecture"].as_str() {
            arches.push(a.into());
        }
        arches.extend(
            m["subArchitectures"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let has_cap = |c: &Value| {
        c.as_str()
            .is_some_and(|c| caps.iter().any(|x| x.eq_ignore_ascii_case(c)))
    };
    let fits = |cond: &Value, want: bool| -> bool {
        let caps_ok = cond["caps"].as_array().is_none_or(|l| {
            if want {
                l.iter().all(has_cap)
            } else {
                !l.iter().any(has_cap)
            }
        });
        let arch_ok = cond["arches"].as_array().is_none_or(|l| {
            let on = l.iter().any(|a| a.as_str() == Some(arch));
            on == want
        });
        caps_ok && arch_ok
    };
    let mut syscalls = Vec::new();
    for r in p["syscalls"].as_array().into_iter().flatten() {
        if !fits(&r["includes"], true) || !fits(&r["excludes"], false) {
            continue;
        }
        let names = match (&r["names"], &r["name"]) {
            (Value::Array(n), _) => Value::Array(n.clone()),
            (_, Value::String(n)) => serde_json::json!([n]),
            _ => return Err("a seccomp rule has no names".into()),
        };
        let mut rule = serde_json::json!({"names": names, "action": r["action"]});
        if let Some(a) = r["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = Value::Array(a.clone());
        }
        if !r["errnoRet"].is_null() {
            rule["errnoRet"] = r["errnoRet"].clone();
        }
        syscalls.push(rule);
    }
    let mut out = serde_json::json!({"defaultAction": default, "architectures": arches,
        "syscalls": syscalls});
    if !p["defaultErrnoRet"].is_null() {
        out["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    serde_json::from_value(out).map_err(|e| format!("invalid seccomp profile: {e}"))
}
