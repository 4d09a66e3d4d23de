//! glibc malloc's knobs for berth's long-running servers (`berth server`,
//! `berth daemon`): few arenas and memory handed back to the kernel soon,
//! so a server's resident size follows what it holds, not what it once
//! held across many threads. An environment that sets glibc's own
//! variables (`MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_`,
//! `MALLOC_MMAP_THRESHOLD_`) keeps them.

/// Applies the server settings: 2 arenas, trim and mmap thresholds of
/// 128 KiB. Does nothing on a C library other than glibc.
pub fn tune_for_server() {
    #[cfg(target_env = "gnu")]
    {
        let unset = |v: &str| std::env::var_os(v).is_none();
        if unset("MALLOC_ARENA_MAX") {
            // SAFETY: mallopt takes two integers and changes only malloc's
            // own parameters; it is safe to call at any time.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
        if unset("MALLOC_TRIM_THRESHOLD_") {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024) };
        }
        if unset("MALLOC_MMAP_THRESHOLD_") {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        }
    }
}
