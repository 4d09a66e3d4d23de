//! Builds the engine's two small C programs with the system C compiler:
//! `berth-init` (init/berth-init.c), the static process 1 of `--init`
//! containers, and `berth-shim` (init/berth-shim.c), the freestanding
//! steady state of a container's monitor. Without a compiler (or a static
//! libc, for berth-init) the engine still builds: `--init` then says it is
//! not available, and monitors keep running as berth itself.

use std::path::PathBuf;
use std::process::Command;

fn build(name: &str, flags: &[&str], without: &str) {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bin = out.join(name);
    let src = format!("init/{name}.c");
    println!("cargo:rerun-if-changed={src}");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(&cc)
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("cargo:warning={name} not built ({cc} failed): {without}");
        std::fs::write(&bin, b"").expect("write an empty program");
    }
}

fn main() {
    build(
        "berth-init",
        &["-static", "-Os", "-s"],
        "--init is unavailable",
    );
    build(
        "berth-shim",
        &[
            "-nostdlib",
            "-static",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-fno-asynchronous-unwind-tables",
            "-Os",
            "-s",
            "-Wall",
            "-Wl,--gc-sections",
        ],
        "monitors stay full berth processes (more memory per container)",
    );
}
