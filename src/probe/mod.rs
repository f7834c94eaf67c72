//! `probe`: checks a registry from this node the way the container runtime would. This file
//! only lists the parts:
//! - `gox509`: Go's certificate parser mirrored (what Go accepts, with Go's error text).
//! - `signature`: signature checks with Go's acceptance (RSA of any size, PSS, ECDSA,
//!   Ed25519) over ring.
//! - `goverify`: Go's `x509.Certificate.Verify`, the verdict of record, and the `cause` of an
//!   unknown authority.
//! - `capture`: a permissive rustls verifier that records the presented chain.

pub mod capture;
pub mod goverify;
pub mod gox509;
pub mod signature;

#[cfg(test)]
#[path = "../../tests/support/gopki.rs"]
pub(crate) mod pki;

#[cfg(test)]
#[path = "../../tests/support/gocases.rs"]
pub(crate) mod gocases;
