//! `COPY` and `ADD`: sources from the build context, another stage or an
//! image (`--from`), here-documents, and for `ADD` local archives (unpacked)
//! and `http(s)://` URLs; the result is a layer made in a step container
//! (written through the engine's in-root extraction) and committed.

use berth_types::Digest;

use super::cache::Key;
use super::error::{BuildError, at};
use super::eval;
use super::run::{StepContainer, spec};
use super::stage::{Builder, StageState, join_workdir};
use crate::context::{CopyRequest, DestState, Ignore, SourceTree};
use crate::dockerfile::{Copy, Instruction, Located};

/// Whether an `ADD` source is a remote one.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || s.starts_with("ssh://")
        || ((s.starts_with("http://") || s.starts_with("https://"))
            && (s.ends_with(".git") || s.contains(".git#")))
}

/// `--chown=user[:group]` with names looked up in the image; a user alone
/// gives the same number as the group (Docker's rule).
fn chown(
    b: &Builder<'_>,
    image: Option<&Digest>,
    spec: &str,
    line: usize,
) -> Result<(u32, u32), BuildError> {
    let read = |path: &str| -> Option<String> {
        let id = image?;
        b.engine
            .images()
            .read_file(id, path, 4 << 20)
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &Option<String>, name: &str, what: &str| -> Result<u32, BuildError> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        file.as_deref()
            .unwrap_or("")
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[0] == name).then(|| f[2].parse::<u32>().ok())?
            })
            .ok_or_else(|| {
                at(
                    line,
                    format!("unable to convert uid/gid chown string to host mapping: can't find {what} for {what} name {name}"),
                )
            })
    };
    if u.is_empty() {
        return Err(at(line, format!("invalid --chown value {spec:?}")));
    }
    let passwd = read("/etc/passwd");
    let uid = lookup(&passwd, u, "uid")?;
    let gid = match g {
        Some(g) if !g.is_empty() => lookup(&read("/etc/group"), g, "gid")?,
        _ => uid,
    };
    Ok((uid, gid))
}

fn chmod(spec: &str, line: usize) -> Result<u32, BuildError> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            at(
                line,
                format!("invalid chmod parameter: {spec}: only octal modes are supported"),
            )
        })
}

pub(crate) fn copy(
    b: &mut Builder<'_>,
    st: &mut StageState,
    c: &Copy,
    ins: &Located<Instruction>,
    add: bool,
) -> Result<(), BuildError> {
    let line = ins.line;
    let esc = b.escape;
    let word = if add { "ADD" } else { "COPY" };
    let mut sources = Vec::new();
    for s in &c.sources {
        if s.starts_with("<<")
            && c.heredocs.iter().any(|h| {
                s.trim_start_matches("<<-")
                    .trim_start_matches("<<")
                    .trim_matches(|c| c == '"' || c == '\'')
                    == h.name
            })
        {
            continue;
        }
        sources.push(st.vars().word(s, esc, line)?);
    }
    let dest_raw = st.vars().word(&c.dest, esc, line)?;
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        let mut d = join_workdir(&st.cc().working_dir, &dest_raw);
        if (dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/."))
            && !d.ends_with('/')
        {
            d.push('/');
        }
        d
    };
    let owner = match &c.chown {
        Some(s) => Some(chown(
            b,
            st.image.as_ref(),
            &st.vars().word(s, esc, line)?,
            line,
        )?),
        None => None,
    };
    let mode = match &c.chmod {
        Some(s) => Some(chmod(&st.vars().word(s, esc, line)?, line)?),
        None => None,
    };
    let mut exclude = Vec::new();
    for e in &c.exclude {
        exclude.push(st.vars().word(e, esc, line)?);
    }
    let mut inline = Vec::new();
    for h in &c.heredocs {
        let content = if h.expand {
            crate::dockerfile::shell::expand_heredoc(&h.content, esc, &|n| st.vars().get(n))
                .map_err(|e| at(line, e.to_string()))?
        } else {
            h.content.clone()
        };
        inline.push((h.name.clone(), content.into_bytes()));
    }
    // where the sources come from; a downloaded file is never unpacked
    // (Docker extracts local archives only)
    let remote = c.from.is_none() && sources.iter().any(|s| is_url(s));
    let from_tree;
    let url_dir;
    let tree: &SourceTree = match &c.from {
        Some(f) => {
            let f = st.vars().word(f, esc, line)?;
            let id = match b.stage_ref(&f, st.index, line)? {
                Some(j) => b
                    .stage_result(j)
                    .ok_or_else(|| at(line, format!("stage {f} was not built")))?,
                None => b.base_image(&f, line)?,
            };
            from_tree = SourceTree::from_fd(b.engine.image_root(&id)?, Ignore::empty())?;
            &from_tree
        }
        None if sources.iter().any(|s| is_url(s) || is_git(s)) => {
            if let Some(g) = sources.iter().find(|s| is_git(s)) {
                return Err(BuildError::NotSupported(format!(
                    "{word} of a git repository ({g})"
                )));
            }
            if !add {
                return Err(at(line, "source can't be a URL for COPY"));
            }
            if sources.len() != 1 {
                return Err(BuildError::NotSupported(
                    "ADD of a URL together with other sources".into(),
                ));
            }
            let (dir, name) = super::fetch::download(b, &sources[0], c.checksum.as_deref(), line)?;
            sources = vec![name];
            url_dir = dir;
            from_tree = SourceTree::open_dir(url_dir.path(), Ignore::empty())?;
            &from_tree
        }
        None => b.ctx,
    };
    if c.checksum.is_some() && !remote {
        return Err(at(
            line,
            "checksum can't be specified for non-HTTP(S) sources",
        ));
    }
    let dest_for_stat = dest.clone();
    let req = |state| CopyRequest {
        sources: &sources,
        dest: &dest,
        dest_state: state,
        owner,
        mode,
        extract_archives: add && !remote,
        parents: c.parents,
        exclude: &exclude,
        inline: &inline,
    };
    // the key: the content of the sources (as copied to a new place) and
    // the destination as written; what is at the destination follows from
    // the parent, which the key holds
    let probe = tree
        .plan(&req(DestState::Missing))
        .or_else(|_| tree.plan(&req(DestState::Dir)))?;
    let digest = probe.digest()?;
    let description = probe.description();
    let shell = eval::shell_of(st.cc());
    let created_by = format!("{} #(nop) {word} {description}", shell.join(" "));
    let mut key = Key::new(st.image.as_ref());
    key.add(word, dest_for_stat.as_bytes());
    key.add("content", digest.as_bytes());
    key.describe(&created_by, Some(false));
    key.add(
        "owner",
        format!("{owner:?} {mode:?} {}", c.parents).as_bytes(),
    );
    let cfg = st.config.clone();
    let mut cspec = spec(b, st, vec![format!("#(nop) {word}")]);
    cspec.network.mode = berth_engine::config::NetworkMode::None;
    b.finish_step(
        st,
        key,
        move |b, cfg| {
            let c = StepContainer::create(b.engine, &cspec)?;
            let state = match b
                .engine
                .archive_stat(&c.id, dest_for_stat.trim_end_matches('/'))
            {
                Ok(s) if s.mode & (1 << 31) != 0 => DestState::Dir,
                Ok(_) => DestState::Other,
                Err(_) => DestState::Missing,
            };
            let plan = tree.plan(&req(state))?;
            let (reader, writer) =
                std::io::pipe().map_err(|e| BuildError::Io("make a pipe".into(), e))?;
            let put = std::thread::scope(|s| {
                let w = s.spawn(move || plan.write_tar(std::io::BufWriter::new(writer)));
                let put = b.engine.archive_put(&c.id, "/", reader, None);
                let wrote = w.join().map_err(|_| {
                    BuildError::Io(
                        "write the copy".into(),
                        std::io::Error::other("writer panicked"),
                    )
                })?;
                put.map_err(BuildError::from)?;
                wrote.map_err(BuildError::from)
            });
            put?;
            let id = c.commit(cfg.clone(), &created_by)?;
            Ok(id)
        },
        cfg,
    )
}
