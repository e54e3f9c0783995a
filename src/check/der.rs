//! Just enough DER to describe a certificate in the report: its subject's
//! and issuer's common names (and raw names, to tell which CA issued it)
//! and its notAfter. No validation: rustls verifies; this only describes.

/// What the report says about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// The issuer's CN (else the whole name, roughly).
    pub(crate) issuer_cn: String,
    /// The subject's CN.
    pub(crate) subject_cn: String,
    /// The issuer Name, DER, to match against a CA's subject.
    pub(crate) issuer_raw: Vec<u8>,
    /// The subject Name, DER.
    pub(crate) subject_raw: Vec<u8>,
    /// notAfter, seconds since the epoch.
    pub(crate) not_after: i64,
}

/// One TLV: its tag, its content, the whole TLV, and what follows it.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Reads one TLV off the front of `input`.
fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((tag, &rest[..len], &input[..header + len], &rest[len..]))
}

/// Parses a DER certificate.
pub(crate) fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (0x30, cert, _, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r; // [0] version
    }
    let (_, _, _, rest) = tlv(rest)?; // serialNumber
    let (_, _, _, rest) = tlv(rest)?; // signature algorithm
    let (0x30, issuer, issuer_raw, rest) = tlv(rest)? else {
        return None;
    };
    let (0x30, validity, _, rest) = tlv(rest)? else {
        return None;
    };
    let (0x30, subject, subject_raw, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, _, after) = tlv(validity)?;
    let (tag, not_after, _, _) = tlv(after)?;
    Some(CertInfo {
        issuer_cn: common_name(issuer),
        subject_cn: common_name(subject),
        issuer_raw: issuer_raw.to_vec(),
        subject_raw: subject_raw.to_vec(),
        not_after: time(tag, not_after)?,
    })
}

/// The CN of a Name (SEQUENCE OF SET OF SEQUENCE { OID, value }), else
/// its O, else "?".
fn common_name(mut name: &[u8]) -> String {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    let mut organisation = None;
    while let Some((_, set, _, rest)) = tlv(name) {
        name = rest;
        let Some((_, attribute, _, _)) = tlv(set) else {
            continue;
        };
        let Some((0x06, oid, _, value)) = tlv(attribute) else {
            continue;
        };
        let Some((_, value, _, _)) = tlv(value) else {
            continue;
        };
        let text = String::from_utf8_lossy(value).into_owned();
        if oid == CN {
            return text;
        }
        if oid == O {
            organisation = Some(text);
        }
    }
    organisation.unwrap_or_else(|| "?".into())
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as epoch seconds.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let days = days_from_civil(year, field(0)?, field(2)?);
    Some(days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of epoch seconds.
pub(crate) fn date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(days_from_civil(2027, 2, 28) * 86_400), "2027-02-28");
        assert_eq!(
            date(days_from_civil(2024, 2, 29) * 86_400 + 86_399),
            "2024-02-29"
        );
        assert_eq!(
            time(0x17, b"491231235959Z"),
            Some(days_from_civil(2049, 12, 31) * 86_400 + 86_399)
        );
        assert_eq!(
            time(0x18, b"20500101000000Z"),
            Some(days_from_civil(2050, 1, 1) * 86_400)
        );
        assert_eq!(time(0x17, b"garbage"), None);
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(cert_info(b""), None);
        assert_eq!(cert_info(&[0x30, 0x82, 0xff]), None);
        assert_eq!(cert_info(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
