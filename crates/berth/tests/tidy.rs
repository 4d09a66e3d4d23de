//! Project rules checked as ordinary tests (docs/architecture.md, the
//! invariants section).

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Crates that are not berth itself: test equipment built on its own.
const NOT_BERTH: &[&str] = &["probe"];

/// Invariant 1: only `sys` contains unsafe code; every other crate root
/// forbids it.
#[test]
fn only_sys_contains_unsafe() {
    for e in std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "sys" || NOT_BERTH.contains(&name.as_str()) {
            continue;
        }
        let mut roots = vec![];
        for r in ["src/lib.rs", "src/main.rs"] {
            let p = e.path().join(r);
            if p.exists() {
                roots.push(p);
            }
        }
        assert!(!roots.is_empty(), "crate {name} has no lib.rs or main.rs");
        for r in roots {
            let text = std::fs::read_to_string(&r).unwrap();
            assert!(
                text.contains("#![forbid(unsafe_code)]"),
                "{} must forbid unsafe code",
                r.display()
            );
        }
        let mut files = vec![];
        rust_files(&e.path(), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                let (block, func) = (concat!("unsafe", " {"), concat!("unsafe", " fn"));
                assert!(
                    !code.contains(block) && !code.contains(func),
                    "{}:{}: unsafe outside berth-sys",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}

/// Every unsafe block in `sys` says why it is sound.
#[test]
fn every_unsafe_block_has_a_safety_comment() {
    let mut files = vec![];
    rust_files(&workspace().join("crates/sys/src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap();
            if code.contains(concat!("unsafe", " {")) {
                let window = &lines[i.saturating_sub(8)..i];
                assert!(
                    window.iter().any(|l| l.contains("// SAFETY:")) || line.contains("// SAFETY:"),
                    "{}:{}: unsafe block without a // SAFETY: comment",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}

/// No stubs that pretend: unfinished code returns a clear error instead.
#[test]
fn no_todo_or_unimplemented() {
    let mut files = vec![];
    rust_files(&workspace().join("crates"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            assert!(
                !code.contains(concat!("todo", "!("))
                    && !code.contains(concat!("unimplemented", "!(")),
                "{}:{}",
                f.display(),
                i + 1
            );
        }
    }
}

/// berth's networks live in 198.18.0.0/15; private LAN ranges never appear
/// in code.
#[test]
fn no_private_lan_addresses_in_code() {
    let mut files = vec![];
    rust_files(&workspace().join("crates"), &mut files);
    let private = |w: &str| {
        let o: Vec<u32> = w.split('.').filter_map(|x| x.parse().ok()).collect();
        o.len() == 4
            && o.iter().all(|&x| x < 256)
            && (o[0] == 10
                || (o[0] == 172 && (16..32).contains(&o[1]))
                || (o[0] == 192 && o[1] == 168))
    };
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            for w in line.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
                assert!(
                    !private(w),
                    "{}:{}: private address {w}",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}
