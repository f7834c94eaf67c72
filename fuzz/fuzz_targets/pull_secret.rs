//! The pull-secret parser (`PullSecrets::parse`): any bytes give problems, never a panic;
//! every host it yields is a valid registry host (nothing that could leave a trust dir).
#![no_main]
use libfuzzer_sys::fuzz_target;
use regtrust::host::RegistryHost;
use regtrust::pull_secret::PullSecrets;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let s = PullSecrets::parse(Path::new("/fuzz/config.json"), data);
    for host in s.hosts.keys() {
        assert_eq!(RegistryHost::parse(host.as_str()).ok().as_ref(), Some(host));
        for name in host.dir_names() {
            assert!(!name.contains('/') && name != ".." && name != ".");
        }
    }
    for c in &s.credentials {
        let _ = s.credentials_for(&RegistryHost::parse("harbor.local").unwrap());
        let _ = format!("{c:?}");
    }
});
