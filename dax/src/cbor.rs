//! CBOR (RFC 8949) as DAX uses it: an encoder that writes exactly the bytes the
//! official clients write (shortest argument encoding, indefinite-length maps for the
//! optional request parameters, DAX's own tags for sets and document-path ordinals),
//! and a decoder into a small value tree.
//!
//! Written here rather than taken from a crate (`minicbor`, `ciborium`): byte
//! conformance with the official client needs control over every header (the
//! indefinite-length map, a tag before a decimal's array, bytes built from other
//! encodings appended raw), and a decoder that reports "incomplete" so the
//! connection ([`crate::conn`]) can read a response in pieces. Both are ~250 lines.
//! Neighbours: [`crate::number`] (DynamoDB numbers on the wire), [`crate::codec`]
//! (the requests and responses built from these).

use thiserror::Error;

pub const MAJOR_UINT: u8 = 0x00;
pub const MAJOR_NINT: u8 = 0x20;
pub const MAJOR_BYTES: u8 = 0x40;
pub const MAJOR_TEXT: u8 = 0x60;
pub const MAJOR_ARRAY: u8 = 0x80;
pub const MAJOR_MAP: u8 = 0xa0;
pub const MAJOR_TAG: u8 = 0xc0;
pub const FALSE: u8 = 0xf4;
pub const TRUE: u8 = 0xf5;
pub const NULL: u8 = 0xf6;
pub const FLOAT64: u8 = 0xfb;
pub const MAP_STREAM: u8 = 0xbf;
pub const BREAK: u8 = 0xff;

/// Standard tags (RFC 8949 §3.4).
pub const TAG_POSBIGINT: u64 = 2;
pub const TAG_NEGBIGINT: u64 = 3;
pub const TAG_DECIMAL: u64 = 4;
/// DAX's tags for DynamoDB sets and list ordinals in document paths.
pub const TAG_STRING_SET: u64 = 3321;
pub const TAG_NUMBER_SET: u64 = 3322;
pub const TAG_BINARY_SET: u64 = 3323;
pub const TAG_PATH_ORDINAL: u64 = 3324;

#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum CborError {
    /// More bytes are needed to finish the item (not an error on a socket).
    #[error("CBOR input ends inside an item")]
    Incomplete,
    #[error("malformed CBOR: {0}")]
    Malformed(String),
}

/// An encoder appending to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder { buf: Vec::new() }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Major type with its argument in the shortest form.
    pub fn head(&mut self, major: u8, v: u64) -> &mut Self {
        if v < 24 {
            self.buf.push(major | v as u8);
        } else if v <= 0xff {
            self.buf.extend_from_slice(&[major | 24, v as u8]);
        } else if v <= 0xffff {
            self.buf.push(major | 25);
            self.buf.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.push(major | 26);
            self.buf.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.buf.push(major | 27);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(MAJOR_UINT, v as u64)
        } else {
            self.head(MAJOR_NINT, (-1 - v) as u64)
        }
    }

    /// Any integer: beyond 64 bits as a bignum (tag 2 or 3 over big-endian bytes).
    pub fn bigint(&mut self, v: i128) -> &mut Self {
        if (0..=u64::MAX as i128).contains(&v) {
            self.head(MAJOR_UINT, v as u64)
        } else if v < 0 && -1 - v <= u64::MAX as i128 {
            self.head(MAJOR_NINT, (-1 - v) as u64)
        } else {
            let (tag, mag) = if v >= 0 {
                (TAG_POSBIGINT, v as u128)
            } else {
                (TAG_NEGBIGINT, (-1 - v) as u128)
            };
            let bytes = mag.to_be_bytes();
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(15);
            self.head(MAJOR_TAG, tag);
            self.bytes(&bytes[first..])
        }
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub fn array(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, len as u64)
    }

    pub fn map(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_MAP, len as u64)
    }

    pub fn tag(&mut self, tag: u64) -> &mut Self {
        self.head(MAJOR_TAG, tag)
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.buf.push(if b { TRUE } else { FALSE });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.push(NULL);
        self
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.push(FLOAT64);
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn map_stream(&mut self) -> &mut Self {
        self.buf.push(MAP_STREAM);
        self
    }

    pub fn brk(&mut self) -> &mut Self {
        self.buf.push(BREAK);
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
}

/// A decoded CBOR item. Maps keep their order (DAX maps are small and ordered).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any integer that fits: unsigned, negative (major 1) or a bignum.
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tag(u64, Box<Value>),
    Bool(bool),
    Null,
    Float(f64),
}

impl Value {
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Encodes the value back (definite lengths; shortest heads).
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Value::Int(i) => {
                e.bigint(*i);
            }
            Value::Bytes(b) => {
                e.bytes(b);
            }
            Value::Text(s) => {
                e.text(s);
            }
            Value::Array(a) => {
                e.array(a.len());
                for v in a {
                    v.encode(e);
                }
            }
            Value::Map(m) => {
                e.map(m.len());
                for (k, v) in m {
                    k.encode(e);
                    v.encode(e);
                }
            }
            Value::Tag(t, v) => {
                e.tag(*t);
                v.encode(e);
            }
            Value::Bool(b) => {
                e.bool(*b);
            }
            Value::Null => {
                e.null();
            }
            Value::Float(f) => {
                e.f64(*f);
            }
        }
    }
}

/// A decoder over a byte slice.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pub pos: usize,
}

fn malformed<T>(m: impl Into<String>) -> Result<T, CborError> {
    Err(CborError::Malformed(m.into()))
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    pub fn peek(&self) -> Result<u8, CborError> {
        self.buf.get(self.pos).copied().ok_or(CborError::Incomplete)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Incomplete)?;
        if end > self.buf.len() {
            return Err(CborError::Incomplete);
        }
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Raw bytes (the DAX handshake's magic string is not CBOR).
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        self.take(n)
    }

    /// Reads a head: (major type, argument); `None` argument for indefinite length.
    fn head(&mut self) -> Result<(u8, Option<u64>), CborError> {
        let b = self.take(1)?[0];
        let major = b & 0xe0;
        let info = b & 0x1f;
        let arg = match info {
            0..=23 => Some(info as u64),
            24 => Some(self.take(1)?[0] as u64),
            25 => {
                let s = self.take(2)?;
                Some(u16::from_be_bytes([s[0], s[1]]) as u64)
            }
            26 => {
                let s = self.take(4)?;
                Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
            }
            27 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Some(u64::from_be_bytes(a))
            }
            31 => None,
            _ => return malformed(format!("reserved additional info {info}")),
        };
        Ok((major, arg))
    }

    /// The next complete item.
    pub fn value(&mut self) -> Result<Value, CborError> {
        let start = self.pos;
        let first = self.peek()?;
        if first == BREAK {
            return malformed("unexpected break");
        }
        let (major, arg) = self.head()?;
        let len = |arg: Option<u64>| -> Result<u64, CborError> {
            arg.ok_or(CborError::Malformed(
                "indefinite length where definite expected".into(),
            ))
        };
        Ok(match major {
            MAJOR_UINT => Value::Int(len(arg)? as i128),
            MAJOR_NINT => Value::Int(-1 - arg.unwrap_or(0) as i128),
            MAJOR_BYTES | MAJOR_TEXT => {
                let data = match arg {
                    Some(n) => self.take(n as usize)?.to_vec(),
                    None => {
                        // Indefinite: definite chunks of the same major type until break.
                        let mut out = Vec::new();
                        loop {
                            if self.peek()? == BREAK {
                                self.pos += 1;
                                break;
                            }
                            match self.value()? {
                                Value::Bytes(b) => out.extend(b),
                                Value::Text(t) => out.extend(t.into_bytes()),
                                _ => return malformed("bad chunk in string stream"),
                            }
                        }
                        out
                    }
                };
                if major == MAJOR_TEXT {
                    Value::Text(
                        String::from_utf8(data).map_err(|_| {
                            CborError::Malformed(format!("invalid UTF-8 at {start}"))
                        })?,
                    )
                } else {
                    Value::Bytes(data)
                }
            }
            MAJOR_ARRAY => {
                let mut items = Vec::new();
                match arg {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(self.value()?);
                        }
                    }
                    None => loop {
                        if self.peek()? == BREAK {
                            self.pos += 1;
                            break;
                        }
                        items.push(self.value()?);
                    },
                }
                Value::Array(items)
            }
            MAJOR_MAP => {
                let mut items = Vec::new();
                match arg {
                    Some(n) => {
                        for _ in 0..n {
                            let k = self.value()?;
                            items.push((k, self.value()?));
                        }
                    }
                    None => loop {
                        if self.peek()? == BREAK {
                            self.pos += 1;
                            break;
                        }
                        let k = self.value()?;
                        items.push((k, self.value()?));
                    },
                }
                Value::Map(items)
            }
            MAJOR_TAG => {
                let tag = len(arg)?;
                let inner = self.value()?;
                match (tag, inner) {
                    (TAG_POSBIGINT | TAG_NEGBIGINT, Value::Bytes(b)) => {
                        if b.len() > 15 {
                            return malformed("bignum beyond 120 bits");
                        }
                        let mag = b.iter().fold(0i128, |a, x| (a << 8) | *x as i128);
                        Value::Int(if tag == TAG_POSBIGINT { mag } else { -1 - mag })
                    }
                    (t, v) => Value::Tag(t, Box::new(v)),
                }
            }
            _ => match first {
                FALSE => Value::Bool(false),
                TRUE => Value::Bool(true),
                NULL | 0xf7 => Value::Null,
                0xf9 => malformed("half floats are not used by DAX")?,
                0xfa => {
                    let f = f32::from_bits(arg.unwrap_or(0) as u32);
                    Value::Float(f as f64)
                }
                FLOAT64 => Value::Float(f64::from_bits(arg.unwrap_or(0))),
                other => return malformed(format!("unsupported simple value {other:#x}")),
            },
        })
    }

    /// The next item's encoded bytes, unparsed.
    pub fn raw_value(&mut self) -> Result<&'a [u8], CborError> {
        let start = self.pos;
        self.value()?;
        Ok(&self.buf[start..self.pos])
    }
}

/// Decodes every item in `buf` (an item value's concatenated attribute values).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, CborError> {
    let mut d = Decoder::new(buf);
    let mut out = Vec::new();
    while !d.at_end() {
        out.push(d.value().map_err(|e| match e {
            CborError::Incomplete => CborError::Malformed("truncated item".into()),
            other => other,
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_shortest_and_round_trip() {
        let mut e = Encoder::new();
        e.int(0)
            .int(23)
            .int(24)
            .int(-1)
            .int(-25)
            .int(65536)
            .bigint(1 << 70);
        e.text("é")
            .bytes(b"ab")
            .array(1)
            .null()
            .map_stream()
            .int(1)
            .bool(true)
            .brk();
        assert_eq!(
            e.buf[..9],
            [0x00, 0x17, 0x18, 0x18, 0x20, 0x38, 0x18, 0x1a, 0x00]
        );
        let all = decode_all(&e.buf).unwrap_or_default();
        assert_eq!(all[6], Value::Int(1 << 70));
        assert_eq!(all[7], Value::Text("é".into()));
        assert_eq!(
            all[10],
            Value::Map(vec![(Value::Int(1), Value::Bool(true))])
        );
        assert_eq!(
            Decoder::new(&e.buf[..e.buf.len() - 1]).value().map(|_| ()),
            Ok(())
        );
        let mut d = Decoder::new(&[0x62, b'a']);
        assert_eq!(d.value(), Err(CborError::Incomplete));
    }
}
