//! Where a container's output goes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The log driver. berth writes docker's json-file format for both file
/// drivers (`local` is docker's compact format; berth keeps the readable one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// `json-file`.
    #[default]
    JsonFile,
    /// `local`.
    Local,
    /// `none`: output is discarded (attached clients still get it).
    None,
}

impl LogDriver {
    /// Docker's name.
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
        }
    }
}

/// The log driver and its options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// The driver.
    pub driver: LogDriver,
    /// Rotate past this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// Files kept when rotating (at least 1).
    pub max_file: Option<u32>,
    /// The options as given (`max-size`, `tag`, `labels`…), for display.
    pub options: BTreeMap<String, String>,
}

impl LogConfig {
    /// (max bytes per file, files kept); `None` when the log is not rotated.
    pub fn rotation(&self) -> Option<(u64, u32)> {
        let size = self.max_size.filter(|s| *s > 0)?;
        Some((size, self.max_file.unwrap_or(1).max(1)))
    }
}
