//! SPDY/3.1 framing, as much as Kubernetes' port-forward needs (kubectl
//! speaks it, tunnelled inside WebSocket since 1.31, or over a plain
//! `Upgrade: SPDY/3.1`): SYN_STREAM / SYN_REPLY with zlib-compressed
//! header blocks (the compression context spans the connection; the
//! client's uses the dictionary of the SPDY/3 specification), data frames
//! with FIN, RST_STREAM, PING (echoed), and the frames that are only
//! acknowledged by being read (SETTINGS, WINDOW_UPDATE, HEADERS, GOAWAY).

use std::collections::BTreeMap;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The protocol version in control frames.
pub const VERSION: u16 = 3;
/// Data frame flag: the sender's last frame on the stream.
pub const FLAG_FIN: u8 = 0x01;

/// Control frame types.
pub mod kind {
    /// Opens a stream.
    pub const SYN_STREAM: u16 = 1;
    /// Accepts a stream.
    pub const SYN_REPLY: u16 = 2;
    /// Ends a stream abnormally.
    pub const RST_STREAM: u16 = 3;
    /// Connection settings.
    pub const SETTINGS: u16 = 4;
    /// A ping (answered with the same frame).
    pub const PING: u16 = 6;
    /// The connection is ending.
    pub const GOAWAY: u16 = 7;
    /// More headers.
    pub const HEADERS: u16 = 8;
    /// Flow control credit.
    pub const WINDOW_UPDATE: u16 = 9;
}

/// Frames larger than this are refused (the peer is broken or hostile).
const MAX_FRAME: usize = 1 << 24;
/// Header blocks that inflate beyond this are refused.
const MAX_HEADERS: usize = 1 << 20;

/// The header-compression dictionary of the SPDY/3 specification
/// (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1): these names, each
/// with a 32-bit big-endian length before it, then [`DICTIONARY_TAIL`].
const DICTIONARY_NAMES: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's unprefixed end.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 header dictionary (1423 bytes).
pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1423);
    for name in DICTIONARY_NAMES {
        d.extend_from_slice(&(name.len() as u32).to_be_bytes());
        d.extend_from_slice(name.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
}

/// Headers: lowercase names, each with its values.
pub type Headers = BTreeMap<String, Vec<String>>;

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Data on a stream.
    Data {
        /// The stream.
        stream: u32,
        /// FIN and others.
        flags: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A stream opened by the peer.
    SynStream {
        /// The stream.
        stream: u32,
        /// Its flags.
        flags: u8,
        /// Its headers.
        headers: Headers,
    },
    /// A stream the peer accepted.
    SynReply {
        /// The stream.
        stream: u32,
        /// Its headers.
        headers: Headers,
    },
    /// A stream ended abnormally.
    RstStream {
        /// The stream.
        stream: u32,
        /// Why.
        status: u32,
    },
    /// A ping.
    Ping(u32),
    /// The peer is going away.
    GoAway,
    /// Anything else (settings, window updates, headers, unknown types).
    Other(u16),
}

/// A framing error: the connection cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SPDY: {}", self.0)
    }
}

fn be32(b: &[u8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

/// Reads frames from a byte stream (fed in pieces), inflating header
/// blocks with one connection-wide context.
pub struct Reader {
    buf: Vec<u8>,
    inflate: Decompress,
    dictionary: Vec<u8>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

impl Reader {
    /// A reader at the start of a connection.
    pub fn new() -> Reader {
        Reader {
            buf: Vec::new(),
            inflate: Decompress::new(true),
            dictionary: dictionary(),
        }
    }

    /// Adds bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, if the bytes so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (be32(&self.buf[4..8]) & 0x00ff_ffff) as usize;
        if len > MAX_FRAME {
            return Err(FrameError(format!("a frame of {len} bytes")));
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..8 + len).collect();
        let flags = frame[4];
        let payload = &frame[8..];
        if frame[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream: be32(&frame) & 0x7fff_ffff,
                flags,
                data: payload.to_vec(),
            }));
        }
        let version = u16::from_be_bytes([frame[0] & 0x7f, frame[1]]);
        if version != VERSION {
            return Err(FrameError(format!("version {version} (only 3 is spoken)")));
        }
        let kind = u16::from_be_bytes([frame[2], frame[3]]);
        let need = |n: usize| {
            if payload.len() < n {
                Err(FrameError(format!(
                    "control frame {kind} of {} bytes is too short",
                    payload.len()
                )))
            } else {
                Ok(())
            }
        };
        Ok(Some(match kind {
            kind::SYN_STREAM => {
                need(10)?;
                let headers = self.headers(&payload[10..])?;
                Frame::SynStream {
                    stream: be32(payload) & 0x7fff_ffff,
                    flags,
                    headers,
                }
            }
            kind::SYN_REPLY => {
                need(4)?;
                let headers = self.headers(&payload[4..])?;
                Frame::SynReply {
                    stream: be32(payload) & 0x7fff_ffff,
                    headers,
                }
            }
            kind::HEADERS => {
                need(4)?;
                // read to keep the compression context in step
                self.headers(&payload[4..])?;
                Frame::Other(kind)
            }
            kind::RST_STREAM => {
                need(8)?;
                Frame::RstStream {
                    stream: be32(payload) & 0x7fff_ffff,
                    status: be32(&payload[4..]),
                }
            }
            kind::PING => {
                need(4)?;
                Frame::Ping(be32(payload))
            }
            kind::GOAWAY => Frame::GoAway,
            other => Frame::Other(other),
        }))
    }

    /// Inflates one header block (sync-flushed by the sender) and parses it.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            if out.len() > MAX_HEADERS {
                return Err(FrameError("a header block too large".into()));
            }
            let before_in = self.inflate.total_in();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before_in) as usize;
            input = input.get(used..).unwrap_or(&[]);
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) => continue,
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&self.dictionary)
                        .map_err(|e| FrameError(format!("the header dictionary: {e}")))?;
                }
                Err(e) => return Err(FrameError(format!("inflating headers: {e}"))),
            }
        }
        parse_header_block(&out)
    }
}

/// Parses an inflated header block: a count, then length-prefixed names
/// and values (several values joined by NUL).
pub fn parse_header_block(b: &[u8]) -> Result<Headers, FrameError> {
    let short = || FrameError("a truncated header block".into());
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        let s = b.get(at..at + n).ok_or_else(short)?;
        at += n;
        Ok(s)
    };
    let count = be32(take(4)?);
    let mut headers = Headers::new();
    for _ in 0..count {
        let n = be32(take(4)?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = be32(take(4)?) as usize;
        let value = take(n)?;
        let values = headers.entry(name).or_default();
        for v in value.split(|c| *c == 0) {
            values.push(String::from_utf8_lossy(v).into_owned());
        }
    }
    Ok(headers)
}

/// Encodes a header block (uncompressed).
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, values) in headers {
        let value = values.join("\0");
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name.to_ascii_lowercase().as_bytes());
        b.extend_from_slice(&(value.len() as u32).to_be_bytes());
        b.extend_from_slice(value.as_bytes());
    }
    b
}

/// Writes frames, deflating header blocks with one connection-wide
/// context (with the SPDY dictionary, as every SPDY/3 peer expects).
pub struct Writer {
    deflate: Compress,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// A writer at the start of a connection.
    pub fn new() -> Writer {
        let mut deflate = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh stream; a peer that needed it would say so.
        let _ = deflate.set_dictionary(&dictionary());
        Writer { deflate }
    }

    fn compress(&mut self, headers: &Headers) -> Vec<u8> {
        let input = header_block(headers);
        let mut out: Vec<u8> = Vec::with_capacity(input.len() + 64);
        let mut rest: &[u8] = &input;
        loop {
            let before = self.deflate.total_in();
            if self
                .deflate
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            let used = (self.deflate.total_in() - before) as usize;
            rest = rest.get(used..).unwrap_or(&[]);
            if rest.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(256);
        }
        out
    }

    /// A SYN_STREAM (for a client; the server only answers).
    pub fn syn_stream(&mut self, stream: u32, flags: u8, headers: &Headers) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        payload.extend_from_slice(&0u32.to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(&self.compress(headers));
        control(kind::SYN_STREAM, flags, &payload)
    }

    /// A SYN_REPLY.
    pub fn syn_reply(&mut self, stream: u32, headers: &Headers) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        payload.extend_from_slice(&self.compress(headers));
        control(kind::SYN_REPLY, 0, &payload)
    }
}

/// A control frame.
pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    let len = payload.len() as u32;
    f.push(flags);
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

/// A data frame.
pub fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

/// A RST_STREAM.
pub fn rst_stream(stream: u32, status: u32) -> Vec<u8> {
    let mut p = (stream & 0x7fff_ffff).to_be_bytes().to_vec();
    p.extend_from_slice(&status.to_be_bytes());
    control(kind::RST_STREAM, 0, &p)
}

/// A PING (the answer to one is the same frame).
pub fn ping(id: u32) -> Vec<u8> {
    control(kind::PING, 0, &id.to_be_bytes())
}

/// The first value of a header.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.first())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
            .collect()
    }

    #[test]
    fn the_dictionary_is_the_spec_s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"enq=0."));
    }

    #[test]
    fn header_blocks_survive_the_connection_wide_compression() {
        let mut w = Writer::new();
        let mut r = Reader::new();
        let first = h(&[
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ]);
        let second = h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]);
        // several frames in one read, and one frame split across reads
        let mut bytes = w.syn_stream(1, 0, &first);
        bytes.extend(w.syn_stream(3, 0, &second));
        bytes.extend(data(3, FLAG_FIN, b"hello"));
        let (a, b) = bytes.split_at(5);
        r.feed(a);
        assert_eq!(r.next_frame().unwrap(), None);
        r.feed(b);
        assert_eq!(
            r.next_frame().unwrap(),
            Some(Frame::SynStream {
                stream: 1,
                flags: 0,
                headers: first
            })
        );
        assert_eq!(
            r.next_frame().unwrap(),
            Some(Frame::SynStream {
                stream: 3,
                flags: 0,
                headers: second
            })
        );
        assert_eq!(
            r.next_frame().unwrap(),
            Some(Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: b"hello".to_vec()
            })
        );
        assert_eq!(r.next_frame().unwrap(), None);
        r.feed(&w.syn_reply(1, &Headers::new()));
        assert_eq!(
            r.next_frame().unwrap(),
            Some(Frame::SynReply {
                stream: 1,
                headers: Headers::new()
            })
        );
    }

    #[test]
    fn control_frames_read_back() {
        let mut r = Reader::new();
        r.feed(&ping(7));
        r.feed(&rst_stream(5, 5));
        r.feed(&control(kind::SETTINGS, 0, &0u32.to_be_bytes()));
        assert_eq!(r.next_frame().unwrap(), Some(Frame::Ping(7)));
        assert_eq!(
            r.next_frame().unwrap(),
            Some(Frame::RstStream {
                stream: 5,
                status: 5
            })
        );
        assert_eq!(r.next_frame().unwrap(), Some(Frame::Other(kind::SETTINGS)));
    }

    #[test]
    fn values_split_on_nul_and_names_are_lowercased() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&4u32.to_be_bytes());
        b.extend_from_slice(b"Port");
        b.extend_from_slice(&5u32.to_be_bytes());
        b.extend_from_slice(b"80\x0081");
        let got = parse_header_block(&b).unwrap();
        assert_eq!(got["port"], vec!["80", "81"]);
        assert!(parse_header_block(&b[..10]).is_err());
    }

    #[test]
    fn bad_versions_are_refused() {
        let mut r = Reader::new();
        let mut f = ping(1);
        f[1] = 2;
        r.feed(&f);
        assert!(r.next_frame().is_err());
    }
}
