//! Detach keys (`--detach-keys`, the config file's `detachKeys`, the API's
//! `detachKeys`/`DetachKeys`): a key sequence that, typed on an attached
//! stdin, ends the attachment and leaves the process running. Docker's
//! default is `ctrl-p,ctrl-q`.

/// Docker's default sequence.
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// `ctrl-p,ctrl-q`, `ctrl-a,d`, `a` as bytes (`ctrl-@` … `ctrl-_`, letters).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let bad = |k: &str| format!("invalid detach keys ({k}): ctrl-<value> or one character");
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [x @ b'a'..=b'z'] => x - b'a' + 1,
                [x @ b'A'..=b'Z'] => x - b'A' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad(k)),
            };
            out.push(b);
        } else if k.len() == 1 && k.is_ascii() {
            out.extend_from_slice(k.as_bytes());
        } else {
            return Err(bad(k));
        }
    }
    if out.is_empty() {
        return Err(bad(s));
    }
    Ok(out)
}

/// Finds a detach sequence in a client's input across reads: feed each
/// chunk; it returns the bytes to pass on and whether the sequence was
/// typed (what came before it is passed on; the sequence itself is not).
#[derive(Clone, Debug)]
pub struct Detector {
    keys: Vec<u8>,
    /// How much of the sequence the last chunk ended with (held back).
    matched: usize,
}

impl Detector {
    /// A detector of `keys` (empty: never detaches).
    pub fn new(keys: Vec<u8>) -> Detector {
        Detector { keys, matched: 0 }
    }

    /// The bytes of `chunk` to pass on, and whether to detach now.
    pub fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (chunk.to_vec(), false);
        }
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                // what was held back was input after all
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_detection() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT);
        assert_eq!(parse_detach_keys("ctrl-a,d").unwrap(), [1, b'd']);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("é").is_err());
        let mut d = Detector::new(DEFAULT.to_vec());
        assert_eq!(d.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(d.feed(&[b'x', 0x10]), (vec![b'x'], false));
        assert_eq!(d.feed(&[0x11, b'y']), (vec![], true));
        let mut d = Detector::new(DEFAULT.to_vec());
        assert_eq!(d.feed(&[0x10, b'a']), (vec![0x10, b'a'], false));
        assert_eq!(d.feed(&[0x10, 0x10, 0x11]), (vec![0x10], true));
    }
}
