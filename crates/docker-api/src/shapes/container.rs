//! Containers in docker's JSON: `GET /containers/{id}/json` (and `docker
//! inspect`), `GET /containers/json` (and `docker ps`). Field names and
//! empty values (null vs [] vs {}) are dockerd's, because `--format`
//! templates, docker-py and Compose read them.

use berth_engine::config::{MountKind, MountOrigin, NetworkMode};
use berth_engine::container::ZERO_TIME;
use berth_engine::{Container, Status};
use serde_json::{Map, Value, json};

use super::text::{human_duration, unix_secs};

fn or_null<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// The `Mode` docker reports: as given, or `z` for a volume named in `-v`
/// or given through `--mount` without one (an anonymous `-v` volume and a
/// bind keep an empty mode).
fn mount_mode(m: &berth_engine::volumes::MountPoint) -> &str {
    let anonymous_v = m.anonymous && m.origin != MountOrigin::Mount;
    if m.mode.is_empty() && m.kind == MountKind::Volume && !anonymous_v {
        "z"
    } else {
        &m.mode
    }
}

/// `Mounts` as docker's inspect and `ps` show them (`--tmpfs` mounts are
/// only in `HostConfig.Tmpfs`, `--mount type=tmpfs` ones are listed).
pub fn mounts(c: &Container) -> Value {
    Value::Array(
        c.record
            .mounts
            .iter()
            .filter(|m| m.origin != MountOrigin::Tmpfs)
            .map(|m| {
                let mut o = json!({
                    "Type": m.kind.as_str(),
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": mount_mode(m),
                    "RW": !m.read_only,
                    "Propagation": match m.kind {
                        MountKind::Bind => m.propagation.unwrap_or_default().as_str(),
                        _ => "",
                    },
                });
                if m.kind == MountKind::Volume {
                    o["Name"] = json!(m.name);
                    o["Driver"] = json!("local");
                }
                o
            })
            .collect(),
    )
}

/// `HostConfig.Binds`: the `-v` entries, as given.
fn binds(c: &Container) -> Value {
    let v: Vec<String> = c
        .record
        .mounts
        .iter()
        .filter(|m| m.origin == MountOrigin::Volume && !m.anonymous)
        .map(|m| {
            let src = if m.kind == MountKind::Bind {
                &m.source
            } else {
                &m.name
            };
            if m.mode.is_empty() {
                format!("{src}:{}", m.destination)
            } else {
                format!("{src}:{}:{}", m.destination, m.mode)
            }
        })
        .collect();
    or_null(&v)
}

/// `HostConfig.Mounts`: the `--mount` entries (`None`: none).
fn host_mounts(c: &Container) -> Option<Value> {
    let v: Vec<Value> = c
        .record
        .mounts
        .iter()
        .filter(|m| m.origin == MountOrigin::Mount)
        .map(|m| {
            let mut o = json!({"Type": m.kind.as_str(), "Target": m.destination});
            match m.kind {
                MountKind::Bind => o["Source"] = json!(m.source),
                MountKind::Volume if !m.anonymous => o["Source"] = json!(m.name),
                _ => {}
            }
            if m.read_only {
                o["ReadOnly"] = json!(true);
            }
            o
        })
        .collect();
    (!v.is_empty()).then_some(Value::Array(v))
}

/// The name docker gives a network in `NetworkSettings.Networks`.
fn network_name(c: &Container, id: &str) -> String {
    c.endpoints
        .iter()
        .find(|e| e.network_id == id)
        .map(|e| e.network_name.clone())
        .or_else(|| c.network_names.get(id).cloned())
        .unwrap_or_else(|| id.to_owned())
}

/// `NetworkSettings`: every network the container is on (with its
/// endpoint while it runs; the configured aliases and addresses always).
fn network_settings(c: &Container) -> Value {
    let r = &c.record;
    let mut ports = Map::new();
    if c.state.is_active() {
        for p in &r.exposed_ports {
            ports.insert(p.to_string(), Value::Null);
        }
    }
    let mut networks = Map::new();
    for x in &r.networks {
        let ep = c.endpoints.iter().find(|e| e.network_id == x.network);
        if let Some(e) = ep {
            for b in &e.ports {
                let key = format!("{}/{}", b.container_port, b.proto);
                let entry = ports.entry(key).or_insert_with(|| json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                if let Some(a) = entry.as_array_mut() {
                    a.push(
                        json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}),
                    );
                }
            }
        }
        let name = network_name(c, &x.network);
        // docker leaves out what was not asked for
        let ipam = if x.ipv4_address.is_none() && x.link_local_ips.is_empty() {
            Value::Null
        } else {
            let mut m = Map::new();
            if let Some(a) = x.ipv4_address {
                m.insert("IPv4Address".into(), json!(a.to_string()));
            }
            if !x.link_local_ips.is_empty() {
                let ll: Vec<String> = x.link_local_ips.iter().map(|a| a.to_string()).collect();
                m.insert("LinkLocalIPs".into(), json!(ll));
            }
            Value::Object(m)
        };
        let links: Vec<String> = x
            .links
            .iter()
            .map(|l| format!("{}:{}", l.container, l.alias))
            .collect();
        // docker: the name, the aliases and the short id resolve
        let mut dns = vec![r.name.clone()];
        dns.extend(x.aliases.iter().cloned());
        if !c.network_defaults.contains(&x.network) {
            dns.push(r.id.get(..12).unwrap_or(&r.id).to_owned());
        }
        networks.insert(
            name,
            json!({
                "IPAMConfig": ipam,
                "Links": or_null(&links),
                "Aliases": or_null(&x.aliases),
                "MacAddress": ep.map(|e| e.mac.clone())
                    .or_else(|| x.mac_address.map(|m| m.to_string())).unwrap_or_default(),
                "DriverOpts": if x.driver_opts.is_empty() { Value::Null } else { json!(x.driver_opts) },
                "NetworkID": x.network,
                "EndpointID": ep.map(|e| e.id.clone()).unwrap_or_default(),
                "Gateway": ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
                "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": if c.network_defaults.contains(&x.network) { Value::Null } else { json!(dns) },
            }),
        );
    }
    match &r.network {
        NetworkMode::Host => {
            networks.insert("host".into(), empty_endpoint());
        }
        NetworkMode::None => {
            networks.insert("none".into(), empty_endpoint());
        }
        _ => {}
    }
    // the top-level fields describe the default bridge only, as docker's
    let first = c
        .endpoints
        .iter()
        .find(|e| c.network_defaults.contains(&e.network_id));
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": c.endpoints.first().map(|e| e.netns.display().to_string()).unwrap_or_default(),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": first.map(|e| e.id.clone()).unwrap_or_default(),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPv6Gateway": "",
        "Ports": ports,
        "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|e| e.prefix).unwrap_or(0),
        "Gateway": first.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

fn empty_endpoint() -> Value {
    json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
           "DriverOpts": null, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
           "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
           "GlobalIPv6PrefixLen": 0, "DNSNames": null})
}

/// `HostConfig.PortBindings`: what `-p` asked for.
fn port_bindings(c: &Container) -> Value {
    let mut m = Map::new();
    for p in &c.record.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let e = m.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() }}));
        }
    }
    Value::Object(m)
}

/// `Ports` of `GET /containers/json`.
fn summary_ports(c: &Container) -> Value {
    let mut v = Vec::new();
    for e in &c.endpoints {
        for b in &e.ports {
            v.push(
                json!({"IP": b.host_ip.to_string(), "PrivatePort": b.container_port,
                          "PublicPort": b.host_port, "Type": b.proto.to_string()}),
            );
        }
    }
    // exposed ports nothing publishes are listed too, as docker's (while
    // it runs: a stopped container has no ports)
    let exposed = if c.state.is_active() {
        &c.record.exposed_ports[..]
    } else {
        &[]
    };
    for p in exposed {
        if !v
            .iter()
            .any(|x| x["PrivatePort"] == p.port && x["Type"] == p.proto.to_string())
        {
            v.push(json!({"PrivatePort": p.port, "Type": p.proto.to_string()}));
        }
    }
    Value::Array(v)
}

/// The command line docker shows in `ps` (`sleep 120`; an argument with
/// a space in single quotes, as dockerd: `sh -c 'echo hi'`).
pub fn command_line(c: &Container) -> String {
    let mut v = vec![c.record.path.clone()];
    v.extend(c.record.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    v.join(" ")
}

/// docker's `Status` text for `ps`: "Up 5 seconds", "Exited (0) 3
/// seconds ago", "Up 2 minutes (healthy)".
pub fn status_text(c: &Container, now_secs: i64) -> String {
    let s = &c.state;
    let ago = |t: &str| unix_secs(t).map(|v| human_duration(now_secs - v));
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = format!("Up {}", ago(&s.started_at).unwrap_or_default());
            match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => format!("{up} (health: starting)"),
                Some(h) if !h.is_empty() => format!("{up} ({h})"),
                _ => up,
            }
        }
        Status::Paused => format!("Up {} (Paused)", ago(&s.started_at).unwrap_or_default()),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            ago(&s.finished_at).unwrap_or_default()
        ),
        Status::Exited => match ago(&s.finished_at) {
            Some(d) if s.finished_at != ZERO_TIME => {
                format!("Exited ({}) {d} ago", s.exit_code)
            }
            _ => format!("Exited ({})", s.exit_code),
        },
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> Value {
    let r = &c.record;
    let s = &c.state;
    let running = matches!(s.status, Status::Running | Status::Paused) && s.is_active();
    let res = &r.resources;
    let ns = &r.namespaces;
    let sec = &r.security;
    let tmpfs: Map<String, Value> = r
        .mounts
        .iter()
        .filter(|m| m.origin == MountOrigin::Tmpfs)
        .map(|m| {
            let mut o = m.tmpfs_options.clone();
            if m.read_only {
                o.push("ro".into());
            }
            (m.destination.clone(), json!(o.join(",")))
        })
        .collect();
    let volumes: Map<String, Value> = r
        .mounts
        .iter()
        .filter(|m| m.anonymous && m.origin != MountOrigin::Image)
        .map(|m| (m.destination.clone(), json!({})))
        .collect();
    let mut security_opt = Vec::new();
    if sec.no_new_privileges {
        security_opt.push("no-new-privileges".to_owned());
    }
    match &sec.seccomp {
        berth_engine::config::Seccomp::Unconfined if !sec.privileged => {
            security_opt.push("seccomp=unconfined".into())
        }
        berth_engine::config::Seccomp::Profile(p) => security_opt.push(format!("seccomp={p}")),
        _ => {}
    }
    if sec.masked_paths.as_ref().is_some_and(|p| p.is_empty())
        && sec.readonly_paths.as_ref().is_some_and(|p| p.is_empty())
    {
        security_opt.push("systempaths=unconfined".into());
    }
    let devices: Vec<Value> = r
        .devices
        .iter()
        .map(|d| {
            json!({"PathOnHost": d.host, "PathInContainer": d.container,
                   "CgroupPermissions": d.permissions.to_string()})
        })
        .collect();
    let ulimits: Vec<Value> = r
        .ulimits
        .iter()
        .map(|u| {
            let n = |v: u64| if v == u64::MAX { -1 } else { v as i64 };
            json!({"Name": u.name, "Soft": n(u.soft), "Hard": n(u.hard)})
        })
        .collect();
    let volumes_from: Vec<String> = r
        .volumes_from
        .iter()
        .map(|v| match v.read_only {
            Some(true) => format!("{}:ro", v.container),
            Some(false) => format!("{}:rw", v.container),
            None => v.container.clone(),
        })
        .collect();
    let links: Vec<String> = r
        .networks
        .iter()
        .flat_map(|x| x.links.iter())
        .map(|l| format!("/{}:/{}/{}", l.container, r.name, l.alias))
        .collect();
    let health = s.health.as_ref().map(|h| {
        json!({"Status": h.status, "FailingStreak": h.failing_streak,
               "Log": h.log.iter().map(|l| json!({"Start": l.start, "End": l.end,
                    "ExitCode": l.exit_code, "Output": l.output})).collect::<Vec<_>>()})
    });
    let mut state = json!({
        "Status": s.status.as_str(),
        "Running": running,
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": if running { s.pid } else { 0 },
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let healthcheck = r.healthcheck.as_ref().map(|h| {
        let mut o = json!({"Test": h.test});
        for (k, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
            ("Retries", h.retries),
        ] {
            if v != 0 {
                o[k] = json!(v);
            }
        }
        o
    });
    let exposed: Map<String, Value> = r
        .exposed_ports
        .iter()
        .map(|p| (p.to_string(), json!({})))
        .collect();
    let dir = c.dir.display().to_string();
    let log_path = if r.log.driver == berth_engine::config::LogDriver::None {
        String::new()
    } else {
        format!("{dir}/{}", berth_engine::logs::LOG_FILE)
    };
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": state,
        "Image": r.image_id,
        "ResolvConfPath": format!("{dir}/etc/resolv.conf"),
        "HostnamePath": format!("{dir}/etc/hostname"),
        "HostsPath": format!("{dir}/etc/hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": or_null(&c.exec_ids),
        "HostConfig": {
            "Binds": binds(c),
            "ContainerIDFile": "",
            "LogConfig": {"Type": r.log.driver.name(), "Config": r.log.options},
            "NetworkMode": r.network.docker_name(),
            "PortBindings": port_bindings(c),
            "RestartPolicy": {"Name": r.restart_policy.name(),
                              "MaximumRetryCount": r.restart_policy.max_retries()},
            "AutoRemove": r.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": or_null(&volumes_from),
            "ConsoleSize": r.console_size.map(|c| json!([c.height, c.width])).unwrap_or(json!([0, 0])),
            "CapAdd": or_null(&sec.cap_add),
            "CapDrop": or_null(&sec.cap_drop),
            "CgroupnsMode": ns.cgroupns.docker_name(),
            "Dns": json!(r.dns.servers.iter().map(|d| d.to_string()).collect::<Vec<_>>()),
            "DnsOptions": json!(r.dns.options),
            "DnsSearch": json!(r.dns.search),
            "ExtraHosts": or_null(&r.extra_hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()),
            "GroupAdd": or_null(&r.group_add),
            "IpcMode": ns.ipc.docker_name(),
            "Cgroup": "",
            "Links": or_null(&links),
            "OomScoreAdj": r.oom_score_adj,
            "PidMode": ns.pid.docker_name(),
            "Privileged": sec.privileged,
            "PublishAllPorts": r.publish_all,
            "ReadonlyRootfs": sec.read_only_rootfs,
            "SecurityOpt": or_null(&security_opt),
            "UTSMode": ns.uts.docker_name(),
            "UsernsMode": "",
            "ShmSize": r.shm_size.unwrap_or(64 << 20),
            "Runtime": "runc",
            "Isolation": "",
            "CpuShares": res.cpu_shares,
            "Memory": res.memory,
            "NanoCpus": res.nano_cpus,
            "CgroupParent": r.cgroup_parent.clone().unwrap_or_default(),
            "BlkioWeight": res.blkio_weight,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": [],
            "BlkioDeviceWriteBps": [],
            "BlkioDeviceReadIOps": [],
            "BlkioDeviceWriteIOps": [],
            "CpuPeriod": res.cpu_period,
            "CpuQuota": res.cpu_quota,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "CpusetCpus": res.cpuset_cpus,
            "CpusetMems": res.cpuset_mems,
            "Devices": devices,
            "DeviceCgroupRules": or_null(&r.device_cgroup_rules.iter().map(|d| d.to_string()).collect::<Vec<_>>()),
            "DeviceRequests": null,
            "MemoryReservation": res.memory_reservation,
            "MemorySwap": res.memory_swap,
            "MemorySwappiness": res.memory_swappiness.filter(|s| *s != -1),
            "OomKillDisable": res.oom_kill_disable,
            "PidsLimit": res.pids_limit,
            "Ulimits": ulimits,
            "KernelMemory": 0,
            "KernelMemoryTCP": 0,
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
            "MaskedPaths": sec.masked_paths.clone().unwrap_or_else(|| berth_engine::oci::MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            "ReadonlyPaths": sec.readonly_paths.clone().unwrap_or_else(|| berth_engine::oci::READONLY_PATHS.iter().map(|s| s.to_string()).collect()),
        },
        "GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": format!("{dir}/upper"), "WorkDir": format!("{dir}/work"),
            "MergedDir": format!("{dir}/rootfs")}},
        "Mounts": mounts(c),
        "Config": {
            "Hostname": r.hostname,
            "Domainname": r.domainname,
            "User": r.user,
            "AttachStdin": r.attach.stdin,
            "AttachStdout": r.attach.stdout,
            "AttachStderr": r.attach.stderr,
            "Tty": r.tty,
            "OpenStdin": r.open_stdin,
            "StdinOnce": r.stdin_once,
            "Env": or_null(&r.env),
            "Cmd": or_null(&r.cmd),
            "Image": r.image,
            "Volumes": if volumes.is_empty() { Value::Null } else { Value::Object(volumes) },
            "WorkingDir": if r.working_dir == "/" { String::new() } else { r.working_dir.clone() },
            "Entrypoint": or_null(&r.entrypoint),
            "OnBuild": null,
            "Labels": r.labels,
        },
        "NetworkSettings": network_settings(c),
    });
    // what dockerd leaves out when unset (`omitempty`)
    let host = &mut v["HostConfig"];
    if let Some(m) = host_mounts(c) {
        host["Mounts"] = m;
    }
    if r.init {
        host["Init"] = json!(true);
    }
    if !tmpfs.is_empty() {
        host["Tmpfs"] = Value::Object(tmpfs);
    }
    if !r.sysctls.is_empty() {
        host["Sysctls"] = json!(r.sysctls);
    }
    let config = &mut v["Config"];
    if !exposed.is_empty() {
        config["ExposedPorts"] = Value::Object(exposed);
    }
    if let Some(h) = healthcheck {
        config["Healthcheck"] = h;
    }
    if let Some(s) = r.stop_signal {
        config["StopSignal"] = json!(s.name());
    }
    if let Some(t) = r.stop_timeout {
        config["StopTimeout"] = json!(t);
    }
    v
}

/// One entry of `GET /containers/json`.
pub fn summary(c: &Container, now_secs: i64) -> Value {
    let r = &c.record;
    let nets = network_settings(c);
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command_line(c),
        "Created": unix_secs(&r.created).unwrap_or(0),
        "Ports": summary_ports(c),
        "Labels": r.labels,
        "State": c.state.status.as_str(),
        "Status": status_text(c, now_secs),
        "HostConfig": {"NetworkMode": r.network.docker_name()},
        "NetworkSettings": {"Networks": nets["Networks"].clone()},
        "Mounts": mounts(c),
    })
}

/// Before API 1.44 docker listed a container's short id among its
/// aliases on user-defined networks (Compose 1.x looks for it) and had no
/// `DNSNames`; `minor` is the request's API minor version.
pub fn for_api(mut v: Value, c: &Container, minor: u32) -> Value {
    if minor >= 44 {
        return v;
    }
    let short = c.record.id.get(..12).unwrap_or(&c.record.id).to_owned();
    if let Some(nets) = v
        .pointer_mut("/NetworkSettings/Networks")
        .and_then(Value::as_object_mut)
    {
        for (_, n) in nets.iter_mut() {
            let user_defined = !n["DNSNames"].is_null();
            if let Some(o) = n.as_object_mut() {
                o.remove("DNSNames");
                if user_defined {
                    let mut aliases: Vec<Value> = o
                        .get("Aliases")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if !aliases.iter().any(|a| a == &json!(short)) {
                        aliases.push(json!(short));
                    }
                    o.insert("Aliases".into(), Value::Array(aliases));
                }
            }
        }
    }
    v
}
