//! Syscall names → numbers for each architecture a profile may list.

use std::str::FromStr;

/// An architecture berth can filter for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// x86_64 (AUDIT_ARCH_X86_64).
    X86_64,
    /// The x32 ABI (x86_64 numbers with bit 30 set).
    X32,
    /// i386.
    X86,
    /// aarch64.
    Aarch64,
    /// 32-bit arm (EABI).
    Arm,
}

/// `__X32_SYSCALL_BIT`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Arch {
    /// The architecture this binary runs on.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "arm") {
            Some(Arch::Arm)
        } else {
            None
        }
    }

    /// The `AUDIT_ARCH_*` value in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xc000_003e,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xc000_00b7,
            Arch::Arm => 0x4000_0028,
        }
    }

    /// Whether a process of this architecture can run on a `native` kernel
    /// (others never reach the filter, so their rules would be dead code).
    pub fn runs_on(self, native: Arch) -> bool {
        match native {
            Arch::X86_64 => matches!(self, Arch::X86_64 | Arch::X86 | Arch::X32),
            Arch::Aarch64 => matches!(self, Arch::Aarch64 | Arch::Arm),
            n => self == n,
        }
    }

    /// Whether syscall arguments are 64 bits wide.
    pub fn is_64bit(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// Maps an OCI architecture; `None` for ones berth does not filter.
    pub fn from_oci(a: oci_spec::runtime::Arch) -> Option<Arch> {
        use oci_spec::runtime::Arch as O;
        match a {
            O::ScmpArchNative => Arch::native(),
            O::ScmpArchX86_64 => Some(Arch::X86_64),
            O::ScmpArchX32 => Some(Arch::X32),
            O::ScmpArchX86 => Some(Arch::X86),
            O::ScmpArchAarch64 => Some(Arch::Aarch64),
            O::ScmpArchArm => Some(Arch::Arm),
            _ => None,
        }
    }

    /// The syscall number of `name`, or None if this architecture lacks it.
    pub fn syscall(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::X32 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32 | X32_SYSCALL_BIT),
            Arch::X86 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::Aarch64 => syscalls::aarch64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::Arm => syscalls::arm::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
        }
    }
}
