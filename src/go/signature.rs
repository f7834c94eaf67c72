//! Signature checks over a Go-parsed public key, accepting what Go's crypto accepts: RSA of
//! any size (Go 1.19 has no minimum; webpki wants 2048–8192 bits), PKCS#1 v1.5 and PSS
//! (salt length = hash length), ECDSA, Ed25519. It owns the choice of ring algorithm and the
//! RSA fallback; it does not decide which signature algorithm is allowed (Go's SHA-1 and
//! MD5 policy lives in `goverify`, the TLS scheme policy in `capture`).
//!
//! ring is used wherever it has a matching algorithm. ring has no RSA verification for
//! PKCS#1 SHA-384 under 2048 bits, for PSS under 2048 bits, for any key under 1024 or over
//! 8192 bits, or for exponents outside 3..2^33 (odd); for those, RSA is computed here with
//! big integers exactly as Go 1.19's `crypto/rsa` does (`VerifyPKCS1v15`, `VerifyPSS`).
//! ECDSA on P-224 or P-521, and ECDSA with SHA-512 or SHA-1, have no ring algorithm and no
//! fallback: they come back as `SigError::Unsupported` so that callers can say "cannot
//! decide" instead of guessing.

use super::x509::{bit_len, Curve, PublicKey};
use ring::signature as rsig;
use x509_parser::num_bigint::BigUint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Hash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha384 => &ring::digest::SHA384,
            Hash::Sha512 => &ring::digest::SHA512,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    /// DER DigestInfo prefix for PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// The signature does not verify with this key.
    Invalid,
    /// The key cannot make this kind of signature (an RSA key and an ECDSA scheme, ...).
    WrongKeyType,
    /// Go would check it, ring cannot, and there is no fallback here.
    Unsupported(String),
}

/// Verify `signature` over `message` (not pre-hashed) with `key`.
pub fn verify(
    key: &PublicKey,
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    match (key, scheme) {
        (PublicKey::Rsa { n, e }, Scheme::RsaPkcs1(h)) => {
            verify_rsa(n, *e, false, h, message, signature)
        }
        (PublicKey::Rsa { n, e }, Scheme::RsaPss(h)) => {
            verify_rsa(n, *e, true, h, message, signature)
        }
        (PublicKey::Ecdsa { curve, point }, Scheme::Ecdsa(h)) => {
            let alg: &dyn rsig::VerificationAlgorithm = match (curve, h) {
                (Curve::P256, Hash::Sha256) => &rsig::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, Hash::Sha384) => &rsig::ECDSA_P256_SHA384_ASN1,
                (Curve::P384, Hash::Sha256) => &rsig::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, Hash::Sha384) => &rsig::ECDSA_P384_SHA384_ASN1,
                (c, h) => {
                    return Err(SigError::Unsupported(format!(
                        "ECDSA {c:?} with {} (no ring algorithm)",
                        h.name()
                    )))
                }
            };
            rsig::UnparsedPublicKey::new(alg, point)
                .verify(message, signature)
                .map_err(|_| SigError::Invalid)
        }
        (PublicKey::Ed25519(k), Scheme::Ed25519) => rsig::UnparsedPublicKey::new(&rsig::ED25519, k)
            .verify(message, signature)
            .map_err(|_| SigError::Invalid),
        _ => Err(SigError::WrongKeyType),
    }
}

fn ring_rsa_params(pss: bool, h: Hash, bits: usize) -> Option<&'static rsig::RsaParameters> {
    if !(1024..=8192).contains(&bits) {
        return None;
    }
    let big = bits >= 2048;
    Some(match (pss, h, big) {
        (false, Hash::Sha1, _) => &rsig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (false, Hash::Sha256, true) => &rsig::RSA_PKCS1_2048_8192_SHA256,
        (false, Hash::Sha256, false) => &rsig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        (false, Hash::Sha384, true) => &rsig::RSA_PKCS1_2048_8192_SHA384,
        (false, Hash::Sha512, true) => &rsig::RSA_PKCS1_2048_8192_SHA512,
        (false, Hash::Sha512, false) => &rsig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        (true, Hash::Sha256, true) => &rsig::RSA_PSS_2048_8192_SHA256,
        (true, Hash::Sha384, true) => &rsig::RSA_PSS_2048_8192_SHA384,
        (true, Hash::Sha512, true) => &rsig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn verify_rsa(
    n: &[u8],
    e: u64,
    pss: bool,
    h: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    let ring_exponent_ok = (3..(1u64 << 33)).contains(&e) && e % 2 == 1;
    if let (Some(params), true) = (ring_rsa_params(pss, h, bit_len(n)), ring_exponent_ok) {
        let e_bytes = e.to_be_bytes();
        let first = e_bytes.iter().position(|b| *b != 0).unwrap_or(7);
        let key = rsig::RsaPublicKeyComponents {
            n,
            e: &e_bytes[first..],
        };
        return key
            .verify(params, message, signature)
            .map_err(|_| SigError::Invalid);
    }
    let digest = ring::digest::digest(h.ring(), message);
    let ok = if pss {
        go_verify_pss(n, e, h, digest.as_ref(), signature)
    } else {
        go_verify_pkcs1v15(n, e, h, digest.as_ref(), signature)
    };
    if ok {
        Ok(())
    } else {
        Err(SigError::Invalid)
    }
}

/// `crypto/rsa.VerifyPKCS1v15` (Go 1.19).
fn go_verify_pkcs1v15(n: &[u8], e: u64, h: Hash, hashed: &[u8], sig: &[u8]) -> bool {
    let prefix = h.digest_info_prefix();
    let t_len = prefix.len() + hashed.len();
    let k = bit_len(n).div_ceil(8);
    if k < t_len + 11 || k != sig.len() {
        return false;
    }
    let Some(em) = rsa_encrypt(n, e, sig, k) else {
        return false;
    };
    em[0] == 0
        && em[1] == 1
        && em[k - hashed.len()..] == *hashed
        && em[k - t_len..k - hashed.len()] == *prefix
        && em[k - t_len - 1] == 0
        && em[2..k - t_len - 1].iter().all(|b| *b == 0xff)
}

/// `crypto/rsa.VerifyPSS` with `PSSSaltLengthEqualsHash` (Go 1.19).
fn go_verify_pss(n: &[u8], e: u64, h: Hash, m_hash: &[u8], sig: &[u8]) -> bool {
    let k = bit_len(n).div_ceil(8);
    if sig.len() != k || bit_len(n) < 2 {
        return false;
    }
    let em_bits = bit_len(n) - 1;
    let em_len = em_bits.div_ceil(8);
    let m = rsa_exp(n, e, sig);
    if m.bits() as usize > em_len * 8 {
        return false;
    }
    let mut em = vec![0u8; em_len];
    let mb = m.to_bytes_be();
    if mb != [0] {
        em[em_len - mb.len()..].copy_from_slice(&mb);
    }
    let h_len = m_hash.len();
    let s_len = h_len;
    if em_len < h_len + s_len + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let (masked_db, rest) = em.split_at_mut(em_len - h_len - 1);
    let hh = &rest[..h_len];
    let bit_mask: u8 = 0xff >> (8 * em_len - em_bits);
    if masked_db[0] & !bit_mask != 0 {
        return false;
    }
    // MGF1
    let mut counter: u32 = 0;
    let mut done = 0;
    while done < masked_db.len() {
        let mut ctx = ring::digest::Context::new(h.ring());
        ctx.update(hh);
        ctx.update(&counter.to_be_bytes());
        let d = ctx.finish();
        for b in d.as_ref() {
            if done == masked_db.len() {
                break;
            }
            masked_db[done] ^= b;
            done += 1;
        }
        counter += 1;
    }
    let db = masked_db;
    db[0] &= bit_mask;
    let ps_len = em_len - h_len - s_len - 2;
    if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 0x01 {
        return false;
    }
    let salt = &db[db.len() - s_len..];
    let mut ctx = ring::digest::Context::new(h.ring());
    ctx.update(&[0u8; 8]);
    ctx.update(m_hash);
    ctx.update(salt);
    ctx.finish().as_ref() == hh
}

fn rsa_exp(n: &[u8], e: u64, sig: &[u8]) -> BigUint {
    let n = BigUint::from_bytes_be(n);
    BigUint::from_bytes_be(sig).modpow(&BigUint::from(e), &n)
}

/// s^e mod n as k big-endian bytes (`FillBytes`).
fn rsa_encrypt(n: &[u8], e: u64, sig: &[u8], k: usize) -> Option<Vec<u8>> {
    let m = rsa_exp(n, e, sig).to_bytes_be();
    if m.len() > k {
        return None;
    }
    let mut em = vec![0u8; k];
    if m != [0] {
        em[k - m.len()..].copy_from_slice(&m);
    }
    Some(em)
}

#[cfg(test)]
mod tests {
    use super::super::x509::parse_spki;
    use super::*;

    fn key_of(spki: &[u8]) -> PublicKey {
        parse_spki(spki).unwrap().1
    }

    /// Sign with ring (RSA 2048, key from openssl) and check ring and the big-integer
    /// fallback agree, on good and bad signatures.
    #[test]
    fn rsa_fallback_agrees_with_ring() {
        let der = super::super::pki::openssl_rsa_pkcs8(2048);
        let kp = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let spki = rcgen::KeyPair::try_from(der.as_slice())
            .unwrap()
            .public_key_der();
        let key = key_of(&spki);
        let PublicKey::Rsa { n, e } = &key else {
            panic!("not RSA")
        };
        let msg = b"tbs bytes";
        let cases: &[(&dyn ring::signature::RsaEncoding, bool, Hash)] = &[
            (&ring::signature::RSA_PKCS1_SHA256, false, Hash::Sha256),
            (&ring::signature::RSA_PKCS1_SHA384, false, Hash::Sha384),
            (&ring::signature::RSA_PKCS1_SHA512, false, Hash::Sha512),
            (&ring::signature::RSA_PSS_SHA256, true, Hash::Sha256),
            (&ring::signature::RSA_PSS_SHA384, true, Hash::Sha384),
            (&ring::signature::RSA_PSS_SHA512, true, Hash::Sha512),
        ];
        for (enc, pss, h) in cases {
            let mut sig = vec![0u8; kp.public().modulus_len()];
            kp.sign(*enc, &rng, msg, &mut sig).unwrap();
            let scheme = if *pss {
                Scheme::RsaPss(*h)
            } else {
                Scheme::RsaPkcs1(*h)
            };
            assert_eq!(verify(&key, scheme, msg, &sig), Ok(()), "{scheme:?} ring");
            let digest = ring::digest::digest(h.ring(), msg);
            let fallback = |s: &[u8], d: &[u8]| {
                if *pss {
                    go_verify_pss(n, *e, *h, d, s)
                } else {
                    go_verify_pkcs1v15(n, *e, *h, d, s)
                }
            };
            assert!(fallback(&sig, digest.as_ref()), "{scheme:?} fallback");
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert_eq!(verify(&key, scheme, msg, &bad), Err(SigError::Invalid));
            assert!(!fallback(&bad, digest.as_ref()));
            let other = ring::digest::digest(h.ring(), b"other");
            assert!(!fallback(&sig, other.as_ref()));
            assert!(!fallback(&sig[1..], digest.as_ref()));
        }
    }

    /// RSA-1024 signatures made by openssl verify through ring's legacy variants and the
    /// fallback (PSS and PKCS#1 SHA-384 have no ring variant under 2048 bits).
    #[test]
    fn rsa_1024_is_accepted_like_go() {
        let tp = super::super::pki::TempDir::new();
        let key_pem = tp.openssl_rsa_key_pem("k", 1024);
        let spki = super::super::pki::openssl_spki_der(&key_pem);
        let key = key_of(&spki);
        assert_eq!(key.rsa_bits(), Some(1024));
        let msg = b"handshake transcript";
        for (pss, h) in [
            (false, Hash::Sha256),
            (false, Hash::Sha384),
            (false, Hash::Sha512),
            (true, Hash::Sha256),
            (true, Hash::Sha384),
            // PSS with SHA-512 does not fit a 1024-bit modulus (2 * 64 + 2 > 128 bytes).
        ] {
            let sig = tp.openssl_sign(&key_pem, msg, h.name(), pss);
            let scheme = if pss {
                Scheme::RsaPss(h)
            } else {
                Scheme::RsaPkcs1(h)
            };
            assert_eq!(verify(&key, scheme, msg, &sig), Ok(()), "{scheme:?}");
            assert_eq!(
                verify(&key, scheme, b"tampered", &sig),
                Err(SigError::Invalid),
                "{scheme:?}"
            );
        }
    }

    #[test]
    fn key_and_scheme_must_fit() {
        use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let spki = rcgen::KeyPair::try_from(pkcs8.as_ref())
            .unwrap()
            .public_key_der();
        let key = key_of(&spki);
        let sig = ec.sign(&rng, b"m").unwrap();
        let sig = sig.as_ref();
        assert_eq!(verify(&key, Scheme::Ecdsa(Hash::Sha256), b"m", sig), Ok(()));
        assert_eq!(
            verify(&key, Scheme::Ecdsa(Hash::Sha256), b"other", sig),
            Err(SigError::Invalid)
        );
        assert_eq!(
            verify(&key, Scheme::RsaPkcs1(Hash::Sha256), b"m", sig),
            Err(SigError::WrongKeyType)
        );
        assert!(matches!(
            verify(&key, Scheme::Ecdsa(Hash::Sha512), b"m", sig),
            Err(SigError::Unsupported(_))
        ));
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = PublicKey::Ed25519(ed.public_key().as_ref().to_vec());
        let sig = ed.sign(b"m");
        assert_eq!(verify(&key, Scheme::Ed25519, b"m", sig.as_ref()), Ok(()));
        assert_eq!(
            verify(&key, Scheme::Ed25519, b"n", sig.as_ref()),
            Err(SigError::Invalid)
        );
    }
}
