//! Build script of berth-apiserver: compiles the Kubernetes `.proto` files
//! shipped in the `k8s-rs-pb` crate package into one `FileDescriptorSet`
//! (`$OUT_DIR/k8s-protos.fds`), read at run time by `protobuf::schema`.
//! The package is found where cargo unpacked it from the registry (a plain
//! `cargo build` has not fetched the workspace's dev-dependencies, so
//! `cargo metadata --offline` could fail there), else through `cargo
//! metadata` (git and vendored sources); the `.proto` text is never copied
//! into berth.

use std::path::{Path, PathBuf};
use std::process::Command;

use protobuf::Message as _;

/// The directory of the Kubernetes version berth decodes, inside the package.
const VERSION_DIR: &str = "src/v1_33";

fn main() {
    if let Err(e) = run() {
        eprintln!("berth-apiserver build script: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=src/protobuf/build.rs");
    let out_dir = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?;
    let root = package_dir("k8s-rs-pb")?.join(VERSION_DIR);
    let mut inputs = Vec::new();
    find_protos(&root, &mut inputs)?;
    inputs.sort();
    if inputs.is_empty() {
        return Err(format!("no .proto files under {}", root.display()));
    }
    let set = protobuf_parse::Parser::new()
        .pure()
        .include(&root)
        .inputs(&inputs)
        .file_descriptor_set()
        .map_err(|e| format!("parsing the Kubernetes .proto files: {e:#}"))?;
    let bytes = set
        .write_to_bytes()
        .map_err(|e| format!("encoding the descriptor set: {e}"))?;
    let out = Path::new(&out_dir).join("k8s-protos.fds");
    std::fs::write(&out, bytes).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(())
}

/// The source directory of a dependency package: where cargo unpacked it
/// from the registry (it is a build dependency, so it is unpacked before
/// this script runs), else what `cargo metadata` says (vendored or git
/// sources).
fn package_dir(name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = registry_dir(name) {
        return Ok(dir);
    }
    metadata_dir(name)
}

/// `$CARGO_HOME/registry/src/*/<name>-<version>`, the version being the one
/// Cargo.lock names (the highest unpacked one if the lock file is not found).
fn registry_dir(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let locked = locked_version(name);
    let prefix = format!("{name}-");
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for index in std::fs::read_dir(home.join("registry").join("src"))
        .ok()?
        .flatten()
    {
        for entry in std::fs::read_dir(index.path()).ok()?.flatten() {
            let file_name = entry.file_name();
            let Some(version) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if !version.starts_with(|c: char| c.is_ascii_digit())
                || !entry.path().join(VERSION_DIR).is_dir()
            {
                continue;
            }
            found.push((version.to_owned(), entry.path()));
        }
    }
    if let Some(locked) = locked {
        return found
            .into_iter()
            .find(|(v, _)| *v == locked)
            .map(|(_, p)| p);
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// The version of `name` in the workspace's Cargo.lock.
fn locked_version(name: &str) -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let lock = manifest_dir
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(lock).ok()?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_owned());
        }
    }
    None
}

/// The source directory of a dependency package, from `cargo metadata`.
fn metadata_dir(name: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").ok_or("CARGO is not set")?;
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?;
    // The target filter keeps cargo from wanting packages of other
    // platforms, which --offline could not fetch.
    let target = std::env::var("TARGET").map_err(|_| "TARGET is not set")?;
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(target)
        .arg("--manifest-path")
        .arg(Path::new(&manifest_dir).join("Cargo.toml"))
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("reading cargo metadata: {e}"))?;
    let manifest = metadata
        .get("packages")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .and_then(|p| p.get("manifest_path"))
        .and_then(|m| m.as_str())
        .ok_or_else(|| format!("package {name} is not in cargo metadata"))?;
    Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("manifest path {manifest} has no parent"))
}

fn find_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            find_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
