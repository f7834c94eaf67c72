//! The PEM/CA reader (`CaBundle::from_pem`) and what Go would load from a trust file
//! (`go_loadable_certs`): errors, never a panic; a bundle that parses re-encodes to PEM
//! that parses to the same certificates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regtrust::ca::{go_loadable_certs, CaBundle};

fuzz_target!(|data: &[u8]| {
    let _ = go_loadable_certs(data);
    if let Ok(b) = CaBundle::from_pem("fuzz", data) {
        let pem = b.to_pem();
        let again = CaBundle::from_pem("fuzz", &pem).expect("our own PEM parses");
        assert!(again.same_certificates(&b));
        let _ = b.summary(time::OffsetDateTime::UNIX_EPOCH);
        let _ = b.warnings(time::OffsetDateTime::UNIX_EPOCH);
    }
});
