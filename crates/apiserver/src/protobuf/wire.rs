//! The protobuf wire format, read without allocating.
//!
//! Everything here borrows from the request body: a length-delimited field is
//! returned as a sub-slice, and every declared length is checked against what
//! is left of the input first, so a hostile length can neither allocate nor
//! read past the end. Errors are plain strings; the schema layer adds where in
//! the object they happened.

/// How a field's value is laid out on the wire (the low three bits of a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// 0: a base-128 varint.
    Varint,
    /// 1: eight little-endian bytes.
    Fixed64,
    /// 2: a varint length, then that many bytes.
    Len,
    /// 5: four little-endian bytes.
    Fixed32,
}

impl WireType {
    /// The name protobuf's own documentation uses, for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// The largest field number protobuf allows (2^29 - 1).
const MAX_TAG: u64 = (1 << 29) - 1;

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A varint of at most ten bytes; a tenth byte may only carry the 64th bit.
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err("truncated varint".into());
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits".into());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint overflows 64 bits".into())
    }

    /// A field key: its number and wire type. Field number 0, numbers past
    /// 2^29 - 1, the deprecated group wire types (3, 4) and the undefined ones
    /// (6, 7) are all malformed.
    pub(crate) fn key(&mut self) -> Result<(u32, WireType), String> {
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 || tag > MAX_TAG {
            return Err(format!("invalid field number {tag}"));
        }
        let wire = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            3 | 4 => return Err(format!("field {tag} uses the deprecated group encoding")),
            w => return Err(format!("field {tag} has invalid wire type {w}")),
        };
        // `tag` fits: it was checked against MAX_TAG above.
        Ok((tag as u32, wire))
    }

    /// The payload of a length-delimited field, as a slice of the input.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let left = self.buf.len() - self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= left => {
                let out = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err(format!(
                "length {len} runs past the end of the data ({left} bytes left)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&over).varint().is_err());
        let long = [0x80; 11];
        assert!(Reader::new(&long).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[]).varint().is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(Reader::new(&[0x0a]).key(), Ok((1, WireType::Len)));
        assert_eq!(Reader::new(&[0x08]).key(), Ok((1, WireType::Varint)));
        assert!(Reader::new(&[0x02]).key().is_err(), "field number 0");
        assert!(Reader::new(&[0x0b]).key().is_err(), "start group");
        assert!(Reader::new(&[0x0e]).key().is_err(), "wire type 6");
    }

    #[test]
    fn lengths_are_checked_before_use() {
        assert_eq!(Reader::new(&[0x02, b'h', b'i']).bytes(), Ok(&b"hi"[..]));
        assert!(Reader::new(&[0x03, b'h', b'i']).bytes().is_err());
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(Reader::new(&huge).bytes().is_err());
    }
}
