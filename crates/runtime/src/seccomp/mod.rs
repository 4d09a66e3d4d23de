//! Seccomp: an OCI `linux.seccomp` profile compiled to a classic-BPF
//! program (pure Rust, no libseccomp), cached by a hash of the profile.
//!
//! Semantics follow runc with libseccomp: the native architecture is
//! always filtered; syscall names unknown to an architecture are skipped;
//! the conditions of one rule are ANDed, except that several conditions on
//! the same argument make one rule per condition (ORed); the first rule
//! that matches decides; anything else gets the default action. Syscalls
//! from an architecture the profile does not list kill the process.

mod bpf;
mod default;
mod tables;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use berth_sys::seccomp::SockFilter;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sha2::{Digest, Sha256};

use bpf::{Asm, BPF_JEQ, BPF_JGE, BPF_JGT};
pub use default::default_profile;
pub use tables::Arch;

/// Errors compiling or loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile is malformed.
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    /// The profile uses something berth does not implement yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// The kernel refused the program.
    #[error("load seccomp filter: {0}")]
    Load(#[source] io::Error),
}

/// A compiled filter, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The BPF program.
    pub program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
}

// seccomp return values.
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Bump when the generated code changes, so cached programs are redone.
const COMPILER_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

#[derive(Clone, Debug)]
struct Rule {
    action: u32,
    conds: Vec<Cond>,
}

fn action_value(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => RET_KILL_THREAD,
        A::ScmpActKillProcess => RET_KILL_PROCESS,
        A::ScmpActTrap => RET_TRAP,
        A::ScmpActErrno => RET_ERRNO | (errno & 0xffff),
        A::ScmpActTrace => RET_TRACE | (errno & 0xffff),
        A::ScmpActLog => RET_LOG,
        A::ScmpActAllow => RET_ALLOW,
        A::ScmpActNotify => {
            return Err(SeccompError::Unsupported(
                "seccomp action SCMP_ACT_NOTIFY (user-space notification)".into(),
            ));
        }
    })
}

fn flag_bits(s: &LinuxSeccomp) -> u32 {
    use oci_spec::runtime::LinuxSeccompFilterFlag as F;
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            F::SeccompFilterFlagTsync => 1,
            F::SeccompFilterFlagLog => 2,
            F::SeccompFilterFlagSpecAllow => 4,
            F::SeccompFilterFlagWaitKillableRecv => 32,
        })
        .fold(0, |a, b| a | b)
}

/// Compiles a profile for the architectures it lists plus the native one.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action_value(s.default_action(), s.default_errno_ret())?;
    let native = Arch::native()
        .ok_or_else(|| SeccompError::Unsupported("seccomp on this CPU architecture".into()))?;
    let mut arches = vec![native];
    for a in s.architectures().iter().flatten() {
        if let Some(a) = Arch::from_oci(*a).filter(|a| a.runs_on(native))
            && !arches.contains(&a)
        {
            arches.push(a);
        }
    }
    // x32 shares x86_64's audit arch; it only makes sense beside it.
    let want_x32 = arches.contains(&Arch::X32) && arches.contains(&Arch::X86_64);
    arches.retain(|a| *a != Arch::X32);

    // Rules, in profile order.
    let mut rules: Vec<(Vec<&str>, Rule)> = Vec::new();
    for sc in s.syscalls().iter().flatten() {
        if sc.names().is_empty() {
            return Err(SeccompError::Invalid("a syscall rule has no names".into()));
        }
        let is_errno_like = matches!(
            sc.action(),
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        );
        if sc.errno_ret().is_some() && !is_errno_like {
            return Err(SeccompError::Invalid(format!(
                "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE (rule for {})",
                sc.names().join(",")
            )));
        }
        let action = action_value(sc.action(), sc.errno_ret())?;
        let mut conds = Vec::new();
        for a in sc.args().iter().flatten() {
            if a.index() > 5 {
                return Err(SeccompError::Invalid(format!(
                    "argument index {} is out of range 0..=5",
                    a.index()
                )));
            }
            conds.push(Cond {
                index: a.index() as u32,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        let names: Vec<&str> = sc.names().iter().map(String::as_str).collect();
        let same_arg_twice = (0..6).any(|i| conds.iter().filter(|c| c.index == i).count() > 1);
        if same_arg_twice {
            for c in conds {
                rules.push((
                    names.clone(),
                    Rule {
                        action,
                        conds: vec![c],
                    },
                ));
            }
        } else {
            rules.push((names, Rule { action, conds }));
        }
    }

    let by_nr = |arch: Arch| {
        let mut m: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
        for (names, rule) in &rules {
            for name in names {
                if let Some(nr) = arch.syscall(name) {
                    m.entry(nr).or_default().push(rule.clone());
                }
            }
        }
        m
    };

    let mut asm = Asm::default();
    asm.load(OFF_ARCH);
    let sections: Vec<_> = arches.iter().map(|&a| (a, asm.label())).collect();
    for &(arch, l) in &sections {
        asm.jmp(BPF_JEQ, arch.audit_arch(), 0, 1);
        asm.ja(l);
    }
    asm.ret(RET_KILL_PROCESS);
    let x32_label = asm.label();
    for &(arch, l) in &sections {
        asm.mark(l);
        asm.load(OFF_NR);
        if arch == Arch::X86_64 {
            // x32 syscalls arrive with the x86_64 audit arch and bit 30 set.
            asm.jmp(BPF_JGE, tables::X32_SYSCALL_BIT, 0, 1);
            if want_x32 {
                asm.ja(x32_label);
            } else {
                asm.ret(RET_KILL_PROCESS);
            }
        }
        emit_section(&mut asm, arch, &by_nr(arch), default);
    }
    if want_x32 {
        asm.mark(x32_label);
        emit_section(&mut asm, Arch::X32, &by_nr(Arch::X32), default);
    }
    let program = asm.finish().map_err(SeccompError::Invalid)?;
    Ok(Filter {
        program,
        flags: flag_bits(s),
    })
}

/// Dispatch on the syscall number (already in A) with a binary search, then
/// one body per syscall that tries its rules in order.
fn emit_section(asm: &mut Asm, arch: Arch, rules: &BTreeMap<u32, Vec<Rule>>, default: u32) {
    // A syscall whose first rule has no conditions is decided at a leaf;
    // the others jump to a body that tries their rules in order.
    let mut intervals: Vec<(u32, Leaf)> = vec![(0, Leaf::Ret(default))];
    let mut next = 0u32;
    for (&nr, rs) in rules {
        let leaf = match rs.first() {
            Some(r) if r.conds.is_empty() => Leaf::Ret(r.action),
            _ => Leaf::Body(asm.label(), nr),
        };
        if nr != next && intervals.last().map(|l| l.1) != Some(Leaf::Ret(default)) {
            intervals.push((next, Leaf::Ret(default)));
        }
        let mergeable = nr == next || intervals.last().map(|l| l.1) == Some(Leaf::Ret(default));
        match (intervals.last().map(|l| l.1), leaf) {
            (Some(Leaf::Ret(a)), Leaf::Ret(b)) if a == b && mergeable => {}
            _ => intervals.push((nr, leaf)),
        }
        next = nr.saturating_add(1);
    }
    if intervals.last().map(|l| l.1) != Some(Leaf::Ret(default)) {
        intervals.push((next, Leaf::Ret(default)));
    }
    emit_tree(asm, &intervals);
    for &(_, leaf) in &intervals {
        let Leaf::Body(l, nr) = leaf else { continue };
        asm.mark(l);
        for rule in &rules[&nr] {
            let next = asm.label();
            for c in &rule.conds {
                emit_cond(asm, arch, c, next);
            }
            asm.ret(rule.action);
            asm.mark(next);
        }
        asm.ret(default);
    }
}

/// What happens to the syscalls of one interval of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// Return this action.
    Ret(u32),
    /// Run the rules of this syscall number (its body is at the label).
    Body(bpf::Label, u32),
}

/// Binary search over the intervals (which partition all numbers, so the
/// leaves need no comparison).
fn emit_tree(asm: &mut Asm, intervals: &[(u32, Leaf)]) {
    if intervals.len() == 1 {
        match intervals[0].1 {
            Leaf::Ret(v) => asm.ret(v),
            Leaf::Body(l, _) => asm.ja(l),
        }
        return;
    }
    let mid = intervals.len() / 2;
    let right = asm.label();
    asm.jmp(BPF_JGE, intervals[mid].0, 0, 1);
    asm.ja(right);
    emit_tree(asm, &intervals[..mid]);
    asm.mark(right);
    emit_tree(asm, &intervals[mid..]);
}

/// Emits a test of one condition: falls through when it holds, jumps to
/// `fail` otherwise. A holds the syscall number on entry and is clobbered.
fn emit_cond(asm: &mut Asm, arch: Arch, c: &Cond, fail: bpf::Label) {
    use LinuxSeccompOperator as Op;
    let lo_off = OFF_ARGS + 8 * c.index;
    let hi_off = lo_off + 4;
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    if !arch.is_64bit() {
        // 32-bit syscalls only have the low word.
        asm.load(lo_off);
        match c.op {
            Op::ScmpCmpEq => {
                asm.jmp(BPF_JEQ, vlo, 1, 0);
                asm.ja(fail);
            }
            Op::ScmpCmpNe => {
                asm.jmp(BPF_JEQ, vlo, 0, 1);
                asm.ja(fail);
            }
            Op::ScmpCmpGt => {
                asm.jmp(BPF_JGT, vlo, 1, 0);
                asm.ja(fail);
            }
            Op::ScmpCmpGe => {
                asm.jmp(BPF_JGE, vlo, 1, 0);
                asm.ja(fail);
            }
            Op::ScmpCmpLt => {
                asm.jmp(BPF_JGE, vlo, 0, 1);
                asm.ja(fail);
            }
            Op::ScmpCmpLe => {
                asm.jmp(BPF_JGT, vlo, 0, 1);
                asm.ja(fail);
            }
            Op::ScmpCmpMaskedEq => {
                asm.and(vlo);
                asm.jmp(BPF_JEQ, c.value_two as u32, 1, 0);
                asm.ja(fail);
            }
        }
        return;
    }
    match c.op {
        Op::ScmpCmpEq => {
            asm.load(hi_off);
            asm.jmp(BPF_JEQ, vhi, 1, 0);
            asm.ja(fail);
            asm.load(lo_off);
            asm.jmp(BPF_JEQ, vlo, 1, 0);
            asm.ja(fail);
        }
        Op::ScmpCmpNe => {
            asm.load(hi_off);
            asm.jmp(BPF_JEQ, vhi, 0, 3);
            asm.load(lo_off);
            asm.jmp(BPF_JEQ, vlo, 0, 1);
            asm.ja(fail);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            let lo_op = if c.op == Op::ScmpCmpGt {
                BPF_JGT
            } else {
                BPF_JGE
            };
            asm.load(hi_off);
            asm.jmp(BPF_JGT, vhi, 4, 0);
            asm.jmp(BPF_JEQ, vhi, 0, 2);
            asm.load(lo_off);
            asm.jmp(lo_op, vlo, 1, 0);
            asm.ja(fail);
        }
        Op::ScmpCmpLt => {
            asm.load(hi_off);
            asm.jmp(BPF_JGE, vhi, 0, 4);
            asm.jmp(BPF_JEQ, vhi, 0, 2);
            asm.load(lo_off);
            asm.jmp(BPF_JGE, vlo, 0, 1);
            asm.ja(fail);
        }
        Op::ScmpCmpLe => {
            asm.load(hi_off);
            asm.jmp(BPF_JGT, vhi, 3, 0);
            asm.jmp(BPF_JEQ, vhi, 0, 3);
            asm.load(lo_off);
            asm.jmp(BPF_JGT, vlo, 0, 1);
            asm.ja(fail);
        }
        Op::ScmpCmpMaskedEq => {
            let (thi, tlo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            asm.load(hi_off);
            asm.and(vhi);
            asm.jmp(BPF_JEQ, thi, 1, 0);
            asm.ja(fail);
            asm.load(lo_off);
            asm.and(vlo);
            asm.jmp(BPF_JEQ, tlo, 1, 0);
            asm.ja(fail);
        }
    }
}

/// The cache key of a profile: a hash of its JSON, the architecture and
/// the compiler version.
pub fn profile_hash(s: &LinuxSeccomp) -> String {
    let mut h = Sha256::new();
    h.update(COMPILER_VERSION.to_le_bytes());
    h.update(format!("{:?}", Arch::native()).as_bytes());
    h.update(serde_json::to_vec(s).unwrap_or_default());
    hex::encode(h.finalize())
}

/// Compiles `s`, reusing a program cached in `cache_dir` under the
/// profile's hash (and storing it there when new).
pub fn compile_cached(s: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Filter, SeccompError> {
    let Some(dir) = cache_dir else {
        return compile(s);
    };
    let path = dir.join(format!("{}.bpf", profile_hash(s)));
    if let Ok(bytes) = fs::read(&path)
        && let Some(f) = decode(&bytes)
    {
        return Ok(f);
    }
    let f = compile(s)?;
    let _ = fs::create_dir_all(dir);
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    if fs::write(&tmp, encode(&f)).is_ok() && fs::rename(&tmp, &path).is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(f)
}

fn encode(f: &Filter) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + f.program.len() * 8);
    out.extend_from_slice(b"BSC1");
    out.extend_from_slice(&f.flags.to_le_bytes());
    for i in &f.program {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

fn decode(b: &[u8]) -> Option<Filter> {
    if b.len() < 8 || &b[..4] != b"BSC1" || !(b.len() - 8).is_multiple_of(8) || b.len() == 8 {
        return None;
    }
    let flags = u32::from_le_bytes(b[4..8].try_into().ok()?);
    let program = b[8..]
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Filter { program, flags })
}

/// Installs the filter on the calling process.
pub fn load(f: &Filter) -> Result<(), SeccompError> {
    berth_sys::seccomp::load_filter(&f.program, f.flags)
        .map(drop)
        .map_err(SeccompError::Load)
}

#[cfg(test)]
mod tests;
