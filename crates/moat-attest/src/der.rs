//! A minimal, bounds-checked DER reader and writer for the few structures Moat handles by hand:
//! the CMW extension value (a `UTF8String`), Enarx's evidence `SEQUENCE`s, and small integers in
//! the VCEK's TCB extensions. Anything richer goes through `x509-parser`; this exists so that
//! parsing attacker-supplied evidence never needs a general ASN.1 library or can panic.

use crate::Error;

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_UTF8_STRING: u8 = 0x0c;
pub const TAG_SEQUENCE: u8 = 0x30;

/// One tag-length-value element: its tag, its content and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Read one DER element from the start of `input`; return it and the bytes after it.
pub fn read<'a>(what: &'static str, input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), Error> {
    let bad = |detail: &str| Error::malformed(what, detail);
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("empty input"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tags are not used here"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(bad("unsupported length encoding"));
        }
        if rest.len() < n {
            return Err(bad("truncated length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        if len < 0x80 || (n > 1 && rest[0] == 0) {
            return Err(bad("non-minimal length"));
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("truncated value"));
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            value: &rest[..len],
            raw: &input[..header + len],
        },
        &rest[len..],
    ))
}

/// Read exactly one element of the given tag, with nothing after it.
pub fn read_only<'a>(what: &'static str, tag: u8, input: &'a [u8]) -> Result<Tlv<'a>, Error> {
    let (tlv, rest) = read(what, input)?;
    if tlv.tag != tag {
        return Err(Error::malformed(
            what,
            &format!("expected tag 0x{tag:02x}, found 0x{:02x}", tlv.tag),
        ));
    }
    if !rest.is_empty() {
        return Err(Error::malformed(what, "trailing bytes"));
    }
    Ok(tlv)
}

/// The elements inside a constructed value.
pub fn children<'a>(what: &'static str, mut value: &'a [u8]) -> Result<Vec<Tlv<'a>>, Error> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read(what, value)?;
        out.push(tlv);
        value = rest;
    }
    Ok(out)
}

/// A small non-negative INTEGER's value (as used by the VCEK's TCB extensions).
pub fn small_uint(what: &'static str, tlv: &Tlv<'_>) -> Result<u64, Error> {
    if tlv.tag != TAG_INTEGER || tlv.value.is_empty() || tlv.value.len() > 9 {
        return Err(Error::malformed(what, "expected a small INTEGER"));
    }
    if tlv.value[0] & 0x80 != 0 {
        return Err(Error::malformed(what, "negative INTEGER"));
    }
    let bytes = if tlv.value.len() == 9 {
        if tlv.value[0] != 0 {
            return Err(Error::malformed(what, "INTEGER too large"));
        }
        &tlv.value[1..]
    } else {
        tlv.value
    };
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
}

/// The three parts of a signed X.509 structure (certificate, CSR, CRL):
/// `SEQUENCE { tbs SEQUENCE, algorithm SEQUENCE { OID, ... }, signature BIT STRING }`.
pub struct Signed<'a> {
    pub tbs: Tlv<'a>,
    pub algorithm: Tlv<'a>,
}

/// Check the outer framing of a signed structure strictly: exactly three parts with the right
/// tags, the algorithm starting with an OID, and a signature with no unused bits. General
/// parsers accept a few variations here that no signature covers; Moat does not.
pub fn signed<'a>(what: &'static str, input: &'a [u8]) -> Result<Signed<'a>, Error> {
    const BIT_STRING: u8 = 0x03;
    const OID: u8 = 0x06;
    let outer = read_only(what, TAG_SEQUENCE, input)?;
    let parts = children(what, outer.value)?;
    let [tbs, algorithm, signature] = parts.as_slice() else {
        return Err(Error::malformed(
            what,
            "expected { tbs, algorithm, signature }",
        ));
    };
    if tbs.tag != TAG_SEQUENCE || algorithm.tag != TAG_SEQUENCE || signature.tag != BIT_STRING {
        return Err(Error::malformed(
            what,
            "unexpected tags in the signed structure",
        ));
    }
    if algorithm.value.first() != Some(&OID) {
        return Err(Error::malformed(
            what,
            "signature algorithm does not start with an OID",
        ));
    }
    if signature.value.first() != Some(&0) {
        return Err(Error::malformed(what, "signature has unused bits"));
    }
    Ok(Signed {
        tbs: *tbs,
        algorithm: *algorithm,
    })
}

/// For a certificate: the signature algorithm inside the signed TBS must equal the outer one
/// (RFC 5280 4.1.1.2), byte for byte.
pub fn certificate_algorithms_agree(what: &'static str, cert: &[u8]) -> Result<(), Error> {
    let signed = signed(what, cert)?;
    let fields = children(what, signed.tbs.value)?;
    // TBSCertificate: [0] version (optional), serialNumber, signature, ...
    let inner = match fields.first() {
        Some(v) if v.tag == 0xa0 => fields.get(2),
        _ => fields.get(1),
    };
    match inner {
        Some(alg) if alg.raw == signed.algorithm.raw => Ok(()),
        _ => Err(Error::malformed(
            what,
            "signature algorithm differs from the one inside the signed part",
        )),
    }
}

/// Encode one element.
pub fn write(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; len];
            let enc = write(TAG_OCTET_STRING, &value);
            let tlv = read_only("t", TAG_OCTET_STRING, &enc).unwrap();
            assert_eq!(tlv.value, &value[..]);
        }
    }

    #[test]
    fn refuses_bad_encodings() {
        assert!(read("t", &[]).is_err());
        assert!(read("t", &[0x04]).is_err());
        assert!(read("t", &[0x04, 0x05, 1, 2]).is_err());
        assert!(read("t", &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err()); // non-minimal
        assert!(read("t", &[0x04, 0x85, 1, 1, 1, 1, 1]).is_err()); // 5 length bytes
        assert!(read("t", &[0x1f, 0x01, 0x00]).is_err());
        assert!(read_only("t", TAG_OCTET_STRING, &[0x04, 0x00, 0x00]).is_err());
        assert!(read_only("t", TAG_SEQUENCE, &[0x04, 0x00]).is_err());
    }

    #[test]
    fn small_integers() {
        fn t(v: &[u8]) -> Tlv<'_> {
            Tlv {
                tag: TAG_INTEGER,
                value: v,
                raw: v,
            }
        }
        assert_eq!(small_uint("t", &t(&[0x00, 0xff])).unwrap(), 255);
        assert_eq!(small_uint("t", &t(&[0x5d])).unwrap(), 93);
        assert!(small_uint("t", &t(&[0x80])).is_err());
        assert!(small_uint("t", &t(&[])).is_err());
    }
}
