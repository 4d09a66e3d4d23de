//! Who owns a temporary file or directory (`content/ingest/tmp-…`,
//! `snapshots/tmp-…`): its name starts with `tmp-p<pid>-s<start time>-`,
//! so whoever opens the root next can tell what a killed process left
//! (removed) from what a live one is writing (left alone), even after the
//! pid was reused — the engine marks containers being created the same
//! way. The start time is in clock ticks since boot (`/proc/<pid>/stat`).

use std::sync::OnceLock;

/// The prefix of this process's temporary names.
pub(crate) fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let pid = std::process::id();
        let start = berth_runtime::procfs::stat(pid as i32).map_or(0, |s| s.start_time);
        format!("tmp-p{pid}-s{start}-")
    })
}

/// Whether a temporary name's owner is gone: `Some(true)` when the name
/// is `tmp-p<pid>-s<start>-…` and that process no longer runs; `None` when
/// the name is not of that form (another berth's, or not temporary).
pub(crate) fn owner_gone(name: &str) -> Option<bool> {
    let rest = name.strip_prefix("tmp-p")?;
    let (pid, rest) = rest.split_once("-s")?;
    let (start, _) = rest.split_once('-')?;
    let pid: i32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    Some(!berth_runtime::procfs::alive(pid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_live_and_dead_owners() {
        let mine = format!("{}1234", prefix());
        assert_eq!(owner_gone(&mine), Some(false), "{mine}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(owner_gone(&format!("tmp-p{pid}-s1-x")), Some(true));
        // this process's pid with another start time: a reused pid
        let me = std::process::id();
        assert_eq!(owner_gone(&format!("tmp-p{me}-s1-x")), Some(true));
        for other in ["tmp-123-456", "abcdef", "tmp-px-s1-", "tmp-p1-s-1"] {
            assert_eq!(owner_gone(other), None, "{other}");
        }
    }
}
