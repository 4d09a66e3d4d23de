use super::*;
use bpf::interpret;

fn data(arch: u32, nr: u32, args: [u64; 6]) -> Vec<u8> {
    let mut d = Vec::with_capacity(64);
    d.extend_from_slice(&nr.to_le_bytes());
    d.extend_from_slice(&arch.to_le_bytes());
    d.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        d.extend_from_slice(&a.to_le_bytes());
    }
    d
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

const X86_64: u32 = 0xc000_003e;

fn run(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    interpret(&f.program, &data(arch, nr, args))
}

#[test]
#[cfg(target_arch = "x86_64")]
fn default_errno_with_an_allow_list() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
        "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{"names":["read","write","exit_group","no_such_syscall"],"action":"SCMP_ACT_ALLOW"},
                    {"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    );
    let f = compile(&p).unwrap();
    assert_eq!(run(&f, X86_64, 0, [0; 6]), RET_ALLOW); // read
    assert_eq!(run(&f, X86_64, 1, [0; 6]), RET_ALLOW); // write
    assert_eq!(run(&f, X86_64, 231, [0; 6]), RET_ALLOW); // exit_group
    assert_eq!(run(&f, X86_64, 250, [0; 6]), RET_ERRNO | 1); // keyctl
    assert_eq!(run(&f, X86_64, 39, [0; 6]), RET_ERRNO | 38); // getpid -> default
    // i386: read is 3, keyctl 288
    assert_eq!(run(&f, 0x4000_0003, 3, [0; 6]), RET_ALLOW);
    assert_eq!(run(&f, 0x4000_0003, 288, [0; 6]), RET_ERRNO | 1);
    // x32: read | bit 30
    assert_eq!(run(&f, X86_64, 0x4000_0000, [0; 6]), RET_ALLOW);
    assert_eq!(run(&f, X86_64, 0x4000_0000 | 39, [0; 6]), RET_ERRNO | 38);
    // an architecture the profile does not list
    assert_eq!(run(&f, 0xc000_00b7, 63, [0; 6]), RET_KILL_PROCESS);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn x32_is_killed_unless_listed() {
    let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#);
    let f = compile(&p).unwrap();
    assert_eq!(run(&f, X86_64, 39, [0; 6]), RET_ALLOW);
    assert_eq!(run(&f, X86_64, 0x4000_0000 | 39, [0; 6]), RET_KILL_PROCESS);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn sixty_four_bit_comparisons_match_rust() {
    let values = [
        0u64,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0xdead_beef_0000_0001,
        u64::MAX,
    ];
    let ops = [
        (
            "SCMP_CMP_EQ",
            (|a: u64, b: u64| a == b) as fn(u64, u64) -> bool,
        ),
        ("SCMP_CMP_NE", |a, b| a != b),
        ("SCMP_CMP_LT", |a, b| a < b),
        ("SCMP_CMP_LE", |a, b| a <= b),
        ("SCMP_CMP_GT", |a, b| a > b),
        ("SCMP_CMP_GE", |a, b| a >= b),
    ];
    for (op, f) in ops {
        for &k in &values {
            let p = profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["read"],
                "action":"SCMP_ACT_ALLOW","args":[{{"index":2,"value":{k},"op":"{op}"}}]}}]}}"#
            ));
            let filt = compile(&p).unwrap();
            for &a in &values {
                let got = run(&filt, X86_64, 0, [0, 0, a, 0, 0, 0]) == RET_ALLOW;
                assert_eq!(got, f(a, k), "{a:#x} {op} {k:#x}");
            }
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn masked_eq_and_or_of_same_argument() {
    // docker's clone rule: allow unless a namespace flag is set
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["clone"],"action":"SCMP_ACT_ALLOW",
         "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["personality"],"action":"SCMP_ACT_ALLOW",
         "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
        {"names":["mmap"],"action":"SCMP_ACT_ALLOW",
         "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":1,"value":4096,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let f = compile(&p).unwrap();
    assert_eq!(run(&f, X86_64, 56, [0x11, 0, 0, 0, 0, 0]), RET_ALLOW); // clone(SIGCHLD)
    assert_eq!(
        run(&f, X86_64, 56, [0x1000_0000, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    ); // NEWUSER
    assert_eq!(run(&f, X86_64, 135, [0, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&f, X86_64, 135, [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&f, X86_64, 135, [9, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    // different arguments are ANDed
    assert_eq!(run(&f, X86_64, 9, [0, 4096, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&f, X86_64, 9, [0, 8192, 0, 0, 0, 0]), RET_ERRNO | 1);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn many_syscalls_fit_and_dispatch() {
    let names: Vec<String> = (0..335)
        .filter_map(|nr| syscalls::x86_64::Sysno::new(nr).map(|s| format!("\"{}\"", s.name())))
        .collect();
    let p = profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    ));
    let f = compile(&p).unwrap();
    assert!(f.program.len() < 4096, "{}", f.program.len());
    for nr in 0..335u32 {
        let want = if syscalls::x86_64::Sysno::new(nr as usize).is_some() {
            RET_ALLOW
        } else {
            RET_ERRNO | 1
        };
        assert_eq!(run(&f, X86_64, nr, [0; 6]), want, "nr {nr}");
    }
    assert_eq!(run(&f, X86_64, 10_000, [0; 6]), RET_ERRNO | 1);
}

#[test]
fn refuses_what_it_cannot_do() {
    let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
    assert!(matches!(compile(&p), Err(SeccompError::Unsupported(_))));
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":5}]}"#,
    );
    assert!(compile(&p).unwrap_err().to_string().contains("errnoRet"));
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(compile(&p).unwrap_err().to_string().contains("index 6"));
}

#[test]
fn cache_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let a = compile_cached(&p, Some(t.path())).unwrap();
    assert_eq!(a.flags, 2);
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    let b = compile_cached(&p, Some(t.path())).unwrap();
    assert_eq!(a, b);
    // a corrupt cache entry is recompiled, not trusted
    let entry = fs::read_dir(t.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::write(&entry, b"garbage").unwrap();
    assert_eq!(compile_cached(&p, Some(t.path())).unwrap(), a);
}
