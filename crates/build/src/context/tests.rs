//! Tests of planning and writing copies against tempdir trees.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;

/// One entry of a written tar: (path, type, mode, uid, gid, content or link target).
type Entry = (String, tar::EntryType, u32, u64, u64, Vec<u8>);

fn entries(plan: &CopyPlan) -> Vec<Entry> {
    let mut buf = Vec::new();
    plan.write_tar(&mut buf).unwrap();
    let mut ar = tar::Archive::new(buf.as_slice());
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let body = match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                e.link_name_bytes().unwrap().into_owned()
            }
            _ => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                v
            }
        };
        out.push((
            path.trim_end_matches('/').to_owned(),
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            body,
        ));
    }
    out
}

fn names(plan: &CopyPlan) -> Vec<String> {
    entries(plan).into_iter().map(|e| e.0).collect()
}

fn find<'a>(es: &'a [Entry], path: &str) -> &'a Entry {
    es.iter().find(|e| e.0 == path).unwrap_or_else(|| {
        panic!(
            "{path} not in {:?}",
            es.iter().map(|e| &e.0).collect::<Vec<_>>()
        )
    })
}

fn req<'a>(sources: &'a [String], dest: &'a str, state: DestState) -> CopyRequest<'a> {
    CopyRequest {
        sources,
        dest,
        dest_state: state,
        owner: None,
        mode: None,
        extract_archives: false,
        parents: false,
        exclude: &[],
        inline: &[],
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// A context: app/{main.rs, lib.rs, sub/deep.txt}, README.md, notes.log.
fn context() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "app/main.rs", "fn main() {}\n");
    write(t.path(), "app/lib.rs", "pub fn f() {}\n");
    write(t.path(), "app/sub/deep.txt", "deep\n");
    write(t.path(), "README.md", "# readme\n");
    write(t.path(), "notes.log", "log\n");
    t
}

fn tree(t: &tempfile::TempDir, ignore: &str) -> SourceTree {
    SourceTree::open_dir(t.path(), Ignore::parse(ignore).unwrap()).unwrap()
}

#[test]
fn file_to_file_and_into_dirs() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["README.md"]);
    let p = tr.plan(&req(&src, "/doc.md", DestState::Missing)).unwrap();
    let es = entries(&p);
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].0, "doc.md");
    assert_eq!(es[0].5, b"# readme\n");
    assert_eq!((es[0].3, es[0].4), (0, 0), "context files become 0:0");
    // dest ending in '/': dest/basename, and the missing dir itself
    let p = tr.plan(&req(&src, "/docs/", DestState::Missing)).unwrap();
    let es = entries(&p);
    assert_eq!(names(&p), ["docs", "docs/README.md"]);
    assert_eq!(find(&es, "docs").2, 0o755);
    // an existing dir without '/': dest/basename, no dir entry
    let p = tr.plan(&req(&src, "/docs", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["docs/README.md"]);
    // leading ./ and / are the context's root
    let src = s(&["./README.md", "/notes.log"]);
    let p = tr.plan(&req(&src, "/x/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["x/README.md", "x/notes.log"]);
    assert_eq!(p.stats(), (2, 13));
}

#[test]
fn directory_contents_go_into_dest() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["app"]);
    let p = tr.plan(&req(&src, "/srv/app", DestState::Missing)).unwrap();
    assert_eq!(
        names(&p),
        [
            "srv/app",
            "srv/app/lib.rs",
            "srv/app/main.rs",
            "srv/app/sub",
            "srv/app/sub/deep.txt"
        ]
    );
    let p = tr.plan(&req(&src, "/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["lib.rs", "main.rs", "sub", "sub/deep.txt"]);
    // the whole context
    let src = s(&["."]);
    let p = tr.plan(&req(&src, "/ctx/", DestState::Dir)).unwrap();
    assert!(names(&p).contains(&"ctx/app/sub/deep.txt".to_owned()));
    // a directory onto a file is refused
    let src = s(&["app"]);
    let e = tr.plan(&req(&src, "/f", DestState::Other)).unwrap_err();
    assert!(
        e.to_string().contains("cannot copy to non-directory"),
        "{e}"
    );
}

#[test]
fn globs_match_per_component() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["app/*.rs"]);
    let p = tr.plan(&req(&src, "/out/", DestState::Missing)).unwrap();
    assert_eq!(names(&p), ["out", "out/lib.rs", "out/main.rs"]);
    let src = s(&["*/*.txt"]);
    let e = tr.plan(&req(&src, "/out/", DestState::Dir)).unwrap_err();
    assert!(
        matches!(e, ContextError::NoSources(_)),
        "a * never crosses /"
    );
    let src = s(&["app/*/*.txt", "READ?E.[mM]d"]);
    let p = tr.plan(&req(&src, "/out/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["out/deep.txt", "out/README.md"]);
    // several matches need a directory destination
    let src = s(&["app/*.rs"]);
    let e = tr.plan(&req(&src, "/out", DestState::Missing)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    );
    // matching nothing at all
    let src = s(&["*.nothing"]);
    let e = tr.plan(&req(&src, "/out/", DestState::Dir)).unwrap_err();
    assert_eq!(e.to_string(), "COPY failed: no source files were specified");
    // one empty glob beside a real source is fine (as Docker)
    let src = s(&["*.nothing", "README.md"]);
    assert!(tr.plan(&req(&src, "/out/", DestState::Dir)).is_ok());
}

#[test]
fn error_texts() {
    let t = context();
    let tr = tree(&t, "notes.log\n");
    let src = s(&["missing.txt"]);
    let e = tr.plan(&req(&src, "/", DestState::Dir)).unwrap_err();
    assert!(matches!(e, ContextError::NotFound(_)));
    assert_eq!(
        e.to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist"
    );
    let src = s(&["./notes.log"]);
    let e = tr.plan(&req(&src, "/", DestState::Dir)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat notes.log: file does not exist"
    );
    let src = s(&["../x"]);
    let e = tr.plan(&req(&src, "/", DestState::Dir)).unwrap_err();
    assert!(
        e.to_string()
            .contains("forbidden path outside the build context: ../x"),
        "{e}"
    );
    let src = s(&["app/../../etc/passwd"]);
    assert!(matches!(
        tr.plan(&req(&src, "/", DestState::Dir)),
        Err(ContextError::OutsideContext { .. })
    ));
    let mut r = req(&src, "/", DestState::Dir);
    let src2 = s(&["nope"]);
    r.sources = &src2;
    r.extract_archives = true;
    assert!(
        tr.plan(&r)
            .unwrap_err()
            .to_string()
            .starts_with("ADD failed: file not found")
    );
}

#[test]
fn dockerignore_and_exceptions() {
    let t = context();
    write(t.path(), "app/sub/keep.txt", "keep\n");
    let tr = tree(&t, "*.log\napp/sub\n!app/sub/keep.txt\n**/lib.rs\n");
    let src = s(&["."]);
    let p = tr.plan(&req(&src, "/c/", DestState::Dir)).unwrap();
    assert_eq!(
        names(&p),
        [
            "c/README.md",
            "c/app",
            "c/app/main.rs",
            "c/app/sub",
            "c/app/sub/keep.txt"
        ]
    );
    // an excluded dir without exceptions below is not entered nor emitted
    let tr = tree(&t, "app/sub\n");
    let src = s(&["app"]);
    let p = tr.plan(&req(&src, "/a/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["a/lib.rs", "a/main.rs"]);
    // an excluded dir whose exception matches nothing leaves no entry
    let tr = tree(&t, "app/sub\n!app/sub/none\n");
    let p = tr.plan(&req(&src, "/a/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["a/lib.rs", "a/main.rs"]);
    // globs skip ignored files
    let tr = tree(&t, "app/lib.rs\n");
    let src = s(&["app/*.rs"]);
    let p = tr.plan(&req(&src, "/a/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["a/main.rs"]);
}

#[test]
fn exclude_flag_and_parents() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["app"]);
    let ex = s(&["*.rs"]);
    let mut r = req(&src, "/a/", DestState::Dir);
    r.exclude = &ex;
    assert_eq!(names(&tr.plan(&r).unwrap()), ["a/sub", "a/sub/deep.txt"]);
    let ex = s(&["**/*.txt", "sub"]);
    r.exclude = &ex;
    assert_eq!(names(&tr.plan(&r).unwrap()), ["a/lib.rs", "a/main.rs"]);
    // --parents keeps the path below dest, parents emitted
    let src = s(&["app/sub/deep.txt", "app/*.rs"]);
    let mut r = req(&src, "/p/", DestState::Dir);
    r.parents = true;
    assert_eq!(
        names(&tr.plan(&r).unwrap()),
        [
            "p/app",
            "p/app/sub",
            "p/app/sub/deep.txt",
            "p/app/lib.rs",
            "p/app/main.rs"
        ]
    );
    // a directory with --parents, and a /./ pivot
    let src = s(&["app/sub", "./app/./sub/deep.txt"]);
    let mut r = req(&src, "/p/", DestState::Dir);
    r.parents = true;
    assert_eq!(
        names(&tr.plan(&r).unwrap()),
        [
            "p/app",
            "p/app/sub",
            "p/app/sub/deep.txt",
            "p/sub",
            "p/sub/deep.txt"
        ]
    );
}

#[test]
fn symlinks_stay_inside_the_tree() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret", "host secret\n");
    let t = context();
    write(t.path(), "etc/passwd", "context passwd\n");
    symlink("/etc", t.path().join("abs")).unwrap();
    symlink("../../../../../../etc/passwd", t.path().join("rel")).unwrap();
    symlink(outside.path().join("secret"), t.path().join("escape")).unwrap();
    symlink("README.md", t.path().join("readme-link")).unwrap();
    symlink("../README.md", t.path().join("app/up")).unwrap();
    let tr = tree(&t, "");
    // a symlink to /etc named as a source: the context's etc
    let src = s(&["abs/passwd"]);
    let p = tr.plan(&req(&src, "/x", DestState::Missing)).unwrap();
    assert_eq!(entries(&p)[0].5, b"context passwd\n");
    let src = s(&["rel"]);
    let p = tr.plan(&req(&src, "/x", DestState::Missing)).unwrap();
    assert_eq!(entries(&p)[0].5, b"context passwd\n", "clamped at the root");
    // a link to a host path that is not in the context: not found
    let src = s(&["escape"]);
    assert!(matches!(
        tr.plan(&req(&src, "/x", DestState::Missing)),
        Err(ContextError::NotFound(_))
    ));
    // followed when named, named by the link's own name in a dir dest
    let src = s(&["readme-link"]);
    let p = tr.plan(&req(&src, "/d/", DestState::Dir)).unwrap();
    let es = entries(&p);
    assert_eq!(es[0].0, "d/readme-link");
    assert_eq!(es[0].1, tar::EntryType::Regular);
    // below a copied directory: copied as links
    let src = s(&["app"]);
    let p = tr.plan(&req(&src, "/d/", DestState::Dir)).unwrap();
    let es = entries(&p);
    let up = find(&es, "d/up");
    assert_eq!(up.1, tar::EntryType::Symlink);
    assert_eq!(up.5, b"../README.md");
    assert_eq!(up.2, 0o777);
    // a linked directory named as a source: its contents
    symlink("app/sub", t.path().join("sublink")).unwrap();
    let src = s(&["sublink"]);
    let p = tr.plan(&req(&src, "/d/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["d/deep.txt"]);
    // read_file resolves inside too
    assert_eq!(tr.read_file("abs/passwd").unwrap(), b"context passwd\n");
    assert!(matches!(
        tr.read_file("escape"),
        Err(ContextError::NotFound(_))
    ));
    assert!(tr.read_file("../x").is_err());
}

#[test]
fn hardlinks_and_multibyte_names() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "d/été/naïve 文件.txt", "unicode\n");
    fs::hard_link(
        t.path().join("d/été/naïve 文件.txt"),
        t.path().join("d/link.txt"),
    )
    .unwrap();
    let tr = tree(&t, "");
    let src = s(&["d"]);
    let p = tr.plan(&req(&src, "/o/", DestState::Dir)).unwrap();
    let es = entries(&p);
    let link = find(&es, "o/link.txt");
    let file = find(&es, "o/été/naïve 文件.txt");
    assert_eq!(link.5, b"unicode\n");
    // sorted: "link.txt" comes before "été", so the link is the first copy
    assert_eq!(link.1, tar::EntryType::Regular);
    assert_eq!(file.1, tar::EntryType::Link);
    assert_eq!(file.5, b"o/link.txt");
    let src = s(&["d/*/naï*"]);
    let p = tr.plan(&req(&src, "/o/", DestState::Dir)).unwrap();
    assert_eq!(names(&p), ["o/naïve 文件.txt"]);
}

#[test]
fn digest_is_stable_and_sensitive() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["app", "README.md"]);
    let d = |tr: &SourceTree, r: &CopyRequest<'_>| tr.plan(r).unwrap().digest().unwrap();
    let base_req = req(&src, "/a/", DestState::Dir);
    let base = d(&tr, &base_req);
    assert_eq!(base.len(), 64);
    assert_eq!(base, d(&tr, &base_req), "stable");
    // mtime does not count
    let f = fs::File::options()
        .write(true)
        .open(t.path().join("app/main.rs"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000))
        .unwrap();
    assert_eq!(base, d(&tr, &base_req), "mtime changes nothing");
    // content, mode, owner and destination do
    fs::set_permissions(
        t.path().join("app/main.rs"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let after_mode = d(&tr, &base_req);
    assert_ne!(base, after_mode, "mode");
    write(t.path(), "app/main.rs", "fn main() { changed }\n");
    let after_content = d(&tr, &base_req);
    assert_ne!(after_mode, after_content, "content");
    let mut r = req(&src, "/a/", DestState::Dir);
    r.owner = Some((1000, 1000));
    assert_ne!(after_content, d(&tr, &r), "owner");
    r.owner = None;
    r.mode = Some(0o600);
    assert_ne!(after_content, d(&tr, &r), "chmod");
    let r = req(&src, "/b/", DestState::Dir);
    assert_ne!(after_content, d(&tr, &r), "destination");
    symlink("README.md", t.path().join("app/l")).unwrap();
    let with_link = d(&tr, &base_req);
    fs::remove_file(t.path().join("app/l")).unwrap();
    symlink("notes.log", t.path().join("app/l")).unwrap();
    assert_ne!(with_link, d(&tr, &base_req), "symlink target");
}

#[test]
fn description_like_the_classic_builder() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["README.md"]);
    let p = tr.plan(&req(&src, "/dst", DestState::Missing)).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"# readme\n"));
    assert_eq!(p.description(), format!("file:{sha} in /dst "));
    let src = s(&["app"]);
    let p = tr.plan(&req(&src, "/dst", DestState::Missing)).unwrap();
    assert!(p.description().starts_with("dir:"), "{}", p.description());
    let src = s(&["app", "README.md"]);
    let p = tr.plan(&req(&src, "/dst/", DestState::Missing)).unwrap();
    assert!(p.description().starts_with("multi:"), "{}", p.description());
    assert!(p.description().ends_with(" in /dst/ "));
}

#[test]
fn chmod_chown_and_inline_sources() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["app"]);
    let mut r = req(&src, "/a", DestState::Missing);
    r.owner = Some((1000, 2000));
    r.mode = Some(0o640);
    let es = entries(&tr.plan(&r).unwrap());
    let dest = find(&es, "a");
    assert_eq!(
        (dest.2, dest.3, dest.4),
        (0o755, 1000, 2000),
        "the created dest dir"
    );
    let f = find(&es, "a/main.rs");
    assert_eq!((f.2, f.3, f.4), (0o640, 1000, 2000));
    let inline = vec![("script.sh".to_owned(), b"echo hi\n".to_vec())];
    let none: Vec<String> = Vec::new();
    let mut r = req(&none, "/bin/", DestState::Dir);
    r.inline = &inline;
    let p = tr.plan(&r).unwrap();
    let es = entries(&p);
    assert_eq!(es.len(), 1);
    assert_eq!((es[0].0.as_str(), es[0].2), ("bin/script.sh", 0o644));
    assert_eq!(es[0].5, b"echo hi\n");
    r.mode = Some(0o755);
    assert_eq!(entries(&tr.plan(&r).unwrap())[0].2, 0o755);
}

#[test]
fn from_fd_keeps_owners() {
    let t = context();
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: chown needs root");
        return;
    }
    std::os::unix::fs::chown(t.path().join("README.md"), Some(123), Some(456)).unwrap();
    let fd = rustix::fs::open(
        t.path(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let tr = SourceTree::from_fd(fd, Ignore::empty()).unwrap();
    let src = s(&["README.md"]);
    let es = entries(&tr.plan(&req(&src, "/r", DestState::Missing)).unwrap());
    assert_eq!((es[0].3, es[0].4), (123, 456), "--from keeps the owner");
    let e = tr
        .plan(&req(&s(&["nope"]), "/r", DestState::Missing))
        .unwrap_err();
    assert_eq!(e.to_string(), "COPY failed: stat nope: file does not exist");
    // the context maps owners to 0:0
    let es = entries(
        &tree(&t, "")
            .plan(&req(&src, "/r", DestState::Missing))
            .unwrap(),
    );
    assert_eq!((es[0].3, es[0].4), (0, 0));
}

/// A small tar: dir/, dir/a.txt, link -> dir/a.txt, hard -> dir/a.txt.
fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_size(0);
    b.append_data(&mut h, "./dir/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_uid(7);
    h.set_size(5);
    b.append_data(&mut h, "dir/a.txt", &b"hello"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "link", "/etc/passwd").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "hard", "dir/a.txt").unwrap();
    b.into_inner().unwrap()
}

fn compressed(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "tar" => data.to_vec(),
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6))
                    .unwrap();
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 3).unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn add_extracts_archives_of_every_compression() {
    let t = tempfile::tempdir().unwrap();
    for kind in ["tar", "gz", "bz2", "xz", "zst"] {
        fs::write(
            t.path().join(format!("a.{kind}")),
            compressed(kind, &sample_tar()),
        )
        .unwrap();
    }
    let tr = tree(&t, "");
    for kind in ["tar", "gz", "bz2", "xz", "zst"] {
        let src = vec![format!("a.{kind}")];
        let mut r = req(&src, "/opt/x", DestState::Missing);
        r.extract_archives = true;
        let p = tr.plan(&r).unwrap();
        let es = entries(&p);
        assert_eq!(
            es.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            [
                "opt/x",
                "opt/x/dir",
                "opt/x/dir/a.txt",
                "opt/x/link",
                "opt/x/hard"
            ],
            "{kind}"
        );
        let a = find(&es, "opt/x/dir/a.txt");
        assert_eq!(
            (a.2, a.3, a.5.as_slice()),
            (0o600, 7, &b"hello"[..]),
            "{kind}"
        );
        assert_eq!(find(&es, "opt/x/dir").2, 0o750);
        assert_eq!(find(&es, "opt/x/link").5, b"/etc/passwd");
        let hard = find(&es, "opt/x/hard");
        assert_eq!(
            (hard.1, hard.5.as_slice()),
            (tar::EntryType::Link, &b"opt/x/dir/a.txt"[..])
        );
        assert!(p.description().starts_with("file:"));
        // COPY copies the archive as it is
        r.extract_archives = false;
        let es = entries(&tr.plan(&r).unwrap());
        assert_eq!(es.len(), 1, "{kind}");
        assert_eq!(es[0].0, "opt/x");
    }
    // not an archive: copied as a file even by ADD
    fs::write(t.path().join("plain.gz"), b"not gzip at all").unwrap();
    let src = s(&["plain.gz"]);
    let mut r = req(&src, "/o/", DestState::Dir);
    r.extract_archives = true;
    assert_eq!(names(&tr.plan(&r).unwrap()), ["o/plain.gz"]);
}

#[test]
fn hostile_archives_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut raw = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    // the tar crate refuses to write "..": set the name bytes directly
    h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../../escape");
    h.set_cksum();
    raw.append(&h, &b"evil"[..]).unwrap();
    fs::write(t.path().join("evil.tar"), raw.into_inner().unwrap()).unwrap();
    let mut hl = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"link");
    h.as_gnu_mut().unwrap().linkname[..13].copy_from_slice(b"../etc/shadow");
    h.set_cksum();
    hl.append(&h, std::io::empty()).unwrap();
    fs::write(t.path().join("evil-link.tar"), hl.into_inner().unwrap()).unwrap();
    let tr = tree(&t, "");
    for name in ["evil.tar", "evil-link.tar"] {
        let src = vec![name.to_owned()];
        let mut r = req(&src, "/dst/", DestState::Dir);
        r.extract_archives = true;
        let p = tr.plan(&r).unwrap();
        let e = p.write_tar(std::io::sink()).unwrap_err().to_string();
        assert!(e.contains("leaves the destination"), "{name}: {e}");
    }
}

#[test]
fn changed_files_are_noticed() {
    let t = context();
    let tr = tree(&t, "");
    let src = s(&["README.md"]);
    let p = tr.plan(&req(&src, "/r", DestState::Missing)).unwrap();
    write(t.path(), "README.md", "# other!\n");
    let e = p.write_tar(std::io::sink()).unwrap_err();
    assert!(matches!(e, ContextError::Changed(_)), "{e}");
}

#[test]
fn trees_and_files() {
    let t = context();
    let tr = tree(&t, "README.md\n");
    assert_eq!(
        tr.read_file("README.md").unwrap(),
        b"# readme\n",
        "ignore does not hide the Dockerfile"
    );
    assert!(matches!(
        tr.read_file("nope"),
        Err(ContextError::NotFound(_))
    ));
    assert!(tr.read_file("app").is_err());
    assert!(SourceTree::open_dir(&t.path().join("nope"), Ignore::empty()).is_err());
    let f = fs::File::open(t.path().join("README.md")).unwrap();
    assert!(SourceTree::from_fd(f.into(), Ignore::empty()).is_err());
}
