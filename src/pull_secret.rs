//! TEMPORARY SHIM (not committed): replaced by the real module from the secrets branch.
use crate::host::RegistryHost;
use crate::report::Problem;
use std::collections::BTreeMap;
use std::path::PathBuf;
#[derive(Debug, Default)]
pub struct PullSecrets {
    pub hosts: BTreeMap<RegistryHost, PathBuf>,
    pub problems: Vec<Problem>,
}
impl PullSecrets {
    pub fn read_all(_p: &[PathBuf]) -> PullSecrets {
        PullSecrets::default()
    }
}
