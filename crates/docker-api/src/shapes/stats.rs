//! `GET /containers/{id}/stats` documents.

use serde_json::{Value, json};

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
