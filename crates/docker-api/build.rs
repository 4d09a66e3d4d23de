//! Puts the git commit berth is built from into `BERTH_GIT_COMMIT`
//! (`GET /version`'s `GitCommit`). Outside a git checkout, or without git,
//! nothing is set and the version shows the crate version instead.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let Some(commit) = git(&["rev-parse", "--short=7", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    // built again when HEAD moves: HEAD itself, the branch it names, the
    // packed refs (only files that exist, or cargo reruns every time)
    let dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watch = Vec::new();
    if let Some(d) = &dir {
        watch.push(d.join("HEAD"));
    }
    if let Some(c) = &common {
        watch.push(c.join("packed-refs"));
        if let Some(b) = &branch {
            watch.push(c.join(b));
        }
    }
    for p in watch.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
