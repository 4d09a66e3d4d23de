//! Plain HTTP(S) downloads (the builder's `ADD https://…`), through the
//! same HTTP stack and TLS provider as the registry client: the body is
//! streamed to a file and hashed on the way.

use std::io::Write;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Downloads `url` into the new file `dest`; returns the body's sha256
/// (hex). A status other than 2xx is an error naming it.
pub fn download(url: &str, dest: &Path) -> Result<String> {
    crate::registry::client::install_crypto();
    let fail = |e: String| Error::Registry(format!("failed to fetch {url}: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!(
                "invalid response status {}",
                resp.status().as_u16()
            )));
        }
        let io = |e: std::io::Error| Error::Io {
            context: format!("write {}", dest.display()),
            source: e,
        };
        let mut f = std::fs::File::create_new(dest).map_err(io)?;
        let mut h = Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            h.update(&chunk);
            f.write_all(&chunk).map_err(io)?;
        }
        Ok(hex::encode(h.finalize()))
    })
}
