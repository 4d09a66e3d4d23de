//! Reading `container.json` and `state.json` of every schema berth has
//! written. Schema 1 (berth before ADR 0017) kept docker's PascalCase names
//! and docker's strings (`"NetworkMode":"mynet"`, `"ExtraHosts":["db:…"]`,
//! `"DeviceCgroupRules":["c 1:3 rwm"]`); schema 2 is the engine's typed
//! record. A record is upgraded as it is read; it is written back in the
//! current schema at its next change. Newer schemas are refused.

use serde_json::{Map, Value, json};

use super::record::{RECORD_SCHEMA, Record};
use super::state::{STATE_SCHEMA, State};

/// A `container.json` of any known schema, as the current [`Record`].
pub fn record(bytes: &[u8]) -> Result<Record, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let schema = v
        .get("schema")
        .or_else(|| v.get("Schema"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let v = match schema {
        0 | 1 => record_v1_to_v2(&v)?,
        s if s == u64::from(RECORD_SCHEMA) => v,
        s => {
            return Err(format!(
                "schema {s} is newer than this berth ({RECORD_SCHEMA})"
            ));
        }
    };
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A `state.json` of any known schema (schema 1 differs only in its
/// names, which the current type accepts as aliases).
pub fn state(bytes: &[u8]) -> Result<State, String> {
    let mut s: State = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if s.schema > STATE_SCHEMA {
        return Err(format!(
            "schema {} is newer than this berth ({STATE_SCHEMA})",
            s.schema
        ));
    }
    s.schema = STATE_SCHEMA;
    Ok(s)
}

/// `10m`, `1g`, `100` as docker's json-file options wrote sizes.
fn size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k') => (s.get(..i)?, 1u64 << 10),
        (i, 'm') => (s.get(..i)?, 1 << 20),
        (i, 'g') => (s.get(..i)?, 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0 && n.is_finite()).then_some((n * mult as f64) as u64)
}

/// `""`/`private`, `host`, `container:ID`… as a tagged mode.
fn mode(s: &str, default: &str) -> Value {
    match s.split_once(':') {
        Some((m, of)) => json!({"mode": m, "of": of}),
        None if s.is_empty() => json!({"mode": default}),
        None => json!({"mode": s}),
    }
}

fn record_v1_to_v2(v: &Value) -> Result<Value, String> {
    let o = v.as_object().ok_or("not a JSON object")?;
    let g = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let b = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let strings = |k: &str| -> Vec<String> {
        o.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ho = o.get("HostOptions").cloned().unwrap_or(json!({}));
    let hs = |k: &str| ho.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let network_mode = s("NetworkMode");
    let network = match network_mode.as_str() {
        "host" => json!({"mode": "host"}),
        "none" => json!({"mode": "none"}),
        m if m.starts_with("container:") => mode(m, ""),
        "" => json!({"mode": "bridge", "of": "default"}),
        m => json!({"mode": "bridge", "of": m}),
    };
    let ip = |x: &Value, k: &str| -> Value {
        match x.get(k).and_then(Value::as_str) {
            Some(a) if !a.is_empty() => json!(a),
            _ => Value::Null,
        }
    };
    let mut networks = Vec::new();
    if network["mode"] == "bridge" && !b("PrimaryDetached") {
        let name = match network_mode.as_str() {
            "" | "default" => "bridge".to_owned(),
            m => m.to_owned(),
        };
        networks.push(json!({"network": name, "aliases": g("Aliases"),
            "ipv4_address": ip(v, "Ipv4Address")}));
    }
    for x in o
        .get("ExtraNetworks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        networks.push(json!({"network": x.get("Id").cloned().unwrap_or(json!("")),
            "aliases": x.get("Aliases").cloned().unwrap_or(json!([])),
            "ipv4_address": ip(x, "Ipv4Address")}));
    }
    let ports: Vec<Value> = o
        .get("PortBindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            json!({"container_port": p.get("ContainerPort").cloned().unwrap_or(json!(0)),
                "proto": match p.get("Proto").and_then(Value::as_str) {
                    Some("udp") => "udp", _ => "tcp" },
                "host_ip": ip(p, "HostIp"),
                "host_port": p.get("HostPort").cloned().unwrap_or(json!(0))})
        })
        .collect();
    let extra_hosts: Vec<String> = strings("ExtraHosts")
        .into_iter()
        .filter_map(|h| {
            let (n, a) = h.split_once(':').or_else(|| h.split_once('='))?;
            Some(format!("{n}:{a}"))
        })
        .collect();
    let mounts: Vec<Value> = o
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let ms = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let kind = ms("Type");
            let prop = ms("Propagation");
            json!({
                "kind": kind,
                "name": ms("Name"),
                "source": ms("Source"),
                "destination": ms("Destination"),
                "mode": ms("Mode"),
                "read_only": !m.get("RW").and_then(Value::as_bool).unwrap_or(true),
                "propagation": if prop.is_empty() { Value::Null } else { json!(prop) },
                "copy_up": m.get("CopyUp").cloned().unwrap_or(json!(false)),
                "anonymous": m.get("Anonymous").cloned().unwrap_or(json!(false)),
                "tmpfs_options": m.get("TmpfsOptions").cloned().unwrap_or(json!([])),
                "volume_options": m.get("VolumeOptions").cloned().unwrap_or(json!({})),
                "origin": if kind == "tmpfs" { "tmpfs" } else { "volume" },
            })
        })
        .collect();
    let rp = o.get("RestartPolicy").cloned().unwrap_or(json!({}));
    let restart = match rp.get("Name").and_then(Value::as_str).unwrap_or("") {
        "always" => json!({"name": "always"}),
        "unless-stopped" => json!({"name": "unless-stopped"}),
        "on-failure" => json!({"name": "on-failure",
            "max_retries": rp.get("MaximumRetryCount").and_then(Value::as_u64).unwrap_or(0)}),
        _ => json!({"name": "no"}),
    };
    let lc = o.get("LogConfig").cloned().unwrap_or(json!({}));
    let opts: Map<String, Value> = lc
        .get("Config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let opt = |k: &str| opts.get(k).and_then(Value::as_str).map(str::to_owned);
    let log = json!({
        "driver": match lc.get("Type").and_then(Value::as_str) {
            Some("none") => "none", Some("local") => "local", _ => "json-file" },
        "max_size": opt("max-size").as_deref().and_then(size),
        "max_file": opt("max-file").and_then(|f| f.parse::<u32>().ok()),
        "options": opts,
    });
    let r = o.get("Resources").cloned().unwrap_or(json!({}));
    let rr = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    let resources = json!({
        "memory": rr("Memory"), "memory_swap": rr("MemorySwap"),
        "memory_reservation": rr("MemoryReservation"), "nano_cpus": rr("NanoCpus"),
        "cpu_shares": rr("CpuShares"), "cpu_period": rr("CpuPeriod"), "cpu_quota": rr("CpuQuota"),
        "cpuset_cpus": rr("CpusetCpus"), "cpuset_mems": rr("CpusetMems"),
        "pids_limit": rr("PidsLimit"), "memory_swappiness": rr("MemorySwappiness"),
        "oom_kill_disable": rr("OomKillDisable"), "blkio_weight": rr("BlkioWeight"),
    });
    let resources = Value::Object(
        resources
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let device_rules: Vec<Value> = ho
        .get("DeviceCgroupRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|rule| {
            let f: Vec<&str> = rule.split_whitespace().collect();
            let [kind, nums, access] = f.as_slice() else {
                return None;
            };
            let (ma, mi) = nums.split_once(':')?;
            let n = |x: &str| x.parse::<i64>().ok();
            Some(json!({"kind": kind, "major": n(ma), "minor": n(mi), "access": access}))
        })
        .collect();
    let shm = ho.get("ShmSize").and_then(Value::as_u64).filter(|s| *s > 0);
    let console = match o.get("ConsoleSize").and_then(Value::as_array) {
        Some(a) if a.len() == 2 => json!({"height": a[0], "width": a[1]}),
        _ => Value::Null,
    };
    let stop_signal = match s("StopSignal") {
        x if x.is_empty() => "SIGTERM".to_owned(),
        x => x
            .parse::<berth_types::Signal>()
            .map(|s| s.name())
            .unwrap_or_else(|_| "SIGTERM".into()),
    };
    let exposed: Vec<String> = strings("ExposedPorts")
        .into_iter()
        .filter(|p| p.parse::<crate::config::PortProto>().is_ok())
        .collect();
    let dns: Vec<String> = strings("Dns")
        .into_iter()
        .filter(|d| d.parse::<std::net::IpAddr>().is_ok())
        .collect();
    let volumes_from: Vec<Value> = strings("VolumesFrom")
        .into_iter()
        .map(|v| match v.split_once(':') {
            Some((c, m)) => json!({"container": c,
                "read_only": if m.split(',').any(|x| x == "ro") { json!(true) }
                    else if m.split(',').any(|x| x == "rw") { json!(false) } else { Value::Null }}),
            None => json!({"container": v, "read_only": null}),
        })
        .collect();
    Ok(json!({
        "schema": RECORD_SCHEMA,
        "id": g("Id"), "name": g("Name"), "created": g("Created"), "image": g("Image"),
        "image_id": g("ImageId"), "path": g("Path"), "args": g("Args"), "cmd": g("Cmd"),
        "entrypoint": g("Entrypoint"), "env": g("Env"), "working_dir": g("WorkingDir"),
        "user": g("User"), "hostname": g("Hostname"), "domainname": g("Domainname"),
        "labels": g("Labels"), "tty": b("Tty"), "open_stdin": b("OpenStdin"),
        "stdin_once": b("StdinOnce"),
        "attach": {"stdin": b("AttachStdin"), "stdout": b("AttachStdout"), "stderr": b("AttachStderr")},
        "exposed_ports": exposed,
        "stop_signal": stop_signal,
        "stop_timeout": g("StopTimeout"),
        "auto_remove": b("AutoRemove"),
        "restart_policy": restart,
        "network": network,
        "networks": networks,
        "ports": ports,
        "publish_all": b("PublishAll"),
        "dns": {"servers": dns, "search": g("DnsSearch"), "options": g("DnsOptions")},
        "extra_hosts": extra_hosts,
        "security": {
            "privileged": b("Privileged"), "read_only_rootfs": b("ReadOnly"),
            "no_new_privileges": b("NoNewPrivileges"), "cap_add": g("CapAdd"),
            "cap_drop": g("CapDrop"),
            "masked_paths": ho.get("MaskedPaths").cloned().unwrap_or(Value::Null),
            "readonly_paths": ho.get("ReadonlyPaths").cloned().unwrap_or(Value::Null),
        },
        "resources": resources,
        "log": log,
        "console_size": console,
        "mounts": mounts,
        "healthcheck": g("Healthcheck"),
        "init": b("Init"),
        "namespaces": {
            "pid": mode(&hs("PidMode"), "private"),
            "ipc": mode(&hs("IpcMode"), "private"),
            "uts": mode(&hs("UtsMode"), "private"),
            "cgroupns": if hs("CgroupnsMode") == "host" { "host" } else { "private" },
        },
        "shm_size": shm,
        "group_add": ho.get("GroupAdd").cloned().unwrap_or(json!([])),
        "oom_score_adj": ho.get("OomScoreAdj").cloned().unwrap_or(json!(0)),
        "device_cgroup_rules": device_rules,
        "volumes_from": volumes_from,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostAddr, IpcMode, MountKind, NetworkMode, RestartPolicy};

    /// A schema 1 record as berth wrote it before ADR 0017.
    const V1: &str = r#"{"Schema":1,"Id":"aaaa","Name":"web","Created":"2026-11-25T10:00:00.000000000Z",
        "Image":"bb:1","ImageId":"sha256:00","Path":"sh","Args":["-c","x"],"Hostname":"h","Domainname":"",
        "User":"","Env":["PATH=/bin"],"Cmd":["sh","-c","x"],"Entrypoint":[],"WorkingDir":"/",
        "Labels":{"a":"b"},"Tty":false,"OpenStdin":true,"StdinOnce":false,"AttachStdin":false,
        "AttachStdout":true,"AttachStderr":true,"ExposedPorts":["80/tcp"],"StopSignal":"SIGUSR1",
        "StopTimeout":3,"AutoRemove":false,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},
        "NetworkMode":"app","ReadOnly":true,"NoNewPrivileges":false,"CapAdd":["NET_ADMIN"],"CapDrop":[],
        "Resources":{"Memory":67108864,"MemorySwap":0,"MemoryReservation":0,"NanoCpus":0,"CpuShares":0,
          "CpuPeriod":0,"CpuQuota":0,"CpusetCpus":"","CpusetMems":"","PidsLimit":50,
          "MemorySwappiness":null,"OomKillDisable":false,"BlkioWeight":0},
        "LogConfig":{"Type":"json-file","Config":{"max-size":"1k","max-file":"3"}},"ConsoleSize":null,
        "Mounts":[{"Type":"volume","Name":"data","Source":"/r/volumes/data/_data","Destination":"/data",
          "Mode":"z","RW":true,"Propagation":"","CopyUp":true,"Anonymous":false,"TmpfsOptions":[]},
          {"Type":"tmpfs","Name":"","Source":"","Destination":"/t","Mode":"","RW":false,"Propagation":"",
          "CopyUp":false,"Anonymous":false,"TmpfsOptions":["size=1024"]}],
        "PortBindings":[{"ContainerPort":80,"Proto":"tcp","HostIp":"127.0.0.1","HostPort":8080}],
        "PublishAll":false,"Aliases":["web1"],"Ipv4Address":"198.19.64.9","Healthcheck":null,
        "ExtraHosts":["db:198.18.7.7","gw=host-gateway"],"Dns":["198.18.0.53"],"DnsSearch":["x.test"],
        "DnsOptions":[],"ExtraNetworks":[{"Id":"n2","Aliases":["w"],"Ipv4Address":""}],
        "PrimaryDetached":false,"Privileged":false,"Init":true,
        "HostOptions":{"PidMode":"","IpcMode":"container:cccc","UtsMode":"host","CgroupnsMode":"",
          "ShmSize":1048576,"GroupAdd":["audio"],"OomScoreAdj":100,"DeviceCgroupRules":["c 1:* rw"],
          "MaskedPaths":null,"ReadonlyPaths":null},"VolumesFrom":["other:ro"]}"#;

    #[test]
    fn schema_1_records_become_typed() {
        let r = record(V1.as_bytes()).unwrap();
        assert_eq!(r.schema, RECORD_SCHEMA);
        assert_eq!((r.id.as_str(), r.name.as_str()), ("aaaa", "web"));
        assert_eq!(r.stop_signal.map(|s| s.number()), Some(10));
        assert_eq!(
            r.restart_policy,
            RestartPolicy::OnFailure { max_retries: 2 }
        );
        assert_eq!(r.network, NetworkMode::Bridge("app".into()));
        assert_eq!(r.networks.len(), 2);
        assert_eq!(r.networks[0].network, "app");
        assert_eq!(r.networks[0].aliases, ["web1"]);
        assert_eq!(
            r.networks[0].ipv4_address,
            Some("198.19.64.9".parse().unwrap())
        );
        assert_eq!(r.networks[1].network, "n2");
        assert_eq!(r.networks[1].ipv4_address, None);
        assert_eq!(r.ports[0].host_port, 8080);
        assert_eq!(r.extra_hosts[1].addr, HostAddr::HostGateway);
        assert_eq!(r.dns.servers.len(), 1);
        assert!(r.security.read_only_rootfs);
        assert_eq!(r.resources.memory, 64 << 20);
        assert_eq!(r.resources.pids_limit, Some(50));
        assert_eq!(r.log.rotation(), Some((1024, 3)));
        assert_eq!(r.mounts[0].kind, MountKind::Volume);
        assert!(!r.mounts[0].read_only && r.mounts[0].copy_up);
        assert!(r.mounts[1].read_only);
        assert_eq!(r.namespaces.ipc, IpcMode::Container("cccc".into()));
        assert_eq!(r.shm_size, Some(1 << 20));
        assert_eq!(r.device_cgroup_rules[0].minor, None);
        assert_eq!(r.volumes_from[0].read_only, Some(true));
        assert!(r.init && r.attach.stdout && !r.attach.stdin);
        // written in the current schema, read back unchanged
        let again = record(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn newer_schemas_and_garbage_are_refused() {
        assert!(
            record(br#"{"schema":99}"#)
                .unwrap_err()
                .contains("newer than")
        );
        assert!(record(b"{not json").is_err());
        assert!(state(br#"{"schema":99}"#).is_err());
    }

    #[test]
    fn schema_1_states_are_read() {
        let s = state(
            br#"{"Schema":1,"Status":"exited","Pid":0,"ExitCode":3,"Error":"","StartedAt":"x",
            "FinishedAt":"y","RestartCount":2,"OomKilled":true,"ManualStop":true,"MonitorPid":7,
            "MonitorStart":9,"Health":{"Status":"healthy","FailingStreak":0,"Log":[
            {"Start":"a","End":"b","ExitCode":0,"Output":"ok"}]}}"#,
        )
        .unwrap();
        assert_eq!(s.exit_code, 3);
        assert!(s.oom_killed && s.manual_stop);
        assert_eq!((s.monitor_pid, s.monitor_start), (7, 9));
        let h = s.health.unwrap();
        assert_eq!(h.status, "healthy");
        assert_eq!(h.log[0].output, "ok");
    }
}
