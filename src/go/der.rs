//! DER reading as Go's `golang.org/x/crypto/cryptobyte` does it (DER lengths, single-byte
//! tags only, minimal INTEGERs, `encoding/asn1`'s OID and BIT STRING rules): the cursor the
//! certificate parser (`x509`) and the signature checks read with. It knows no certificate
//! structure and does no I/O.

/// An OBJECT IDENTIFIER as Go holds it: its components.
pub type Oid = Vec<u32>;

pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const NUMERIC_STRING: u8 = 0x12;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const T61_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const BMP_STRING: u8 = 0x1e;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[n]` context-specific, primitive.
    pub const fn ctx(n: u8) -> u8 {
        0x80 | n
    }
    /// `[n]` context-specific, constructed.
    pub const fn ctx_cons(n: u8) -> u8 {
        0xa0 | n
    }
}

/// A cursor over DER bytes with cryptobyte's rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Der<'a> {
    s: &'a [u8],
}

impl<'a> Der<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Der { s }
    }

    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    /// cryptobyte `readASN1`: returns (tag, element or contents).
    fn read_any_inner(&mut self, skip_header: bool) -> Option<(u8, &'a [u8])> {
        let s = self.s;
        if s.len() < 2 {
            return None;
        }
        let (t, len_byte) = (s[0], s[1]);
        if t & 0x1f == 0x1f {
            return None;
        }
        let (length, header) = if len_byte & 0x80 == 0 {
            (usize::from(len_byte) + 2, 2usize)
        } else {
            let len_len = usize::from(len_byte & 0x7f);
            if len_len == 0 || len_len > 4 || s.len() < 2 + len_len {
                return None;
            }
            let mut l: u32 = 0;
            for b in &s[2..2 + len_len] {
                l = (l << 8) | u32::from(*b);
            }
            if l < 128 || (l >> ((len_len - 1) * 8)) == 0 {
                return None;
            }
            let header = 2 + len_len;
            (header.checked_add(l as usize)?, header)
        };
        if s.len() < length {
            return None;
        }
        let (el, rest) = s.split_at(length);
        self.s = rest;
        Some((t, if skip_header { &el[header..] } else { el }))
    }

    /// `ReadAnyASN1`: tag and contents.
    pub fn read_any(&mut self) -> Option<(u8, &'a [u8])> {
        self.read_any_inner(true)
    }

    /// `ReadAnyASN1Element`: tag and the whole element.
    pub fn read_any_element(&mut self) -> Option<(u8, &'a [u8])> {
        self.read_any_inner(false)
    }

    /// `ReadASN1`: contents of an element with this tag.
    pub fn read(&mut self, t: u8) -> Option<&'a [u8]> {
        let mut c = *self;
        let (got, v) = c.read_any_inner(true)?;
        if got != t {
            return None;
        }
        *self = c;
        Some(v)
    }

    /// `ReadASN1Element`: the whole element with this tag.
    pub fn read_element(&mut self, t: u8) -> Option<&'a [u8]> {
        let mut c = *self;
        let (got, v) = c.read_any_inner(false)?;
        if got != t {
            return None;
        }
        *self = c;
        Some(v)
    }

    pub fn peek(&self, t: u8) -> bool {
        self.s.first() == Some(&t)
    }

    /// `ReadOptionalASN1`: `None` on a malformed element, `Some(None)` when absent.
    pub fn read_optional(&mut self, t: u8) -> Option<Option<&'a [u8]>> {
        if self.peek(t) {
            self.read(t).map(Some)
        } else {
            Some(None)
        }
    }

    pub fn read_bool(&mut self) -> Option<bool> {
        let v = self.read(tag::BOOLEAN)?;
        match v {
            [0] => Some(false),
            [0xff] => Some(true),
            _ => None,
        }
    }

    /// An INTEGER's minimal two's-complement contents.
    pub fn read_integer_bytes(&mut self) -> Option<&'a [u8]> {
        let v = self.read(tag::INTEGER)?;
        check_integer(v).then_some(v)
    }

    pub fn read_i64(&mut self) -> Option<i64> {
        let v = self.read_integer_bytes()?;
        if v.len() > 8 {
            return None;
        }
        let mut out: i64 = if v[0] & 0x80 != 0 { -1 } else { 0 };
        for b in v {
            out = (out << 8) | i64::from(*b);
        }
        Some(out)
    }

    /// `ReadASN1ObjectIdentifier` of the x/crypto Go 1.19 vendors: a subidentifier may be
    /// padded with leading 0x80 octets.
    pub fn read_oid(&mut self) -> Option<Oid> {
        let v = self.read(tag::OID)?;
        parse_oid(v, false)
    }

    /// `ReadASN1ObjectIdentifier` of the x/crypto Go 1.22 vendors, and encoding/asn1's
    /// `parseObjectIdentifier` in every release: a subidentifier led by 0x80 (not minimally
    /// encoded, X.690 8.19.2) is refused (go1.22.12
    /// src/vendor/golang.org/x/crypto/cryptobyte/asn1.go:436-440; go1.19.8
    /// src/encoding/asn1/asn1.go:316-320).
    pub fn read_oid_minimal(&mut self) -> Option<Oid> {
        let v = self.read(tag::OID)?;
        parse_oid(v, true)
    }

    pub fn read_bit_string(&mut self) -> Option<BitString<'a>> {
        let v = self.read(tag::BIT_STRING)?;
        let (&padding, bytes) = v.split_first()?;
        if padding > 7
            || (bytes.is_empty() && padding != 0)
            || (!bytes.is_empty() && bytes[bytes.len() - 1] & ((1u8 << padding) - 1) != 0)
        {
            return None;
        }
        Some(BitString {
            bytes,
            bit_len: bytes.len() * 8 - usize::from(padding),
        })
    }
}

fn check_integer(v: &[u8]) -> bool {
    match v {
        [] => false,
        [_] => true,
        [a, b, ..] => !((*a == 0 && b & 0x80 == 0) || (*a == 0xff && b & 0x80 == 0x80)),
    }
}

fn parse_oid(mut v: &[u8], minimal: bool) -> Option<Oid> {
    if v.is_empty() {
        return None;
    }
    let base128 = |v: &mut &[u8]| -> Option<u32> {
        let mut ret: u32 = 0;
        let mut i = 0;
        while let Some((&b, rest)) = v.split_first() {
            if i == 5 || ret >= 1 << (31 - 7) || (minimal && i == 0 && b == 0x80) {
                return None;
            }
            ret = (ret << 7) | u32::from(b & 0x7f);
            *v = rest;
            if b & 0x80 == 0 {
                return Some(ret);
            }
            i += 1;
        }
        None
    };
    let first = base128(&mut v)?;
    let mut out = if first < 80 {
        vec![first / 40, first % 40]
    } else {
        vec![2, first - 80]
    };
    while !v.is_empty() {
        out.push(base128(&mut v)?);
    }
    Some(out)
}

/// A BIT STRING as `encoding/asn1.BitString`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BitString<'a> {
    pub bytes: &'a [u8],
    pub bit_len: usize,
}

impl BitString<'_> {
    /// `BitString.At`.
    pub fn at(&self, i: usize) -> bool {
        i < self.bit_len && (self.bytes[i / 8] >> (7 - (i % 8))) & 1 == 1
    }

    /// `BitString.RightAlign`.
    pub fn right_align(&self) -> Vec<u8> {
        let shift = 8 - (self.bit_len % 8);
        if shift == 8 || self.bytes.is_empty() {
            return self.bytes.to_vec();
        }
        let mut a = Vec::with_capacity(self.bytes.len());
        a.push(self.bytes[0] >> shift);
        a.extend(
            self.bytes
                .windows(2)
                .map(|w| (w[0] << (8 - shift)) | (w[1] >> shift)),
        );
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_follow_cryptobyte() {
        // (input, readable as a SEQUENCE?)
        let cases: &[(&[u8], bool)] = &[
            (&[0x30, 0x00], true),
            (&[0x30, 0x01, 0x05], true),
            (&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5], false), // long form for < 128
            (&[0x30, 0x82, 0x00, 0x80], false),          // leading zero length octet
            (&[0x30, 0x85, 1, 1, 1, 1, 1], false),       // length of length > 4
            (&[0x30, 0x05, 1], false),                   // truncated
            (&[0x3f, 0x00], false),                      // high tag number form
            (&[0x30], false),
            (&[], false),
        ];
        for (input, ok) in cases {
            assert_eq!(
                Der::new(input).read(tag::SEQUENCE).is_some(),
                *ok,
                "{input:x?}"
            );
        }
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        assert_eq!(
            Der::new(&long).read(tag::SEQUENCE).map(<[u8]>::len),
            Some(128)
        );
    }

    #[test]
    fn integers_must_be_minimal() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (&[0x02, 0x01, 0x00], Some(0)),
            (&[0x02, 0x01, 0xff], Some(-1)),
            (&[0x02, 0x02, 0x00, 0x80], Some(128)),
            (&[0x02, 0x02, 0x00, 0x7f], None),
            (&[0x02, 0x02, 0xff, 0x80], None),
            (&[0x02, 0x00], None),
            (&[0x02, 0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0], None),
        ];
        for (input, want) in cases {
            assert_eq!(Der::new(input).read_i64(), *want, "{input:x?}");
        }
    }

    #[test]
    fn bit_strings_read_and_right_align_like_go() {
        let b = Der::new(&[0x03, 0x03, 0x06, 0xaa, 0xc0])
            .read_bit_string()
            .unwrap();
        assert_eq!(b.bit_len, 10);
        assert!(b.at(0) && !b.at(1) && b.at(8) && b.at(9) && !b.at(10));
        assert_eq!(b.right_align(), vec![0x02, 0xab]);
        // padding bits must be zero, at most 7, and absent for an empty string
        for bad in [
            &[0x03, 0x02, 0x01, 0x01][..],
            &[0x03, 0x02, 0x08, 0x00],
            &[0x03, 0x01, 0x01],
            &[0x03, 0x00],
        ] {
            assert!(Der::new(bad).read_bit_string().is_none(), "{bad:x?}");
        }
    }

    #[test]
    fn oids_decode_like_go() {
        let cases: &[(&[u8], Option<Vec<u32>>)] = &[
            (&[0x55, 0x1d, 0x11], Some(vec![2, 5, 29, 17])),
            (
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
                Some(vec![1, 2, 840, 113549, 1, 1, 11]),
            ),
            (&[0x88, 0x37, 0x03], Some(vec![2, 999, 3])),
            (&[], None),
            (&[0x2a, 0x86], None), // truncated
            (&[0x2a, 0xff, 0xff, 0xff, 0xff, 0x7f], None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_oid(input, false), *want, "{input:x?}");
            assert_eq!(parse_oid(input, true), *want, "{input:x?}");
        }
        // A subidentifier padded with a leading 0x80: 1.2.3.5 as `2a 03 80 05`.
        assert_eq!(
            parse_oid(&[0x2a, 0x03, 0x80, 0x05], false),
            Some(vec![1, 2, 3, 5])
        );
        assert_eq!(parse_oid(&[0x2a, 0x03, 0x80, 0x05], true), None);
        assert_eq!(parse_oid(&[0x80, 0x2a], true), None);
    }
}
