//! `berth images`, `image inspect`, `history`, `tag`, `rmi`, `load`,
//! `save`, `import`, `image prune`: docker's verbs, flags and output.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use berth_image::{ImageStore, Removed};
use berth_types::Reference;
use clap::Args;

use crate::format::{Table, age_secs, human_duration, human_size, print_formatted};

/// `berth images`.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (including intermediate ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Go-template-like format, or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// Filters (`dangling=true`, `reference=busybox*`).
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Only this repository[:tag].
    pub reference: Option<String>,
}

fn short_id(d: &berth_types::Digest, no_trunc: bool) -> String {
    if no_trunc {
        d.to_string()
    } else {
        d.short().to_owned()
    }
}

fn glob(pat: &str, s: &str) -> bool {
    // `*` matches within a path segment, as Docker's reference filter
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && m(p, &s[1..])),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pat.as_bytes(), s.as_bytes())
}

/// The docker inspect document of an image.
pub fn inspect_json(store: &ImageStore, id: &berth_types::Digest) -> Result<serde_json::Value> {
    Ok(berth_docker_api::shapes::image_inspect(store, id, 99)?)
}

/// `berth images`.
pub fn images(store: &ImageStore, a: &ImagesArgs) -> Result<()> {
    let mut rows: Vec<(String, String, String, berth_image::ImageSummary)> = Vec::new();
    let mut dangling_filter = None;
    let mut ref_filters = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => dangling_filter = Some(v == "true" || v == "1"),
            Some(("reference", v)) => ref_filters.push(v.to_owned()),
            _ => bail!("invalid filter '{f}'"),
        }
    }
    if let Some(r) = &a.reference {
        ref_filters.push(r.clone());
    }
    for s in store.list()? {
        let dangling = s.tags.is_empty();
        if dangling_filter.is_some_and(|want| want != dangling) {
            continue;
        }
        let digest = s
            .record
            .index_digest
            .clone()
            .unwrap_or(s.record.manifest.clone())
            .to_string();
        if dangling {
            if ref_filters.is_empty() {
                rows.push(("<none>".into(), "<none>".into(), digest.clone(), s.clone()));
            }
            continue;
        }
        for t in &s.tags {
            let Ok(r) = Reference::parse(t) else { continue };
            let repo = r.familiar_repository();
            let tag = r.tag().unwrap_or("<none>").to_owned();
            if !ref_filters.is_empty()
                && !ref_filters
                    .iter()
                    .any(|f| glob(f, &repo) || glob(f, &format!("{repo}:{tag}")))
            {
                continue;
            }
            rows.push((repo, tag, digest.clone(), s.clone()));
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for (_, _, _, s) in &rows {
            let id = short_id(&s.record.id, a.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    if let Some(fmt) = &a.format {
        let fmt = if fmt == "json" {
            "{{json .}}"
        } else {
            fmt.as_str()
        };
        let items: Vec<_> = rows
            .iter()
            .map(|(repo, tag, digest, s)| {
                let mut f = BTreeMap::new();
                f.insert("ID".into(), short_id(&s.record.id, a.no_trunc));
                f.insert("Repository".into(), repo.clone());
                f.insert("Tag".into(), tag.clone());
                f.insert("Digest".into(), digest.clone());
                let since = s
                    .record
                    .created
                    .as_deref()
                    .and_then(age_secs)
                    .map(|x| format!("{} ago", human_duration(x)))
                    .unwrap_or_default();
                f.insert("CreatedSince".into(), since);
                f.insert(
                    "CreatedAt".into(),
                    s.record.created.clone().unwrap_or_default(),
                );
                f.insert("Size".into(), human_size(s.record.size));
                let j = serde_json::to_value(&f).unwrap_or_default();
                (f, j)
            })
            .collect();
        let headers: BTreeMap<&str, &str> = [
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
        ]
        .into_iter()
        .collect();
        print_formatted(fmt, &items, &headers);
        return Ok(());
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if a.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut t = Table::new(&header);
    for (repo, tag, digest, s) in rows {
        let mut r = vec![repo, tag];
        if a.digests {
            r.push(digest);
        }
        r.push(short_id(&s.record.id, a.no_trunc));
        r.push(
            s.record
                .created
                .as_deref()
                .and_then(age_secs)
                .map(|x| format!("{} ago", human_duration(x)))
                .unwrap_or_else(|| "N/A".into()),
        );
        r.push(human_size(s.record.size));
        t.row(r);
    }
    print!("{}", t.render());
    Ok(())
}

/// `berth image inspect`.
pub fn inspect(store: &ImageStore, images: &[String], format: Option<&str>) -> Result<()> {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for i in images {
        match store.resolve(i) {
            Ok(rec) => docs.push(inspect_json(store, &rec.id)?),
            Err(e) => missing.push(e.to_string()),
        }
    }
    crate::format::print_inspect(&docs, format)?;
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    Ok(())
}

/// `berth history`.
pub fn history(
    store: &ImageStore,
    image: &str,
    no_trunc: bool,
    quiet: bool,
    human: bool,
) -> Result<()> {
    let rec = store.resolve(image)?;
    let cfg = store.config(&rec.id)?;
    let _ = store.prepare(&rec.id);
    let db = store.db();
    let mut layer_sizes: Vec<u64> = Vec::new();
    let chains = berth_types::image::chain_ids(&cfg.rootfs.diff_ids, |b| {
        berth_image::store::sha256(b).hex().to_owned()
    });
    for c in &chains {
        layer_sizes.push(db.snapshot(c)?.map(|s| s.size).unwrap_or(0));
    }
    drop(db);
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    let mut li = layer_sizes.len();
    let entries: Vec<_> = cfg.history.iter().rev().collect();
    for (i, h) in entries.iter().enumerate() {
        let size = if h.empty_layer {
            0
        } else {
            li = li.saturating_sub(1);
            layer_sizes.get(li).copied().unwrap_or(0)
        };
        let id = if i == 0 {
            short_id(&rec.id, no_trunc)
        } else {
            "<missing>".into()
        };
        if quiet {
            println!("{id}");
            continue;
        }
        let mut by = h.created_by.clone().unwrap_or_default();
        if !no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        let created = h
            .created
            .as_deref()
            .and_then(age_secs)
            .map(|x| format!("{} ago", human_duration(x)))
            .unwrap_or_default();
        let size = if human {
            human_size(size)
        } else {
            size.to_string()
        };
        t.row(vec![
            id,
            if human {
                created
            } else {
                h.created.clone().unwrap_or_default()
            },
            by,
            size,
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    if !quiet {
        print!("{}", t.render());
    }
    Ok(())
}

/// Prints `rmi` results.
pub fn print_removed(r: &[Removed]) {
    for x in r {
        match x {
            Removed::Untagged(n) => println!("Untagged: {n}"),
            Removed::Deleted(d) => println!("Deleted: {d}"),
        }
    }
}

/// `berth rmi`.
pub fn rmi(
    store: &ImageStore,
    images: &[String],
    force: bool,
    no_prune: bool,
    in_use: &dyn Fn(&berth_types::Digest) -> bool,
) -> Result<()> {
    let mut errors = Vec::new();
    for i in images {
        match store.remove(i, force, in_use) {
            Ok(r) => print_removed(&r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !no_prune {
        store.gc(in_use)?;
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

/// `berth image prune`.
pub fn prune(
    store: &ImageStore,
    all: bool,
    in_use: &dyn Fn(&berth_types::Digest) -> bool,
) -> Result<()> {
    let (removed, gc) = store.prune(all, in_use)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match r {
                Removed::Untagged(n) => println!("untagged: {n}"),
                Removed::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(gc.bytes));
    Ok(())
}

/// `berth load`.
pub fn load(store: &ImageStore, input: Option<&Path>, quiet: bool) -> Result<()> {
    let loaded = match input {
        Some(p) if p.is_dir() => store.load_oci_dir(p)?,
        Some(p) => {
            store.load(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?)?
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            store.load(std::io::stdin().lock())?
        }
    };
    // (-q only silences progress, which loading from a file has none of)
    let _ = quiet;
    for l in loaded {
        if l.names.is_empty() {
            println!("Loaded image ID: {}", l.id);
        }
        for n in l.names {
            println!("Loaded image: {}", n.familiar());
        }
    }
    Ok(())
}

/// `berth save`.
pub fn save(
    store: &ImageStore,
    images: &[String],
    output: Option<&Path>,
    format: &str,
) -> Result<()> {
    let write = |w: &mut dyn Write| -> Result<()> {
        match format {
            "docker-archive" | "docker" => store.save_docker(images, w)?,
            "oci-archive" | "oci" => store.save_oci(images, w)?,
            other => bail!("unknown --format {other:?} (docker-archive or oci-archive)"),
        }
        Ok(())
    };
    match output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let mut f =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let r = write(&mut f).and_then(|_| Ok(f.sync_all()?));
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
            std::fs::rename(&tmp, p)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Applies `docker import --change` instructions to a config.
pub fn apply_changes(changes: &[String]) -> Result<berth_types::image::ContainerConfig> {
    berth_docker_api::syntax::apply_changes(Default::default(), changes)
        .map_err(|m| anyhow::anyhow!("{m}"))
}

/// `berth import`.
pub fn import(
    store: &ImageStore,
    source: &str,
    reference: Option<&str>,
    changes: &[String],
    message: Option<&str>,
) -> Result<()> {
    let name = reference
        .map(Reference::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = apply_changes(changes)?;
    let id = if source == "-" {
        store.import(std::io::stdin().lock(), config, message, name.as_ref())?
    } else if source.starts_with("http://") || source.starts_with("https://") {
        bail!("not supported yet: importing from a URL");
    } else {
        let f = std::fs::File::open(source).with_context(|| format!("open {source}"))?;
        store.import(f, config, message, name.as_ref())?
    };
    println!("{id}");
    Ok(())
}
