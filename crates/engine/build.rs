//! Builds `berth-init` (init/berth-init.c), the static process 1 of
//! `--init` containers, with the system C compiler. Without a compiler and
//! a static libc the engine still builds, and `--init` says it is not
//! available.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bin = out.join("berth-init");
    let src = "init/berth-init.c";
    println!("cargo:rerun-if-changed={src}");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&bin)
        .arg(src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("cargo:warning=berth-init not built ({cc} -static failed): --init is unavailable");
        std::fs::write(&bin, b"").expect("write an empty berth-init");
    }
}
