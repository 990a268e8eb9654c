//! DynamoDB numbers on the DAX wire, as the official client writes and reads them.
//!
//! - In attribute values and hash keys a number is a CBOR integer when its text has
//!   no `.`, `e` or `E`, otherwise a CBOR decimal (tag 4, `[exponent, mantissa]`)
//!   computed from the number's canonical decimal text.
//! - A range key that is a number is written in the order-preserving "lexicographic
//!   decimal" form DAX sorts keys by (one header byte for sign and exponent, then
//!   base-1000 digits packed ten bits each, then a terminator).
//! - Decoded numbers are rendered as Python's `str(Decimal)` renders them, which is
//!   what the official client hands its callers (so both clients report the same `N`).
//!
//! The number's digits are kept as text throughout: DynamoDB numbers have up to 38
//! significant digits, beyond `u128` once padded. Neighbours: [`crate::cbor`],
//! [`crate::codec`].

use crate::cbor::{Encoder, Value, TAG_DECIMAL};

/// DynamoDB's limits: 38 significant digits, exponent range (DynamoDB Developer
/// Guide, "Data types", Number: "Positive range: 1E-130 to 9.9999999999999999999999999999999999999E+125").
const MAX_DIGITS: usize = 38;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dec {
    pub neg: bool,
    /// Coefficient digits without leading zeros ("0" for zero); trailing zeros kept.
    pub digits: String,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid number `{0}`")]
pub struct BadNumber(pub String);

impl Dec {
    /// Parses decimal text (`-1.50`, `3e5`) as Python's `Decimal` does, refusing what
    /// DynamoDB's context would round.
    pub fn parse(s: &str) -> Result<Dec, BadNumber> {
        let bad = || BadNumber(s.to_string());
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (mant, e) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i64>().map_err(|_| bad())?),
            None => (body, 0),
        };
        let (int, frac) = match mant.find('.') {
            Some(i) => (&mant[..i], &mant[i + 1..]),
            None => (mant, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let all = format!("{int}{frac}");
        let digits = all.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        if digits.len() > MAX_DIGITS {
            return Err(bad());
        }
        let exp = e - frac.len() as i64;
        let adjusted = exp + digits.len() as i64 - 1;
        if digits != "0" && !(-130..=125).contains(&adjusted) {
            return Err(bad());
        }
        Ok(Dec {
            neg,
            digits: digits.to_string(),
            exp,
        })
    }

    /// Python's `str(Decimal)` (scientific notation when the exponent is positive or
    /// the number is very small).
    pub fn to_py_string(&self) -> String {
        let coef = &self.digits;
        let left = self.exp + coef.len() as i64;
        let dot = if self.exp <= 0 && left > -6 { left } else { 1 };
        let (int, frac) = if dot <= 0 {
            (
                "0".to_string(),
                format!(".{}{}", "0".repeat((-dot) as usize), coef),
            )
        } else if dot >= coef.len() as i64 {
            (
                format!("{}{}", coef, "0".repeat((dot - coef.len() as i64) as usize)),
                String::new(),
            )
        } else {
            (
                coef[..dot as usize].to_string(),
                format!(".{}", &coef[dot as usize..]),
            )
        };
        let exp = if left == dot {
            String::new()
        } else {
            format!("E{:+}", left - dot)
        };
        format!("{}{int}{frac}{exp}", if self.neg { "-" } else { "" })
    }
}

/// `N` text as the DAX wire's CBOR number.
pub fn encode_number(e: &mut Encoder, s: &str) -> Result<(), BadNumber> {
    if s.contains(['.', 'e', 'E']) {
        let d = Dec::parse(s)?;
        // The official client takes exponent and mantissa from the canonical text.
        let (exp, mantissa) = crack(&d.to_py_string()).ok_or_else(|| BadNumber(s.into()))?;
        e.tag(TAG_DECIMAL)
            .array(2)
            .bigint(exp as i128)
            .bigint(mantissa);
    } else {
        let v: i128 = s
            .trim()
            .trim_start_matches('+')
            .parse()
            .map_err(|_| BadNumber(s.into()))?;
        e.bigint(v);
    }
    Ok(())
}

/// Exponent and mantissa of canonical decimal text.
fn crack(s: &str) -> Option<(i64, i128)> {
    let (body, base) = match s.split_once('E') {
        Some((b, x)) => (b, x.parse::<i64>().ok()?),
        None => (s, 0),
    };
    match body.split_once('.') {
        Some((i, f)) => Some((base - f.len() as i64, format!("{i}{f}").parse().ok()?)),
        None => {
            let (neg, d) = body.strip_prefix('-').map_or((false, body), |d| (true, d));
            let trimmed = d.trim_end_matches('0');
            let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
            let m: i128 = trimmed.parse().ok()?;
            Some((
                base + (d.len() - trimmed.len()) as i64,
                if neg { -m } else { m },
            ))
        }
    }
}

/// A CBOR number from the wire as `N` text.
pub fn decode_number(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        Value::Tag(TAG_DECIMAL, inner) => match inner.as_ref() {
            Value::Array(a) if a.len() == 2 => {
                let exp = a[0].as_int()?;
                let m = a[1].as_int()?;
                Some(
                    Dec {
                        neg: m < 0,
                        digits: m.unsigned_abs().to_string(),
                        exp: i64::try_from(exp).ok()?,
                    }
                    .to_py_string(),
                )
            }
            _ => None,
        },
        Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// The order-preserving encoding of a number range key.
pub fn lex_encode(d: &Dec) -> Vec<u8> {
    if d.digits == "0" {
        return vec![0x80];
    }
    let mut out = Vec::new();
    let precision = d.digits.len() as i64;
    let exponent = precision + d.exp;
    if d.neg {
        if (-0x3e..0x3e).contains(&exponent) {
            out.push((0x3f - exponent) as u8);
        } else {
            out.push(if exponent < 0 { 0x7e } else { 0x01 });
            out.extend_from_slice(&(((exponent as u32) ^ 0x7fff_ffff).to_be_bytes()));
        }
    } else if (-0x3e..0x3e).contains(&exponent) {
        out.push((exponent + 0xc0) as u8);
    } else {
        out.push(if exponent < 0 { 0x81 } else { 0xfe });
        out.extend_from_slice(&(((exponent as u32) ^ 0x8000_0000).to_be_bytes()));
    }
    // Whole base-1000 digits: pad to a multiple of three; the terminator says how
    // many of the last group's digits are real.
    let pad = (3 - d.digits.len() % 3) % 3;
    let padded = format!("{}{}", d.digits, "0".repeat(pad));
    let mut terminator: u32 = match pad {
        2 => 0,
        1 => 1,
        _ => 2,
    };
    let mut groups: Vec<u32> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| c.iter().fold(0u32, |a, b| a * 10 + (b - b'0') as u32))
        .map(|g| if d.neg { 999 + 12 - g } else { g + 12 })
        .collect();
    if d.neg {
        terminator = 1023 - terminator;
    }
    groups.push(terminator);
    let mut accum: u64 = 0;
    let mut bits = 0;
    for g in groups {
        accum = (accum << 10) | g as u64;
        bits += 10;
        while bits >= 8 {
            bits -= 8;
            out.push((accum >> bits) as u8);
        }
        accum &= (1 << bits) - 1;
    }
    if bits != 0 {
        out.push((accum << (8 - bits)) as u8);
    }
    out
}

/// Decodes [`lex_encode`]'s form (the whole of `b`).
pub fn lex_decode(b: &[u8]) -> Option<Dec> {
    let header = *b.first()?;
    let mut pos = 1;
    let (neg, exponent): (bool, i64) = match header {
        0x7f | 0x80 => {
            return Some(Dec {
                neg: false,
                digits: "0".into(),
                exp: 0,
            })
        }
        0x00 | 0xff => return None,
        0x01 | 0x7e => {
            let raw = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) ^ 0x7fff_ffff;
            pos = 5;
            (true, raw as i32 as i64)
        }
        0x81 | 0xfe => {
            let raw = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) ^ 0x8000_0000;
            pos = 5;
            (false, raw as i32 as i64)
        }
        h if h >= 0x82 => (false, h as i64 - 0xc0),
        h => (true, 0x3f - h as i64),
    };
    let mut groups: Vec<u32> = Vec::new();
    let mut accum: u64 = 0;
    let mut bits = 0;
    let keep;
    'outer: loop {
        accum = (accum << 8) | *b.get(pos)? as u64;
        pos += 1;
        bits += 8;
        while bits >= 10 {
            let mut g = ((accum >> (bits - 10)) & 0x3ff) as u32;
            bits -= 10;
            accum &= (1 << bits) - 1;
            if neg {
                g = 1023 - g;
            }
            if g <= 2 {
                keep = g as usize + 1;
                break 'outer;
            }
            groups.push(g - 12);
        }
    }
    let (last, first) = groups.split_last()?;
    let mut digits = String::new();
    for (i, g) in first.iter().enumerate() {
        if i == 0 {
            digits.push_str(&g.to_string());
        } else {
            digits.push_str(&format!("{g:03}"));
        }
    }
    let last = format!("{last:03}");
    let tail = &last[..keep];
    if first.is_empty() {
        digits.push_str(tail.trim_start_matches('0'));
    } else {
        digits.push_str(tail);
    }
    let precision = if first.is_empty() {
        keep as i64
    } else {
        3 * first.len() as i64 + keep as i64
    };
    Some(Dec {
        neg,
        digits,
        exp: exponent - precision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_decimal_text() {
        for (input, shown) in [
            ("1.50", "1.50"),
            ("1e5", "1E+5"),
            ("0.0000001", "1E-7"),
            ("-0.05", "-0.05"),
            ("120", "120"),
            ("0.00", "0.00"),
        ] {
            assert_eq!(
                Dec::parse(input).map(|d| d.to_py_string()),
                Ok(shown.into())
            );
        }
        assert!(Dec::parse("1.2.3").is_err());
        assert!(Dec::parse(&"9".repeat(39)).is_err());
    }

    #[test]
    fn lexdecimal_round_trips_and_sorts() {
        let values = [
            "-1000.5",
            "-12",
            "-1",
            "-0.25",
            "0",
            "0.001",
            "1",
            "5",
            "12",
            "999",
            "1000",
            "1764590000000000",
            "1764590000000001",
        ];
        let encoded: Vec<Vec<u8>> = values
            .iter()
            .map(|v| lex_encode(&Dec::parse(v).expect("number")))
            .collect();
        for w in encoded.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
        for (v, e) in values.iter().zip(&encoded) {
            let d = lex_decode(e).expect("decodes");
            assert_eq!(d.to_py_string(), Dec::parse(v).expect("n").to_py_string());
        }
    }
}
