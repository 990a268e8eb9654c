//! Connection authorisation: DAX authenticates a connection, not each request. The
//! client signs, with SigV4 for the service `dax`, an empty-bodied `POST /` to host
//! `dax.amazonaws.com` signed over `host` and `x-amz-date`, and sends the access key
//! id, the signature, the string to sign and the session token (if any) in an
//! `authorizeConnection` call ahead of its next request; it re-authorises before
//! the five-minute authorisation lapses (official clients: Python `Tube.reauth`,
//! `SigV4Gen.py`; Go `dax/internal/client/sigv4.go`). SigV4 itself:
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.

use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

pub const HOST: &str = "dax.amazonaws.com";
pub const SERVICE: &str = "dax";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub signature: String,
    pub string_to_sign: String,
}

/// `YYYYMMDDTHHMMSSZ` of a time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The string to sign for a connection at `t` in `region`.
/// A session token is sent beside the signature, never signed (the official client
/// signs `host` and `x-amz-date` only).
pub fn string_to_sign(t: SystemTime, region: &str) -> String {
    let date = amz_date(t);
    let headers = format!("host:{HOST}\nx-amz-date:{date}\n");
    let canonical = format!(
        "POST\n/\n\n{headers}\nhost;x-amz-date\n{}",
        hex::encode(Sha256::digest(b""))
    );
    format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/{region}/{SERVICE}/aws4_request\n{}",
        &date[..8],
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

pub fn sign(secret: &str, t: SystemTime, region: &str) -> Signature {
    let sts = string_to_sign(t, region);
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, t, region, SERVICE);
    Signature {
        signature: aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes()),
        string_to_sign: sts,
    }
}

/// Whether `signature` signs `string_to_sign` with `secret` (for servers): the
/// signing date and region are read from the string's credential scope.
pub fn verify(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    let lines: Vec<&str> = string_to_sign.split('\n').collect();
    let (Some(scope), Some(stamp)) = (lines.get(2), lines.get(1)) else {
        return false;
    };
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 4 || parts[2] != SERVICE {
        return false;
    }
    let Some(t) = parse_amz_date(stamp) else {
        return false;
    };
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, t, parts[1], SERVICE);
    aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes()) == signature
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (hh, mm, ss) = (n(9, 11)?, n(11, 13)?, n(13, 15)?);
    // Days from civil (inverse of amz_date's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_and_signatures() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_607_539);
        assert_eq!(amz_date(t), "20251201T164539Z");
        assert_eq!(parse_amz_date("20251201T164539Z"), Some(t));
        let s = sign("testing", t, "us-east-1");
        assert!(s.string_to_sign.starts_with(
            "AWS4-HMAC-SHA256\n20251201T164539Z\n20251201/us-east-1/dax/aws4_request\n"
        ));
        assert!(verify("testing", &s.string_to_sign, &s.signature));
        assert!(!verify("other", &s.string_to_sign, &s.signature));
    }
}
