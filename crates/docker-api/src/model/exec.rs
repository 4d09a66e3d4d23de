//! `POST /containers/{id}/exec` and `POST /exec/{id}/start` bodies.

use serde::Deserialize;

use super::StrSlice;

/// The exec create body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ExecBody {
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    pub console_size: Option<Vec<u64>>,
    pub detach_keys: Option<String>,
    pub tty: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    pub privileged: Option<bool>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

impl ExecBody {
    /// The engine's exec record.
    pub fn into_record(self) -> Result<berth_engine::exec::ExecRecord, String> {
        let cmd = self.cmd.map(|c| c.0).unwrap_or_default();
        if cmd.is_empty() {
            return Err("No exec command specified".into());
        }
        let console_size = match self.console_size.as_deref() {
            None | Some([]) => None,
            Some([h, w]) => {
                let n = |v: u64| u16::try_from(v).map_err(|_| "invalid ConsoleSize".to_owned());
                Some((n(*h)?, n(*w)?)).filter(|(h, w)| *h > 0 && *w > 0)
            }
            Some(_) => return Err("invalid ConsoleSize: [height, width]".into()),
        };
        let detach_keys = self.detach_keys.unwrap_or_default();
        if !detach_keys.is_empty() {
            crate::detach::parse_detach_keys(&detach_keys)?;
        }
        Ok(berth_engine::exec::ExecRecord {
            cmd,
            env: self.env.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            working_dir: self.working_dir.unwrap_or_default(),
            tty: self.tty.unwrap_or(false),
            privileged: self.privileged.unwrap_or(false),
            attach_stdin: self.attach_stdin.unwrap_or(false),
            attach_stdout: self.attach_stdout.unwrap_or(false),
            attach_stderr: self.attach_stderr.unwrap_or(false),
            console_size,
            detach_keys,
            ..Default::default()
        })
    }
}

/// The exec start body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartBody {
    /// Run without a stream.
    pub detach: Option<bool>,
    /// A terminal (the stream is raw instead of multiplexed).
    pub tty: Option<bool>,
    /// Terminal size.
    pub console_size: Option<Vec<u64>>,
}
