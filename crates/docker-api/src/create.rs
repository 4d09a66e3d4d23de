//! `POST /containers/create` bodies → the engine's `CreateConfig`.
//! Options berth cannot honour yet are collected as "not supported yet"
//! (the engine refuses them) rather than ignored.

use std::collections::BTreeMap;

use berth_engine::container::LogConfig;
use berth_engine::{CreateConfig, Resources, RestartPolicy};
use serde_json::{Value, json};

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => Some(
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect(),
        ),
        // docker-py and old clients send a string for Cmd/Entrypoint
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(|x| x.as_str())
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn boolean(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}

/// The body's image, and the engine's configuration for it.
pub fn parse(body: &Value, name: Option<String>) -> Result<(String, CreateConfig), String> {
    let obj = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let image = string(obj.get("Image")).ok_or("config is missing Image")?;
    let empty = Value::Object(Default::default());
    let host = obj
        .get("HostConfig")
        .filter(|h| h.is_object())
        .unwrap_or(&empty);
    let h = |k: &str| host.get(k);
    let mut unsupported = Vec::new();
    let mut check = |k: &str, what: &str| {
        if nonempty(h(k)) {
            unsupported.push(what.to_owned());
        }
    };
    check(
        "Links",
        "--link (legacy container links; use a user-defined network)",
    );
    check("DeviceRequests", "--gpus / device requests");
    check("CpuRealtimePeriod", "--cpu-rt-period");
    check("CpuRealtimeRuntime", "--cpu-rt-runtime");
    check("KernelMemory", "--kernel-memory");
    check("KernelMemoryTCP", "kernel TCP memory limits");
    check("BlkioWeightDevice", "--blkio-weight-device");
    check("BlkioDeviceReadBps", "--device-read-bps");
    check("BlkioDeviceWriteBps", "--device-write-bps");
    check("BlkioDeviceReadIOps", "--device-read-iops");
    check("BlkioDeviceWriteIOps", "--device-write-iops");
    check("CgroupParent", "--cgroup-parent");
    check("StorageOpt", "--storage-opt");
    check("VolumeDriver", "--volume-driver");
    check("CpuCount", "--cpu-count (Windows)");
    check("CpuPercent", "--cpu-percent (Windows)");
    check("IOMaximumIOps", "--io-maxiops (Windows)");
    check("IOMaximumBandwidth", "--io-maxbandwidth (Windows)");
    check("Annotations", "--annotation");
    if let Some(m) = string(h("UsernsMode")).filter(|m| m != "host") {
        unsupported.push(format!("--userns {m}"));
    }
    if let Some(r) = string(h("Runtime")).filter(|r| !matches!(r.as_str(), "berth" | "runc")) {
        unsupported.push(format!("--runtime {r} (berth is the only runtime)"));
    }
    if let Some(i) = string(h("Isolation")).filter(|i| i != "default") {
        unsupported.push(format!("--isolation {i}"));
    }
    if let Some(m) = string(obj.get("MacAddress")) {
        unsupported.push(format!("--mac-address {m}"));
    }
    if boolean(obj.get("NetworkDisabled")) {
        unsupported.push("NetworkDisabled (use NetworkMode none)".into());
    }
    let paths = |k: &str| -> Option<Vec<String>> {
        h(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
    };
    let healthcheck: Option<berth_types::image::HealthConfig> = match obj.get("Healthcheck") {
        None | Some(Value::Null) => None,
        Some(h) => Some(
            serde_json::from_value(h.clone()).map_err(|e| format!("invalid Healthcheck: {e}"))?,
        ),
    };
    let mut aliases = Vec::new();
    let mut ipv4 = None;
    let mut extra_networks = Vec::new();
    let mode = string(h("NetworkMode")).unwrap_or_else(|| "default".into());
    if let Some(eps) = obj
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object)
    {
        for (net, ep) in eps {
            let a = strings(ep.get("Aliases")).unwrap_or_default();
            let ip = ep
                .get("IPAMConfig")
                .and_then(|i| string(i.get("IPv4Address")));
            if ep
                .get("IPAMConfig")
                .is_some_and(|i| nonempty(i.get("IPv6Address")))
            {
                unsupported.push("IPv6 addresses (--ip6)".into());
            }
            // the network of NetworkMode is the first; the others are joined too
            let primary = *net == mode
                || (matches!(mode.as_str(), "default" | "bridge") && net == "bridge")
                || eps.len() == 1;
            if primary {
                aliases.extend(a);
                ipv4 = ip;
            } else {
                extra_networks.push((net.clone(), a, ip));
            }
        }
    }
    let mut port_bindings = Vec::new();
    if let Some(pb) = h("PortBindings").and_then(Value::as_object) {
        for (key, hosts) in pb {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let container_port: u16 = port
                .parse()
                .map_err(|_| format!("invalid port specification: \"{key}\""))?;
            let list = hosts.as_array().cloned().unwrap_or_default();
            let list = if list.is_empty() {
                vec![json!({})]
            } else {
                list
            };
            for hb in list {
                let host_port = match hb.get("HostPort").and_then(Value::as_str).unwrap_or("") {
                    "" => 0,
                    p => p
                        .parse::<u16>()
                        .map_err(|_| format!("invalid port specification: \"{p}\""))?,
                };
                port_bindings.push(berth_engine::network::PortSpec {
                    container_port,
                    proto: proto.to_owned(),
                    host_ip: hb
                        .get("HostIp")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    host_port,
                });
            }
        }
    }
    let mut security_nnp = false;
    let mut seccomp = None;
    for opt in strings(h("SecurityOpt")).unwrap_or_default() {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                security_nnp = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => {}
            o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => {
                // the docker CLI sends the profile's content, not its path
                seccomp = Some(o["seccomp=".len()..].to_owned());
            }
            // berth applies no AppArmor profile or SELinux label: asking for
            // none is what it does already
            "apparmor=unconfined" | "apparmor:unconfined" | "label=disable" | "label:disable" => {}
            other => unsupported.push(format!("--security-opt {other}")),
        }
    }
    let restart = h("RestartPolicy")
        .map(|r| RestartPolicy {
            name: string(r.get("Name")).unwrap_or_default(),
            maximum_retry_count: int(r.get("MaximumRetryCount")),
        })
        .unwrap_or_default();
    let log_config = h("LogConfig")
        .map(|l| LogConfig {
            kind: string(l.get("Type")).unwrap_or_default(),
            config: crate::http::string_map(l.get("Config")),
        })
        .unwrap_or_default();
    let console_size = h("ConsoleSize")
        .and_then(Value::as_array)
        .and_then(|a| Some((a.first()?.as_u64()? as u16, a.get(1)?.as_u64()? as u16)))
        .filter(|(a, b)| *a > 0 && *b > 0);
    let labels: BTreeMap<String, String> = crate::http::string_map(obj.get("Labels"));
    let exposed: Vec<String> = obj
        .get("ExposedPorts")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let pids = h("PidsLimit").and_then(Value::as_i64).filter(|p| *p > 0);
    let mounts = match h("Mounts") {
        None | Some(Value::Null) => Vec::new(),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| format!("invalid HostConfig.Mounts: {e}"))?,
    };
    let tmpfs: BTreeMap<String, String> = crate::http::string_map(h("Tmpfs"));
    let volumes: Vec<String> = obj
        .get("Volumes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let cfg = CreateConfig {
        name,
        cmd: strings(obj.get("Cmd")).filter(|c| !c.is_empty()),
        entrypoint: strings(obj.get("Entrypoint")).map(|e| {
            // `--entrypoint ""` arrives as [""]: clear it
            if e.len() == 1 && e[0].is_empty() {
                Vec::new()
            } else {
                e
            }
        }),
        env: strings(obj.get("Env")).unwrap_or_default(),
        workdir: string(obj.get("WorkingDir")),
        user: string(obj.get("User")),
        hostname: string(obj.get("Hostname")),
        domainname: string(obj.get("Domainname")),
        tty: boolean(obj.get("Tty")),
        open_stdin: boolean(obj.get("OpenStdin")),
        stdin_once: boolean(obj.get("StdinOnce")),
        attach: (
            boolean(obj.get("AttachStdin")),
            boolean(obj.get("AttachStdout")),
            boolean(obj.get("AttachStderr")),
        ),
        labels,
        exposed_ports: exposed,
        stop_signal: string(obj.get("StopSignal")),
        stop_timeout: obj.get("StopTimeout").and_then(Value::as_i64),
        auto_remove: boolean(h("AutoRemove")),
        restart_policy: restart,
        network_mode: string(h("NetworkMode")).unwrap_or_else(|| "default".into()),
        read_only: boolean(h("ReadonlyRootfs")),
        no_new_privileges: security_nnp,
        cap_add: strings(h("CapAdd")).unwrap_or_default(),
        cap_drop: strings(h("CapDrop")).unwrap_or_default(),
        resources: Resources {
            memory: int(h("Memory")),
            memory_swap: int(h("MemorySwap")),
            memory_reservation: int(h("MemoryReservation")),
            nano_cpus: int(h("NanoCpus")),
            cpu_shares: int(h("CpuShares")),
            cpu_period: int(h("CpuPeriod")),
            cpu_quota: int(h("CpuQuota")),
            cpuset_cpus: string(h("CpusetCpus")).unwrap_or_default(),
            cpuset_mems: string(h("CpusetMems")).unwrap_or_default(),
            pids_limit: pids,
            memory_swappiness: h("MemorySwappiness").and_then(Value::as_i64),
            oom_kill_disable: boolean(h("OomKillDisable")),
            blkio_weight: u16::try_from(int(h("BlkioWeight")))
                .map_err(|_| "Range of blkio weight is from 10 to 1000".to_owned())?,
        },
        host_options: berth_engine::container::HostOptions {
            pid_mode: string(h("PidMode")).unwrap_or_default(),
            ipc_mode: string(h("IpcMode")).unwrap_or_default(),
            uts_mode: string(h("UTSMode")).unwrap_or_default(),
            cgroupns_mode: string(h("CgroupnsMode")).unwrap_or_default(),
            shm_size: int(h("ShmSize")),
            group_add: strings(h("GroupAdd")).unwrap_or_default(),
            oom_score_adj: int(h("OomScoreAdj")),
            device_cgroup_rules: strings(h("DeviceCgroupRules")).unwrap_or_default(),
            masked_paths: paths("MaskedPaths"),
            readonly_paths: paths("ReadonlyPaths"),
        },
        volumes_from: strings(h("VolumesFrom")).unwrap_or_default(),
        log_config,
        console_size,
        port_bindings,
        healthcheck,
        extra_hosts: strings(h("ExtraHosts")).unwrap_or_default(),
        dns: strings(h("Dns")).unwrap_or_default(),
        dns_search: strings(h("DnsSearch")).unwrap_or_default(),
        dns_options: strings(h("DnsOptions")).unwrap_or_default(),
        ulimits: h("Ulimits")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|u| {
                        format!(
                            "{}={}:{}",
                            u.get("Name").and_then(Value::as_str).unwrap_or(""),
                            int(u.get("Soft")),
                            int(u.get("Hard"))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        extra_networks,
        privileged: boolean(h("Privileged")),
        init: boolean(h("Init")),
        seccomp,
        devices: h("Devices")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|d| {
                        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
                        let ctr = if s("PathInContainer").is_empty() {
                            s("PathOnHost")
                        } else {
                            s("PathInContainer")
                        };
                        let perms = if s("CgroupPermissions").is_empty() {
                            "rwm"
                        } else {
                            s("CgroupPermissions")
                        };
                        format!("{}:{ctr}:{perms}", s("PathOnHost"))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        sysctls: crate::http::string_map(h("Sysctls")),
        publish_all: boolean(h("PublishAllPorts")),
        aliases,
        ipv4_address: ipv4,
        binds: strings(h("Binds")).unwrap_or_default(),
        mounts,
        tmpfs,
        volumes,
        unsupported,
    };
    Ok((image, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_body_maps_and_refuses_what_is_missing() {
        let body: Value = serde_json::from_str(
            r#"{"Hostname":"","User":"","AttachStdout":true,"Tty":false,"Env":["A=1"],
            "Cmd":["echo","hi"],"Image":"busybox:local","Volumes":{},"WorkingDir":"","Entrypoint":null,
            "Labels":{"app":"demo"},"HostConfig":{"Binds":null,"NetworkMode":"default","PortBindings":{},
            "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"AutoRemove":true,"ConsoleSize":[0,0],
            "Memory":67108864,"PidsLimit":0,"SecurityOpt":["no-new-privileges"]},
            "NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#,
        )
        .unwrap();
        let (img, c) = parse(&body, Some("web".into())).unwrap();
        assert_eq!(img, "busybox:local");
        assert_eq!(
            c.cmd.as_deref(),
            Some(&["echo".to_owned(), "hi".to_owned()][..])
        );
        assert!(c.auto_remove && c.no_new_privileges && c.unsupported.is_empty());
        assert_eq!(c.restart_policy.maximum_retry_count, 2);
        assert_eq!(c.resources.memory, 64 << 20);
        assert_eq!(c.resources.pids_limit, None);
        assert_eq!(c.labels["app"], "demo");
        let body: Value = serde_json::from_str(
            r#"{"Image":"x","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},"Binds":["/a:/b"]}}"#,
        )
        .unwrap();
        let (_, c) = parse(&body, None).unwrap();
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(c.binds, ["/a:/b"]);
        assert_eq!(c.port_bindings[0].host_port, 8080);
        assert!(parse(&serde_json::json!({"Cmd": ["x"]}), None).is_err());
        assert!(parse(&serde_json::json!([1]), None).is_err());
    }
}
