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

/// The `memory_stats.stats` keys dockerd 20.10 sends (cgroup v1; v2's
/// own names are kept too).
const MEMORY_STAT_KEYS: &[&str] = &[
    "active_anon",
    "active_file",
    "cache",
    "dirty",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "inactive_anon",
    "inactive_file",
    "mapped_file",
    "pgfault",
    "pgmajfault",
    "pgpgin",
    "pgpgout",
    "rss",
    "rss_huge",
    "total_active_anon",
    "total_active_file",
    "total_cache",
    "total_dirty",
    "total_inactive_anon",
    "total_inactive_file",
    "total_mapped_file",
    "total_pgfault",
    "total_pgmajfault",
    "total_pgpgin",
    "total_pgpgout",
    "total_rss",
    "total_rss_huge",
    "total_unevictable",
    "total_writeback",
    "unevictable",
    "writeback",
    // cgroup v2
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "thp_collapse_alloc",
    "thp_fault_alloc",
    "workingset_activate",
    "workingset_nodereclaim",
    "workingset_refault",
];

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
    // dockerd: the lists while it runs ([] when empty), null when it does not
    let blkio = if cur.running {
        let b = &cur.stats.blkio;
        json!({
            "io_service_bytes_recursive": blk(&b.io_service_bytes_recursive),
            "io_serviced_recursive": blk(&b.io_serviced_recursive),
            "io_queue_recursive": [], "io_service_time_recursive": [], "io_wait_time_recursive": [],
            "io_merged_recursive": [], "io_time_recursive": [], "sectors_recursive": [],
        })
    } else {
        json!({
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        })
    };
    // `limit` only when there is one (dockerd's omitempty)
    let mut pids = json!({});
    if cur.running {
        pids["current"] = json!(cur.stats.pids.current);
        if cur.stats.pids.limit > 0 {
            pids["limit"] = json!(cur.stats.pids.limit);
        }
    }
    // the memory.stat keys dockerd reports (cgroup v1 and v2 ones)
    let raw: serde_json::Map<String, Value> = m
        .raw
        .iter()
        .filter(|(k, _)| MEMORY_STAT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut v = json!({
        "read": if cur.running { rfc3339(cur.read) } else { zero_time.clone() },
        "preread": pre.map(|p| rfc3339(p.read)).unwrap_or(zero_time),
        "pids_stats": pids,
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": pre.map(cpu_json).unwrap_or_else(|| json!({"cpu_usage": {"total_usage": 0,
            "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data":
            {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})),
        "memory_stats": if cur.running {
            json!({"usage": m.usage.usage, "max_usage": m.usage.max,
                   "limit": cur.memory_limit(), "stats": raw})
        } else { json!({}) },
        "name": format!("/{name}"),
        "id": id,
    });
    // per interface, left out without a network namespace of its own
    if let Some(n) = &cur.networks {
        let nets: serde_json::Map<String, Value> = n
            .iter()
            .map(|(name, d)| {
                (
                    name.clone(),
                    json!({"rx_bytes": d.rx_bytes, "rx_packets": d.rx_packets,
                           "rx_errors": d.rx_errors, "rx_dropped": d.rx_dropped,
                           "tx_bytes": d.tx_bytes, "tx_packets": d.tx_packets,
                           "tx_errors": d.tx_errors, "tx_dropped": d.tx_dropped}),
                )
            })
            .collect();
        v["networks"] = Value::Object(nets);
    }
    v
}
