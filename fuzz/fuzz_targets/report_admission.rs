//! The aggregator's admission path for a posted report: `Report::from_json` then
//! `api::admit`. Errors, never a panic; an admitted report serializes and reads back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regtrust::aggregator::api::admit;
use regtrust::report::Report;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = Report::from_json(data) else {
        return;
    };
    // The aggregator's default bound (`--max-registries-per-report`).
    let max = regtrust::aggregator::Bounds::default().max_registries_per_report;
    if let Ok(admitted) = admit(report, max) {
        let json = admitted.to_json();
        Report::from_json(json.as_bytes()).expect("an admitted report reads back");
    }
});
