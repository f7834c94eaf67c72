//! `go`: the parts of Go's standard library whose exact behaviour decides what a container
//! runtime accepts, ported to Rust so regtrust says what the runtime would: cryptobyte's DER
//! reading (`der`), `crypto/x509` parsing (`x509`), `x509.Certificate.Verify` (`verify`), signature checks with
//! Go's acceptance (`signature`), `encoding/pem` + `encoding/base64` and the loop of
//! `CertPool.AppendCertsFromPEM` (`pem`); `net/url.Parse` and `net.SplitHostPort` (`url`); the releases and GODEBUG switches whose rules differ
//! (`version`); the build info of a Go binary (`buildinfo`).
//!
//! Ground floor: nothing here imports the rest of regtrust (no crate-relative paths); other tools and the
//! differential tests call it directly. regtrust's own cause analysis, verdict mapping and
//! fixes live in `probe::classify` / `probe::cause`.

pub mod buildinfo;
pub mod der;
pub mod pem;
pub mod version;

pub use version::{GoDebug, GoRuntime, GoVersion};
pub mod signature;
pub mod url;
pub mod verify;
pub mod x509;

#[cfg(test)]
#[path = "../../tests/support/gopki.rs"]
pub(crate) mod pki;

#[cfg(test)]
#[path = "../../tests/support/gocases.rs"]
pub(crate) mod gocases;
