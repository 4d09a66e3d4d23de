//! A tiny classic-BPF assembler with labels. Conditional jumps only ever
//! skip a few instructions (their 8-bit offsets always fit); long distances
//! are covered by `ja` with a 32-bit offset, resolved here.

use berth_sys::seccomp::SockFilter;

// Instruction classes and modes (linux/bpf_common.h).
pub const BPF_LD: u16 = 0x00;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_K: u16 = 0x00;
pub const BPF_AND: u16 = 0x50;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;

/// A jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(SockFilter),
    Ja(Label),
    Mark(Label),
}

/// Builds a program.
#[derive(Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    /// A fresh label, to be placed later with [`Asm::mark`].
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `l` at the current position.
    pub fn mark(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }

    fn insn(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.items.push(Item::Insn(SockFilter { code, jt, jf, k }));
    }

    /// `A = *(u32 *)(data + offset)`.
    pub fn load(&mut self, offset: u32) {
        self.insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, offset);
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.insn(BPF_ALU | BPF_AND | BPF_K, 0, 0, k);
    }

    /// Conditional jump with short offsets (`op` is BPF_JEQ/JGT/JGE).
    pub fn jmp(&mut self, op: u16, k: u32, jt: u8, jf: u8) {
        self.insn(BPF_JMP | op | BPF_K, jt, jf, k);
    }

    /// Unconditional jump to `l`, anywhere in the program.
    pub fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// `return value`.
    pub fn ret(&mut self, value: u32) {
        self.insn(BPF_RET | BPF_K, 0, 0, value);
    }

    /// Resolves labels and returns the program.
    pub fn finish(self) -> Result<Vec<SockFilter>, String> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Mark(Label(l)) => pos[*l] = n,
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for item in &self.items {
            match *item {
                Item::Mark(_) => {}
                Item::Insn(i) => out.push(i),
                Item::Ja(Label(l)) => {
                    let target = pos[l];
                    let here = out.len();
                    if target == usize::MAX || target <= here {
                        return Err(format!("bpf: bad forward jump to label {l}"));
                    }
                    out.push(SockFilter {
                        code: BPF_JMP | BPF_JA,
                        jt: 0,
                        jf: 0,
                        k: (target - here - 1) as u32,
                    });
                }
            }
        }
        if out.len() > 4096 {
            return Err(format!(
                "bpf: program has {} instructions, the kernel allows 4096",
                out.len()
            ));
        }
        Ok(out)
    }
}

/// Runs a program on `data` the way the kernel would (for tests).
#[cfg(test)]
pub fn interpret(prog: &[SockFilter], data: &[u8]) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                let o = i.k as usize;
                a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c & 0x07 == BPF_JMP => {
                let cond = match c & 0xf0 {
                    BPF_JEQ => a == i.k,
                    BPF_JGT => a > i.k,
                    BPF_JGE => a >= i.k,
                    _ => panic!("unknown jump {c:#x}"),
                };
                pc += if cond { i.jt } else { i.jf } as usize;
            }
            c if c == BPF_RET | BPF_K => return i.k,
            c => panic!("unknown instruction {c:#x}"),
        }
    }
}
