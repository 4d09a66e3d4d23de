//! Applies compiled rule sets, one atomic transaction per call. Callers
//! hold the root's lock, so two processes never interleave their changes.
//!
//! [`apply_ruleset`] asks the kernel for the table's comment (the base's
//! fingerprint, [`Ruleset::tag`]): when it matches, only the `published`
//! chain's rules are replaced, in-process ([`crate::nft_netlink`]);
//! otherwise (no table yet, networks changed, someone else's table) the
//! whole table is replaced with the `nft` binary (`nft -f -`).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::nft_netlink::NfTables;
use crate::rules::{PUBLISHED_CHAIN, Ruleset};
use crate::timing::span;

/// Makes the kernel's table what `rs` describes: its published rules only
/// when the rest is current, else the whole table.
pub fn apply_ruleset(rs: &Ruleset) -> Result<()> {
    let t = span("net.nft.netlink");
    let fast = NfTables::open().and_then(|mut nf| {
        if nf.table_comment(&rs.table)?.as_deref() != Some(rs.tag().as_str()) {
            return Ok(false);
        }
        nf.replace_rules(&rs.table, PUBLISHED_CHAIN, &rs.published)?;
        Ok(true)
    });
    drop(t);
    match fast {
        Ok(true) => Ok(()),
        Ok(false) => apply(&rs.script()),
        Err(e) => {
            // nothing changed (the batch is atomic): the whole table through
            // nft, which reports a real problem in its own words
            tracing::debug!("nf_tables over netlink: {e}; replacing the table with nft");
            apply(&rs.script())
        }
    }
}

/// The `nft` binary: `$BERTH_NFT` if set, else the first of /usr/sbin/nft,
/// /sbin/nft, or `nft` on `$PATH`.
fn nft_path() -> String {
    if let Ok(p) = std::env::var("BERTH_NFT")
        && !p.is_empty()
    {
        return p;
    }
    for p in ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    "nft".to_string()
}

/// Runs `script` through `nft -f -` as one transaction.
pub fn apply(script: &str) -> Result<()> {
    let _t = crate::timing::span("net.nft.exec");
    let nft = nft_path();
    let mut child = Command::new(&nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "run {nft}: {e} (is the nftables package installed?)"
            ))
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let wrote = stdin.write_all(script.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("wait for {nft}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Nft(format!(
            "{nft} -f - failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    wrote.map_err(|e| Error::Nft(format!("write to {nft}: {e}")))
}

/// `nft list table ip TABLE`, or `None` when the table does not exist.
pub fn list_table(table: &str) -> Result<Option<String>> {
    let nft = nft_path();
    let out = Command::new(&nft)
        .args(["list", "table", "ip", table])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Nft(format!("run {nft}: {e}")))?;
    if out.status.success() {
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(None)
    }
}
