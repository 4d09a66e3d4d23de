//! Kubernetes' channel protocol over WebSocket (`*.channel.k8s.io`): every
//! binary message starts with its channel — 0 stdin, 1 stdout, 2 stderr,
//! 3 error, 4 resize — and v5 adds the close signal (255, then the channel)
//! that half-closes stdin. From v4 on, the error channel carries one
//! metav1 `Status` (Success, or NonZeroExitCode with the exit code as an
//! `ExitCode` cause); before, a failure's text.

use serde_json::{Value, json};

/// Channel: stdin (client to server).
pub const STDIN: u8 = 0;
/// Channel: stdout.
pub const STDOUT: u8 = 1;
/// Channel: stderr.
pub const STDERR: u8 = 2;
/// Channel: errors (the final status).
pub const ERROR: u8 = 3;
/// Channel: terminal size (`{"Width":…,"Height":…}`).
pub const RESIZE: u8 = 4;
/// v5: the close signal's prefix.
pub const CLOSE: u8 = 255;

/// A streaming protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `channel.k8s.io` (and no protocol at all).
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: resize.
    V3,
    /// `v4.channel.k8s.io`: a `Status` on the error channel.
    V4,
    /// `v5.channel.k8s.io`: the close signal.
    V5,
}

/// The stream protocols served, newest first.
pub const STREAM_PROTOCOLS: &[(&str, Version)] = &[
    ("v5.channel.k8s.io", Version::V5),
    ("v4.channel.k8s.io", Version::V4),
    ("v3.channel.k8s.io", Version::V3),
    ("v2.channel.k8s.io", Version::V2),
    ("channel.k8s.io", Version::V1),
];

impl Version {
    /// Whether the error channel carries a JSON `Status`.
    pub fn status_json(self) -> bool {
        self >= Version::V4
    }

    /// Whether the client may half-close stdin.
    pub fn close_signal(self) -> bool {
        self >= Version::V5
    }
}

/// The protocols a client offered (`Sec-WebSocket-Protocol`, comma
/// separated, possibly in several headers), in its order.
pub fn offered<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    headers
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first offered protocol that is served (the client's preference
/// wins, as kube's handshake does); `Ok(None)` when none was offered (the
/// oldest protocol, unnamed). `Err` lists what was offered and served.
pub fn negotiate<'a, T: Copy>(
    offered: &[String],
    served: &'a [(&'a str, T)],
) -> Result<Option<(&'a str, T)>, String> {
    if offered.is_empty() {
        return Ok(None);
    }
    for want in offered {
        if let Some((name, v)) = served.iter().find(|(name, _)| name == want) {
            return Ok(Some((name, *v)));
        }
    }
    let names: Vec<&str> = served.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {names:?}"
    ))
}

/// A message on a channel.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// What a client's message means.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Bytes on a channel.
    Data(u8, &'a [u8]),
    /// v5: the client closed its side of a channel.
    Close(u8),
    /// An empty message (nothing to do).
    Empty,
}

/// Reads a client's binary message.
pub fn parse(message: &[u8], version: Version) -> Incoming<'_> {
    match message {
        [] => Incoming::Empty,
        [CLOSE, channel, ..] if version.close_signal() => Incoming::Close(*channel),
        [channel, rest @ ..] => Incoming::Data(*channel, rest),
    }
}

/// A terminal size from the resize channel.
pub fn parse_resize(data: &[u8]) -> Option<(u16, u16)> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let width = u16::try_from(v.get("Width")?.as_u64()?).ok()?;
    let height = u16::try_from(v.get("Height")?.as_u64()?).ok()?;
    Some((width, height))
}

/// The `Status` of a process that exited with `code` (Success for 0).
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The `Status` of a stream that failed for another reason.
pub fn error_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// What goes on the error channel at the end, if anything: v4+ always a
/// Status; older versions a failure's text only.
pub fn final_error(version: Version, status: &Value) -> Option<Vec<u8>> {
    if version.status_json() {
        return serde_json::to_vec(status).ok().map(|b| frame(ERROR, &b));
    }
    if status.get("status").and_then(Value::as_str) == Some("Success") {
        return None;
    }
    let text = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("error");
    Some(frame(ERROR, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_s_first_served_protocol_wins() {
        let offered = offered(["v5.channel.k8s.io, v4.channel.k8s.io", "channel.k8s.io"]);
        assert_eq!(offered.len(), 3);
        assert_eq!(
            negotiate(&offered, STREAM_PROTOCOLS).unwrap(),
            Some(("v5.channel.k8s.io", Version::V5))
        );
        let old = vec![
            "v4.channel.k8s.io".to_owned(),
            "v5.channel.k8s.io".to_owned(),
        ];
        assert_eq!(
            negotiate(&old, STREAM_PROTOCOLS).unwrap(),
            Some(("v4.channel.k8s.io", Version::V4))
        );
        assert_eq!(negotiate(&[], STREAM_PROTOCOLS).unwrap(), None);
        let err = negotiate(&["base64.channel.k8s.io".to_owned()], STREAM_PROTOCOLS).unwrap_err();
        assert!(
            err.starts_with("unable to upgrade: unable to negotiate protocol"),
            "{err}"
        );
    }

    #[test]
    fn messages_are_channel_prefixed_and_v5_has_close() {
        assert_eq!(frame(STDOUT, b"hi"), vec![1, b'h', b'i']);
        assert_eq!(parse(&[0, b'x'], Version::V5), Incoming::Data(0, b"x"));
        assert_eq!(parse(&[255, 0], Version::V5), Incoming::Close(0));
        assert_eq!(parse(&[255, 0], Version::V4), Incoming::Data(255, &[0]));
        assert_eq!(parse(&[], Version::V5), Incoming::Empty);
        assert_eq!(parse(&[4], Version::V5), Incoming::Data(4, b""));
    }

    #[test]
    fn resize_reads_width_and_height() {
        assert_eq!(
            parse_resize(br#"{"Width":120,"Height":40}"#),
            Some((120, 40))
        );
        assert_eq!(parse_resize(br#"{"Width":-1,"Height":40}"#), None);
        assert_eq!(parse_resize(b"junk"), None);
    }

    #[test]
    fn the_final_status_is_kube_s() {
        let ok = exit_status(&["true".into()], 0);
        assert_eq!(ok, json!({"metadata": {}, "status": "Success"}));
        let failed = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(
            failed["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(
            failed["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        let v4 = final_error(Version::V4, &ok).unwrap();
        assert_eq!(v4[0], ERROR);
        assert_eq!(serde_json::from_slice::<Value>(&v4[1..]).unwrap(), ok);
        assert_eq!(final_error(Version::V2, &ok), None);
        assert_eq!(
            final_error(Version::V2, &error_status("boom")).unwrap(),
            frame(ERROR, b"boom")
        );
    }
}
