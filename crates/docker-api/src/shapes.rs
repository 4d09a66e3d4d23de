//! Docker's JSON shapes for engine objects: `GET /containers/{id}/json`
//! (and `docker inspect`), `GET /containers/json` (and `docker ps`). The
//! field names are docker's, because `--format` templates and the SDKs
//! read them.

use berth_engine::container::ZERO_TIME;
use berth_engine::{Container, Status};
use serde_json::{Value, json};

fn ports_map(ports: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for p in ports {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        m.insert(key, json!({}));
    }
    Value::Object(m)
}

fn network_mode(c: &Container) -> String {
    c.record.network_mode.clone()
}

/// `Mounts` as docker's inspect and `ps` show them.
pub fn mounts(c: &Container) -> Value {
    Value::Array(
        c.record
            .mounts
            .iter()
            .map(|m| {
                let mut o = json!({
                    "Type": m.kind,
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                });
                if m.kind == "volume" {
                    o["Name"] = json!(m.name);
                    o["Driver"] = json!("local");
                }
                o
            })
            .collect(),
    )
}

fn binds(c: &Container) -> Value {
    let v: Vec<String> = c
        .record
        .mounts
        .iter()
        .filter(|m| m.kind == "bind" || (m.kind == "volume" && !m.anonymous))
        .map(|m| {
            let src = if m.kind == "bind" { &m.source } else { &m.name };
            if m.mode.is_empty() {
                format!("{src}:{}", m.destination)
            } else {
                format!("{src}:{}:{}", m.destination, m.mode)
            }
        })
        .collect();
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// `NetworkSettings` of a container (its endpoints while it runs).
fn network_settings(c: &Container) -> Value {
    let mut ports = serde_json::Map::new();
    for p in &c.record.exposed_ports {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        ports.insert(key, Value::Null);
    }
    let mut networks = serde_json::Map::new();
    for e in &c.endpoints {
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
        networks.insert(
            e.network_name.clone(),
            json!({
                "IPAMConfig": if c.record.ipv4_address.is_empty() { Value::Null }
                              else { json!({"IPv4Address": c.record.ipv4_address}) },
                "Links": null,
                "Aliases": if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) },
                "MacAddress": e.mac,
                "NetworkID": e.network_id,
                "EndpointID": e.id,
                "Gateway": e.gateway.to_string(),
                "IPAddress": e.ip.to_string(),
                "IPPrefixLen": e.prefix,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": e.dns_names(),
            }),
        );
    }
    if networks.is_empty() && c.record.network_mode != "host" && !c.record.primary_detached {
        let name = match c.record.network_mode.as_str() {
            "" | "default" => "bridge",
            m => m,
        };
        networks.insert(
            name.to_owned(),
            json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                   "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                   "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                   "GlobalIPv6PrefixLen": 0, "DNSNames": null}),
        );
    }
    // the top-level fields describe the default bridge only, as docker's
    let first = c.endpoints.iter().find(|e| e.network_name == "bridge");
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if c.endpoints.is_empty() { String::new() }
                      else { c.endpoints[0].netns.display().to_string() },
        "Ports": ports,
        "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|e| e.prefix).unwrap_or(0),
        "Gateway": first.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": networks,
    })
}

/// `HostConfig.PortBindings`: what `-p` asked for.
fn port_bindings(c: &Container) -> Value {
    let mut m = serde_json::Map::new();
    for p in &c.record.port_bindings {
        let key = format!("{}/{}", p.container_port, p.proto);
        let e = m.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip,
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
    Value::Array(v)
}

/// The command line docker shows in `ps` (`sleep 120`).
pub fn command_line(c: &Container) -> String {
    let mut v = vec![c.record.path.clone()];
    v.extend(c.record.args.iter().cloned());
    v.join(" ")
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> Value {
    let r = &c.record;
    let s = &c.state;
    let running = matches!(s.status, Status::Running | Status::Paused) && s.is_active();
    let res = &r.resources;
    let ho = &r.host_options;
    let tmpfs: serde_json::Map<String, Value> = r
        .mounts
        .iter()
        .filter(|m| m.kind == "tmpfs")
        .map(|m| (m.destination.clone(), json!(m.tmpfs_options.join(","))))
        .collect();
    let tmpfs = if tmpfs.is_empty() {
        Value::Null
    } else {
        Value::Object(tmpfs)
    };
    let volumes: serde_json::Map<String, Value> = r
        .mounts
        .iter()
        .filter(|m| m.anonymous)
        .map(|m| (m.destination.clone(), json!({})))
        .collect();
    let volumes = if volumes.is_empty() {
        Value::Null
    } else {
        Value::Object(volumes)
    };
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
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
            "Health": s.health,
        },
        "Image": r.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": binds(c),
            "Tmpfs": tmpfs,
            "ContainerIDFile": "",
            "LogConfig": {"Type": r.log_config.kind, "Config": r.log_config.config},
            "NetworkMode": network_mode(c),
            "PortBindings": port_bindings(c),
            "PublishAllPorts": r.publish_all,
            "RestartPolicy": {"Name": if r.restart_policy.name.is_empty() { "no" } else { r.restart_policy.name.as_str() },
                              "MaximumRetryCount": r.restart_policy.maximum_retry_count},
            "AutoRemove": r.auto_remove,
            "CapAdd": r.cap_add,
            "CapDrop": r.cap_drop,
            "ReadonlyRootfs": r.read_only,
            "SecurityOpt": if r.no_new_privileges { json!(["no-new-privileges"]) } else { Value::Null },
            "Privileged": r.privileged,
            "Memory": res.memory,
            "MemorySwap": res.memory_swap,
            "MemoryReservation": res.memory_reservation,
            "NanoCpus": res.nano_cpus,
            "CpuShares": res.cpu_shares,
            "CpuPeriod": res.cpu_period,
            "CpuQuota": res.cpu_quota,
            "CpusetCpus": res.cpuset_cpus,
            "CpusetMems": res.cpuset_mems,
            "PidsLimit": res.pids_limit,
            "MemorySwappiness": res.memory_swappiness,
            "OomKillDisable": res.oom_kill_disable,
            "BlkioWeight": res.blkio_weight,
            "PidMode": ho.pid_mode,
            "IpcMode": if ho.ipc_mode.is_empty() { "private" } else { ho.ipc_mode.as_str() },
            "UTSMode": ho.uts_mode,
            "CgroupnsMode": if ho.cgroupns_mode.is_empty() { "private" } else { ho.cgroupns_mode.as_str() },
            "ShmSize": if ho.shm_size == 0 { 64 << 20 } else { ho.shm_size },
            "GroupAdd": if ho.group_add.is_empty() { Value::Null } else { json!(ho.group_add) },
            "OomScoreAdj": ho.oom_score_adj,
            "DeviceCgroupRules": if ho.device_cgroup_rules.is_empty() { Value::Null } else { json!(ho.device_cgroup_rules) },
            "VolumesFrom": if r.volumes_from.is_empty() { Value::Null } else { json!(r.volumes_from) },
            "Init": r.init,
            "Dns": r.dns,
            "DnsSearch": r.dns_search,
            "DnsOptions": r.dns_options,
            "ExtraHosts": if r.extra_hosts.is_empty() { Value::Null } else { json!(r.extra_hosts) },
            "ConsoleSize": r.console_size.map(|(h, w)| json!([h, w])).unwrap_or(json!([0, 0])),
        },
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "Mounts": mounts(c),
        "Config": {
            "Hostname": r.hostname,
            "Domainname": r.domainname,
            "User": r.user,
            "AttachStdin": r.attach_stdin,
            "AttachStdout": r.attach_stdout,
            "AttachStderr": r.attach_stderr,
            "ExposedPorts": if r.exposed_ports.is_empty() { Value::Null } else { ports_map(&r.exposed_ports) },
            "Tty": r.tty,
            "OpenStdin": r.open_stdin,
            "StdinOnce": r.stdin_once,
            "Env": r.env,
            "Cmd": if r.cmd.is_empty() { Value::Null } else { json!(r.cmd) },
            "Image": r.image,
            "Volumes": volumes,
            "WorkingDir": if r.working_dir == "/" { String::new() } else { r.working_dir.clone() },
            "Entrypoint": if r.entrypoint.is_empty() { Value::Null } else { json!(r.entrypoint) },
            "OnBuild": null,
            "Labels": r.labels,
            "StopSignal": r.stop_signal,
            "StopTimeout": r.stop_timeout,
            "Healthcheck": r.healthcheck,
        },
        "NetworkSettings": network_settings(c),
    })
}

/// One entry of `GET /containers/json`.
pub fn summary(c: &Container, now_secs: i64) -> Value {
    let r = &c.record;
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command_line(c),
        "Created": berth_engine::ops::parse_rfc3339_secs(&r.created).unwrap_or(0),
        "Ports": summary_ports(c),
        "Labels": r.labels,
        "State": c.state.status.as_str(),
        "Status": berth_engine::ops::status_text(&c.state, now_secs),
        "HostConfig": {"NetworkMode": r.network_mode},
        "NetworkSettings": {"Networks": network_settings(c)["Networks"].clone()},
        "Mounts": mounts(c),
    })
}

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

fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    berth_runtime::state::format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

fn cpu_json(s: &berth_engine::stats::Sample) -> Value {
    let u = &s.stats.cpu.usage;
    let t = &s.stats.cpu.throttling;
    json!({
        "cpu_usage": {"total_usage": u.total, "percpu_usage": u.percpu,
                      "usage_in_kernelmode": u.kernel, "usage_in_usermode": u.user},
        "system_cpu_usage": s.system_cpu,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": t.periods, "throttled_periods": t.throttled_periods,
                            "throttled_time": t.throttled_time},
    })
}

/// A `GET /containers/{id}/stats` document (cgroup v1 field names, which
/// the docker CLI and docker-py read on either cgroup version).
pub fn stats(
    name: &str,
    id: &str,
    pre: Option<&berth_engine::stats::Sample>,
    cur: &berth_engine::stats::Sample,
) -> Value {
    let m = &cur.stats.memory;
    let blk = |list: &[berth_runtime::cgroups::stats::BlkioEntry]| -> Value {
        Value::Array(
            list.iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect(),
        )
    };
    let zero_time = "0001-01-01T00:00:00Z".to_owned();
    json!({
        "read": if cur.running { rfc3339(cur.read) } else { zero_time.clone() },
        "preread": pre.map(|p| rfc3339(p.read)).unwrap_or(zero_time),
        "pids_stats": if cur.running {
            json!({"current": cur.stats.pids.current,
                   "limit": if cur.stats.pids.limit == 0 { Value::Null } else { json!(cur.stats.pids.limit) }})
        } else { json!({}) },
        "blkio_stats": {
            "io_service_bytes_recursive": blk(&cur.stats.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blk(&cur.stats.blkio.io_serviced_recursive),
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": pre.map(cpu_json).unwrap_or_else(|| json!({"cpu_usage": {"total_usage": 0,
            "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data":
            {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})),
        "memory_stats": if cur.running {
            json!({"usage": m.usage.usage, "max_usage": m.usage.max, "failcnt": m.usage.failcnt,
                   "limit": cur.memory_limit(), "stats": m.raw})
        } else { json!({}) },
        "name": format!("/{name}"),
        "id": id,
    })
}

/// One `GET /events` message.
pub fn event(e: &berth_engine::events::Event) -> Value {
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time_nano / 1_000_000_000,
        "timeNano": e.time_nano,
    });
    if e.kind == "container" {
        v["status"] = json!(e.action);
        v["id"] = json!(e.id);
        v["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    v
}

/// A network as `GET /networks/{id}` shows it.
pub fn network(v: &berth_engine::network::NetworkView) -> Value {
    let mut containers = serde_json::Map::new();
    for e in &v.endpoints {
        containers.insert(
            e.container_id.clone(),
            json!({"Name": e.container_name, "EndpointID": e.id, "MacAddress": e.mac,
                   "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": ""}),
        );
    }
    let (created, config, internal, attachable, labels, mut options) = match &v.network {
        Some(n) => {
            let mut cfg = json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()});
            if let Some(r) = &n.ip_range {
                cfg["IPRange"] = json!(r.to_string());
            }
            (
                n.created.clone(),
                json!([cfg]),
                n.internal,
                n.attachable,
                json!(n.labels),
                n.options.clone(),
            )
        }
        None => (
            "0001-01-01T00:00:00Z".to_owned(),
            json!([]),
            false,
            false,
            json!({}),
            Default::default(),
        ),
    };
    if let Some(n) = &v.network {
        options.insert("com.docker.network.bridge.name".into(), n.bridge.clone());
        if n.default {
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
        }
    }
    json!({
        "Name": v.name, "Id": v.id, "Created": created, "Scope": "local", "Driver": v.driver,
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": internal, "Attachable": attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": options, "Labels": labels,
    })
}

/// Whether a timestamp is docker's zero time.
pub fn is_zero_time(t: &str) -> bool {
    t == ZERO_TIME
}

/// The docker inspect document of an image.
pub fn image_inspect(
    store: &berth_image::ImageStore,
    id: &berth_types::Digest,
) -> Result<Value, berth_image::Error> {
    let rec = store
        .db()
        .image(id)?
        .ok_or_else(|| berth_image::Error::NotFound(format!("No such image: {id}")))?;
    let cfg = store.config(id)?;
    let names = store.names(id)?;
    let fam = |n: &str| {
        berth_types::Reference::parse(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.to_owned())
    };
    let tags: Vec<String> = names
        .iter()
        .filter(|(_, k)| k == "tag")
        .map(|(n, _)| fam(n))
        .collect();
    let digests: Vec<String> = names
        .iter()
        .filter(|(_, k)| k == "digest")
        .map(|(n, _)| fam(n))
        .collect();
    let layers = store.prepare(id).unwrap_or_default();
    let to_s = |p: &std::path::PathBuf| p.display().to_string();
    let mut graph = serde_json::Map::new();
    if let Some((top, rest)) = layers.split_last() {
        let lower: Vec<String> = rest.iter().rev().map(to_s).collect();
        if !lower.is_empty() {
            graph.insert("LowerDir".into(), lower.join(":").into());
        }
        graph.insert("UpperDir".into(), to_s(top).into());
    }
    let config = cfg.config.clone().unwrap_or_default();
    let mut docker_cfg =
        serde_json::to_value(&config).map_err(|e| berth_image::Error::Invalid(e.to_string()))?;
    if let Some(o) = docker_cfg.as_object_mut() {
        for k in [
            "Env",
            "Cmd",
            "Entrypoint",
            "Volumes",
            "Labels",
            "ExposedPorts",
            "OnBuild",
        ] {
            o.entry(k).or_insert(serde_json::Value::Null);
        }
        o.entry("WorkingDir").or_insert("".into());
        o.entry("User").or_insert("".into());
    }
    Ok(serde_json::json!({
        "Id": id.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": cfg.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": cfg.created.clone().unwrap_or_default(),
        "DockerVersion": cfg.extra.get("docker_version").cloned().unwrap_or("".into()),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": docker_cfg,
        "Architecture": cfg.architecture,
        "Variant": cfg.variant,
        "Os": cfg.os,
        "Size": rec.size,
        "GraphDriver": {"Name": "overlay", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": rec.added},
        "Descriptor": {"mediaType": rec.manifest_media_type, "digest": rec.manifest.to_string(),
            "size": store.content().size(&rec.manifest).unwrap_or(0)},
    }))
}
