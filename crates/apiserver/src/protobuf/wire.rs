//! The protobuf wire format: a bounds-checked reader of (field number,
//! value) pairs. Nothing here trusts a length or a varint from the input.

use super::ProtobufError;

/// One field value as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: strings, bytes, messages, packed repeated scalars.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type's name, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            WireValue::Varint(_) => "varint",
            WireValue::Fixed64(_) => "64-bit",
            WireValue::Bytes(_) => "length-delimited",
            WireValue::Fixed32(_) => "32-bit",
        }
    }
}

/// Reads the fields of one message, in wire order.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(ProtobufError::malformed("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(ProtobufError::malformed("varint longer than 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| {
                ProtobufError::malformed(format!(
                    "a length of {n} bytes runs past the end of the message ({} bytes left)",
                    self.buf.len().saturating_sub(self.pos)
                ))
            })?;
        let out = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    /// Reads a little-endian fixed-width value of `N` bytes.
    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let bytes = self
            .take(N)
            .map_err(|_| ProtobufError::malformed(format!("truncated {}-bit value", N * 8)))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The next field, or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtobufError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=0x1fff_ffff).contains(n))
            .ok_or_else(|| {
                ProtobufError::malformed(format!("invalid field number {}", key >> 3))
            })?;
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| {
                    ProtobufError::malformed(format!("length {len} does not fit in memory"))
                })?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            3 | 4 => {
                return Err(ProtobufError::malformed(format!(
                    "field {number} uses the deprecated group encoding"
                )));
            }
            other => {
                return Err(ProtobufError::malformed(format!(
                    "field {number} has invalid wire type {other}"
                )));
            }
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_truncation() {
        let mut r = Reader::new(&[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
        assert_eq!(r.next_field().ok(), Some(Some((1, WireValue::Varint(150)))));
        assert_eq!(
            r.next_field().ok(),
            Some(Some((2, WireValue::Bytes(b"hi".as_slice()))))
        );
        assert_eq!(r.next_field().ok(), Some(None));

        for bad in [
            &[0x08][..],         // no value
            &[0x08, 0x80],       // truncated varint
            &[0x12, 0x05, b'a'], // short bytes
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // > 64 bits
            &[0x0b],             // group
            &[0x0f],             // wire type 7
            &[0x00],             // field 0
            &[0x09, 1, 2, 3],    // short fixed64
            &[0x0d, 1],          // short fixed32
        ] {
            let mut r = Reader::new(bad);
            assert!(r.next_field().is_err(), "{bad:?} must fail");
        }
    }
}
