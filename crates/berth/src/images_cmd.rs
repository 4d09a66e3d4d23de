//! `berth images`, `image inspect`, `history`, `tag`, `rmi`, `load`,
//! `save`, `import`, `image prune`: docker's verbs, flags and output.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use berth_engine::Engine;
use berth_engine::filter::Filters;
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

/// The docker inspect document of an image.
pub fn inspect_json(store: &ImageStore, id: &berth_types::Digest) -> Result<serde_json::Value> {
    Ok(berth_docker_api::shapes::image_inspect(store, id, 99)?)
}

/// `berth images`: the engine's list with docker's filters (a positional
/// `REPOSITORY[:TAG]` is a `reference` filter, as the docker CLI sends it).
pub fn images(engine: &Engine, a: &ImagesArgs) -> Result<()> {
    let mut pairs = a.filter.clone();
    if let Some(r) = &a.reference {
        pairs.push(format!("reference={r}"));
    }
    let f = Filters::from_pairs(pairs.iter().map(String::as_str))?;
    let mut rows: Vec<(String, String, String, berth_image::ImageSummary)> = Vec::new();
    for l in engine.list_images(&f, a.all)? {
        let s = l.summary;
        let digest = s
            .record
            .index_digest
            .clone()
            .unwrap_or(s.record.manifest.clone())
            .to_string();
        if s.tags.is_empty() {
            // a name by digest only shows its repository with no tag
            let repo = s
                .digests
                .first()
                .and_then(|d| Reference::parse(d).ok())
                .map_or_else(|| "<none>".to_owned(), |r| r.familiar_repository());
            rows.push((repo, "<none>".into(), digest, s));
            continue;
        }
        for t in &s.tags {
            let Ok(r) = Reference::parse(t) else { continue };
            let tag = r.tag().unwrap_or("<none>").to_owned();
            rows.push((r.familiar_repository(), tag, digest.clone(), s.clone()));
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

/// `berth history`: the image's steps, newest first; a step shows the id
/// of the image it made where one is known (the image and the images it
/// was committed from), `<missing>` elsewhere.
pub fn history(
    engine: &Engine,
    image: &str,
    no_trunc: bool,
    quiet: bool,
    human: bool,
) -> Result<()> {
    let entries = engine.image_history(image)?;
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for e in entries {
        let id =
            e.id.as_ref()
                .map_or_else(|| "<missing>".to_owned(), |d| short_id(d, no_trunc));
        if quiet {
            println!("{id}");
            continue;
        }
        let mut by = e.created_by;
        if !no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        let created = if human {
            e.created
                .as_deref()
                .and_then(age_secs)
                .map(|x| format!("{} ago", human_duration(x)))
                .unwrap_or_default()
        } else {
            e.created.unwrap_or_default()
        };
        let size = if human {
            human_size(e.size)
        } else {
            e.size.to_string()
        };
        t.row(vec![id, created, by, size, e.comment]);
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

/// `berth rmi`: each name through the engine (its untag and delete
/// events), then, unless `no_prune`, the layers nothing uses any more.
pub fn rmi(engine: &Engine, images: &[String], force: bool, no_prune: bool) -> Result<()> {
    let mut errors = Vec::new();
    for i in images {
        match engine.remove_image(i, force) {
            Ok(r) => print_removed(&r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !no_prune {
        let used = engine.images_in_use();
        engine.images().gc(&|d| used.contains(d))?;
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

/// `berth image prune`: dangling images (all unused ones with `all`)
/// passing `filters` (`until`, `label`, `label!`), through the engine.
pub fn prune(engine: &Engine, all: bool, filters: &[String]) -> Result<()> {
    let mut pairs = filters.to_vec();
    if all {
        pairs.push("dangling=false".into());
    }
    let f = Filters::from_pairs(pairs.iter().map(String::as_str))?;
    let until = match f.get("until") {
        [] => None,
        [u] => Some(
            berth_docker_api::syntax::parse_timestamp(u, crate::format::now_ns())
                .map_err(|m| anyhow::anyhow!("{m}"))?,
        ),
        _ => bail!("more than one until filter specified"),
    };
    let (removed, gc) = engine.prune_images(&f, until)?;
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
pub fn load(engine: &Engine, input: Option<&Path>, quiet: bool) -> Result<()> {
    let loaded = match input {
        Some(p) if p.is_dir() => engine.load_oci_dir(p)?,
        Some(p) => engine.load_images(
            std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?,
        )?,
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            engine.load_images(std::io::stdin().lock())?
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
pub fn save(engine: &Engine, images: &[String], output: Option<&Path>, format: &str) -> Result<()> {
    let write = |w: &mut dyn Write| -> Result<()> {
        match format {
            "docker-archive" | "docker" => engine.save_images(images, w)?,
            "oci-archive" | "oci" => engine.save_images_oci(images, w)?,
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
    engine: &Engine,
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
        engine.import_image(std::io::stdin().lock(), config, message, name.as_ref())?
    } else if source.starts_with("http://") || source.starts_with("https://") {
        bail!("not supported yet: importing from a URL");
    } else {
        let f = std::fs::File::open(source).with_context(|| format!("open {source}"))?;
        engine.import_image(f, config, message, name.as_ref())?
    };
    println!("{id}");
    Ok(())
}
