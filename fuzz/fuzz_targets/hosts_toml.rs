//! containerd's hosts.toml as regtrust reads it (`hosts_toml::cas_for`), for a few hosts:
//! errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regtrust::host::RegistryHost;
use regtrust::trust::hosts_toml::cas_for;

fuzz_target!(|data: &[u8]| {
    for h in ["harbor.local", "harbor.local:8443", "[::1]:5000"] {
        let host = RegistryHost::parse(h).unwrap();
        let _ = cas_for(data, &host);
        let dir = host.dir_names().into_iter().next().unwrap_or_default();
        let _ = regtrust::trust::plan::hosts_toml_names_ca(data, &host, &dir);
    }
});
