//! Images as `GET /images/{name}/json` shows them.

use serde_json::Value;

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
