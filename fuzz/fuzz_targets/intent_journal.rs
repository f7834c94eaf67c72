//! The state dir's intent journal (`ledger::pending_intents`) and ledger (`Ledger::load`):
//! a damaged or hostile state dir gives problems, never a panic, and never an intent or
//! entry outside the trust dirs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regtrust::trust::ledger::{self, Ledger};
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("regtrust-fuzz-state-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    std::fs::write(d.join(ledger::JOURNAL_FILE), data).unwrap();
    let (intents, _) = ledger::pending_intents(d);
    assert!(intents.iter().all(|i| ledger::is_trust_path(&i.path)));
    std::fs::write(d.join(ledger::LEDGER_FILE), data).unwrap();
    if let Ok(l) = Ledger::load(d) {
        assert!(l.files.keys().all(|p| ledger::is_trust_path(p)));
    }
});
