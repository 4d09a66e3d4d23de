//! Images as `GET /images/{name}/json`, `GET /images/json` and
//! `GET /images/{name}/history` show them, shaped by the API version the
//! way dockerd shapes them (`VirtualSize` before 1.44, `Container` and
//! `ContainerConfig` before 1.45).

use std::collections::BTreeSet;

use berth_engine::images::{HistoryEntry, ListedImage};
use berth_types::Digest;
use serde_json::{Map, Value, json};

/// The keys dockerd's container `Config` always has, with their empty
/// values (the others it leaves out when empty).
const CONFIG_KEYS: &[(&str, Empty)] = &[
    ("Hostname", Empty::Str),
    ("Domainname", Empty::Str),
    ("User", Empty::Str),
    ("AttachStdin", Empty::False),
    ("AttachStdout", Empty::False),
    ("AttachStderr", Empty::False),
    ("Tty", Empty::False),
    ("OpenStdin", Empty::False),
    ("StdinOnce", Empty::False),
    ("Env", Empty::Null),
    ("Cmd", Empty::Null),
    ("Image", Empty::Str),
    ("Volumes", Empty::Null),
    ("WorkingDir", Empty::Str),
    ("Entrypoint", Empty::Null),
    ("OnBuild", Empty::Null),
    ("Labels", Empty::Null),
];

/// The empty value of a `Config` key.
#[derive(Clone, Copy)]
enum Empty {
    Str,
    False,
    Null,
}

impl Empty {
    fn value(self) -> Value {
        match self {
            Empty::Str => json!(""),
            Empty::False => json!(false),
            Empty::Null => Value::Null,
        }
    }
}

/// A container configuration (as an image config holds it) in the shape
/// of dockerd's `Config`.
pub fn docker_config(v: Value) -> Value {
    let mut o = match v {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    for (k, empty) in CONFIG_KEYS {
        o.entry(*k).or_insert_with(|| empty.value());
    }
    // dockerd leaves these out when empty
    for k in ["ExposedPorts", "Healthcheck", "Shell", "StopSignal"] {
        if o.get(k).is_some_and(|v| {
            v.is_null()
                || v.as_object().is_some_and(Map::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_str() == Some("")
        }) {
            o.remove(k);
        }
    }
    Value::Object(o)
}

fn familiar(n: &str) -> String {
    berth_types::Reference::parse(n)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| n.to_owned())
}

/// The docker inspect document of an image, for API version 1.`minor`.
pub fn image_inspect(
    store: &berth_image::ImageStore,
    id: &Digest,
    minor: u32,
) -> Result<Value, berth_image::Error> {
    let rec = store
        .db()
        .image(id)?
        .ok_or_else(|| berth_image::Error::NotFound(format!("No such image: {id}")))?;
    let cfg = store.config(id)?;
    let names = store.names(id)?;
    let of_kind = |kind: &str| -> Vec<String> {
        names
            .iter()
            .filter(|(_, k)| k == kind)
            .map(|(n, _)| familiar(n))
            .collect()
    };
    let layers = store.prepare(id).unwrap_or_default();
    let to_s = |p: &std::path::Path| p.display().to_string();
    let mut graph = Map::new();
    if let Some((top, rest)) = layers.split_last() {
        let lower: Vec<String> = rest.iter().rev().map(|p| to_s(p)).collect();
        if !lower.is_empty() {
            graph.insert("LowerDir".into(), lower.join(":").into());
        }
        // the snapshot's `fs`; merged and work as dockerd names them for a
        // layer (made only when something mounts it)
        let snap = top.parent().unwrap_or(top);
        graph.insert("MergedDir".into(), to_s(&snap.join("merged")).into());
        graph.insert("UpperDir".into(), to_s(top).into());
        graph.insert("WorkDir".into(), to_s(&snap.join("work")).into());
    }
    let config = serde_json::to_value(cfg.config.clone().unwrap_or_default())
        .map_err(|e| berth_image::Error::Invalid(e.to_string()))?;
    let comment = cfg
        .extra
        .get("comment")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .or_else(|| cfg.history.last().and_then(|h| h.comment.clone()))
        .unwrap_or_default();
    let mut v = json!({
        "Id": id.to_string(),
        "RepoTags": of_kind("tag"),
        "RepoDigests": of_kind("digest"),
        "Parent": rec.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "Comment": comment,
        "Created": cfg.created.clone().unwrap_or_default(),
        "DockerVersion": cfg.extra.get("docker_version").cloned().unwrap_or("".into()),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": docker_config(config),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": rec.size,
        "GraphDriver": {"Name": "overlay2", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": rec.added},
    });
    if let Some(var) = &cfg.variant {
        v["Variant"] = json!(var);
    }
    if minor < 44 {
        v["VirtualSize"] = json!(rec.size);
    }
    if minor < 45 {
        v["Container"] = cfg.extra.get("container").cloned().unwrap_or("".into());
        v["ContainerConfig"] = docker_config(
            cfg.extra
                .get("container_config")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    if minor >= 48 {
        v["Descriptor"] = json!({"mediaType": rec.manifest_media_type,
            "digest": rec.manifest.to_string(),
            "size": store.content().size(&rec.manifest).unwrap_or(0)});
    }
    Ok(v)
}

/// `GET /images/json` entries (API 1.`minor`). `in_use` counts the
/// containers of each image (`system df`); without it `Containers` is -1,
/// as dockerd lists them.
pub fn image_summaries(
    list: &[ListedImage],
    in_use: Option<&BTreeSet<Digest>>,
    minor: u32,
) -> Vec<Value> {
    list.iter()
        .map(|l| {
            let s = &l.summary;
            let created = s
                .record
                .created
                .as_deref()
                .and_then(super::text::unix_secs)
                .unwrap_or(0);
            let names = |v: &[String]| -> Value {
                if v.is_empty() {
                    Value::Null
                } else {
                    json!(v.iter().map(|n| familiar(n)).collect::<Vec<_>>())
                }
            };
            let (tags, digests) = if s.tags.is_empty() && s.digests.is_empty() {
                (json!(["<none>:<none>"]), json!(["<none>@<none>"]))
            } else {
                (names(&s.tags), names(&s.digests))
            };
            let mut v = json!({
                "Id": s.record.id.to_string(),
                "ParentId": s.record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                "RepoTags": tags,
                "RepoDigests": digests,
                "Created": created,
                "Size": s.record.size,
                "SharedSize": -1,
                "Labels": if l.labels.is_empty() { Value::Null } else { json!(l.labels) },
                "Containers": in_use.map_or(-1, |u| i64::from(u.contains(&s.record.id))),
            });
            if minor < 44 {
                v["VirtualSize"] = json!(s.record.size);
            }
            v
        })
        .collect()
}

/// `GET /images/{name}/history` entries.
pub fn image_history(entries: &[HistoryEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "Comment": e.comment,
                    "Created": e.created.as_deref().and_then(super::text::unix_secs).unwrap_or(0),
                    "CreatedBy": e.created_by,
                    "Id": e.id.as_ref().map_or_else(|| "<missing>".to_owned(), |d| d.to_string()),
                    "Size": e.size,
                    "Tags": if e.tags.is_empty() { Value::Null } else { json!(e.tags) },
                })
            })
            .collect(),
    )
}
