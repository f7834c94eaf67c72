//! containerd's config.toml as the runtime checks read it (`checks::containerd_config`,
//! which reads `<host-root>/etc/containerd/config.toml`): problems, never a panic.
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
    let _ = regtrust::trust::checks::containerd_config(root);
});
