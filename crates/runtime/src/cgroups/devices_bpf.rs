//! Device access on cgroup v2: the v1 `devices.allow`/`devices.deny` rule
//! list compiled to an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program (pure),
//! and attaching it to a cgroup directory.
//!
//! Semantics are those of the v1 controller as runc emulates them: the
//! last rule that matches a request decides; a request matches a rule when
//! type, major and minor match (or are wildcards) and every access bit it
//! asks for is in the rule; nothing matching means deny.

use std::os::fd::AsFd;
use std::path::Path;

use berth_sys::bpf::BpfInsn;

use super::resources::DeviceRule;

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// Compiles `rules` to a device program.
pub fn compile(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),      // r2 = ctx->access_type
        insn(AND_K, 2, 0, 0, 0xffff), // r2: device type
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16), // r3: requested access
        insn(LDX_W, 4, 1, 4, 0),  // r4: major
        insn(LDX_W, 5, 1, 8, 0),  // r5: minor
    ];
    for rule in rules.iter().rev() {
        let mut block: Vec<(BpfInsn, bool)> = Vec::new(); // (insn, is a skip jump)
        if rule.kind != 'a' {
            let t = if rule.kind == 'b' { 1 } else { 2 };
            block.push((insn(JNE_K, 2, 0, 0, t), true));
        }
        let acc = access_bits(&rule.access);
        if acc != 7 && rule.kind != 'a' {
            block.push((insn(MOV_X, 6, 3, 0, 0), false));
            block.push((insn(AND_K, 6, 0, 0, !acc & 7), false));
            block.push((insn(JNE_K, 6, 0, 0, 0), true));
        }
        if rule.kind != 'a' {
            if let Some(m) = rule.major {
                block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
            }
            if let Some(m) = rule.minor {
                block.push((insn(JNE_K, 5, 0, 0, m as i32), true));
            }
        }
        block.push((insn(MOV_K, 0, 0, 0, rule.allow as i32), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let n = block.len();
        for (i, (mut ins, is_skip)) in block.into_iter().enumerate() {
            if is_skip {
                ins.off = (n - i - 1) as i16;
            }
            p.push(ins);
        }
        if rule.kind == 'a' {
            // Matches every request: earlier rules can never decide (and
            // the verifier refuses unreachable code).
            return p;
        }
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `dir` (alongside any programs already there).
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> std::io::Result<()> {
    let prog = compile(rules);
    let fd = berth_sys::bpf::prog_load(
        berth_sys::bpf::PROG_TYPE_CGROUP_DEVICE,
        &prog,
        c"Apache",
        "berth_devices",
    )?;
    let cg = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    berth_sys::bpf::prog_attach(
        cg.as_fd(),
        fd.as_fd(),
        berth_sys::bpf::ATTACH_CGROUP_DEVICE,
        berth_sys::bpf::F_ALLOW_MULTI,
    )
}

/// Runs a device program on one request (tests only).
#[cfg(test)]
pub fn interpret(p: &[BpfInsn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | kind, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0;
    loop {
        let i = p[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_W => r[dst] = ctx[i.off as usize / 4] as u64,
            AND_K => r[dst] &= i.imm as u32 as u64,
            RSH_K => r[dst] >>= i.imm,
            MOV_K => r[dst] = i.imm as u64,
            MOV_X => r[dst] = r[src],
            JNE_K => {
                if r[dst] != i.imm as u32 as u64 {
                    pc += i.off as usize;
                }
            }
            EXIT => return r[0],
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::default_device_rules;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    const CHR: u32 = 2;
    const BLK: u32 = 1;
    const R: u32 = 2;
    const W: u32 = 4;
    const M: u32 = 1;

    #[test]
    fn deny_all_then_defaults() {
        let mut rules = vec![rule(false, 'a', None, None, "rwm")];
        rules.extend(default_device_rules());
        rules.push(rule(true, 'c', Some(10), Some(229), "rw"));
        let p = compile(&rules);
        assert_eq!(interpret(&p, CHR, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(interpret(&p, CHR, R, 136, 7), 1, "a pty");
        assert_eq!(interpret(&p, CHR, M, 8, 0), 1, "mknod of anything");
        assert_eq!(interpret(&p, BLK, M, 8, 0), 1);
        assert_eq!(interpret(&p, BLK, R, 8, 0), 0, "/dev/sda read");
        assert_eq!(interpret(&p, CHR, R, 1, 1), 0, "/dev/mem");
        assert_eq!(interpret(&p, CHR, R | W, 10, 229), 1, "/dev/fuse");
        assert_eq!(
            interpret(&p, CHR, M, 10, 229),
            1,
            "mknod is allowed by the wildcard rule"
        );
        assert_eq!(
            interpret(&p, CHR, R | W | M, 10, 229),
            0,
            "rwm is more than the rule gives"
        );
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let rules = vec![
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(1), "rwm"),
        ];
        let p = compile(&rules);
        assert_eq!(interpret(&p, CHR, R, 1, 1), 0);
        assert_eq!(interpret(&p, CHR, R, 1, 3), 1);
        assert_eq!(interpret(&p, BLK, W, 8, 0), 1);
        assert_eq!(interpret(&compile(&[]), CHR, R, 1, 3), 0, "no rules: deny");
    }
}
