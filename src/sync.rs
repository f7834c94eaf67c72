//! One sync pass: inputs → validated bundles → plan → apply → report.

use crate::cli::SyncArgs;

/// Run `regtrust sync` and return the process exit code.
pub fn run_cli(_args: &SyncArgs) -> u8 {
    eprintln!("regtrust sync: not implemented yet");
    2
}
