//! containerd's config.toml as regtrust reads it (`runtime::containerd::Config::read`, on
//! `<host-root>/etc/containerd/config.toml`, imports included), then its problems and the
//! trust view for a host: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("regtrust-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc/containerd")).unwrap();
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    std::fs::write(root.join("etc/containerd/config.toml"), data).unwrap();
    let host_root = regtrust::runtime::HostRoot::new(root.clone());
    let cfg = regtrust::runtime::containerd::Config::read(&host_root);
    let host = regtrust::host::RegistryHost::parse("harbor.local:8443").unwrap();
    let _ = cfg.write_root();
    let _ = cfg.problems(&host_root, std::slice::from_ref(&host));
    // The newest modelled Go (what an unknown runtime binary is judged by).
    let _ = cfg.view(&host_root, &host, &regtrust::go::GoRuntime::default());
});
