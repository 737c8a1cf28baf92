//! Records sections come from producers: the in-place walkers the broker runs on every
//! produced batch (looking for delay headers, splitting delayed records out, reading a
//! retry count) must neither panic nor disagree with one another on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_storage::record::{any_header_key_starts_with, parse_one, parse_records};

const PREFIX: &[u8] = b"mq.del";

fuzz_target!(|data: &[u8]| {
    let Some((&count, section)) = data.split_first() else {
        return;
    };
    let found = any_header_key_starts_with(section, PREFIX);
    let Ok(records) = parse_records(section, i32::from(count)) else {
        return;
    };
    let mut any = false;
    for r in &records {
        // A record read out of a section reads alone, as the delay store keeps it.
        let alone = parse_one(r.bytes).expect("a parsed record parses alone");
        assert_eq!(alone.headers().count(), r.headers().count());
        any |= r.headers().any(|(k, _)| k.starts_with(PREFIX));
        let _ = r.header("mq.delay.ms");
    }
    assert_eq!(found, any, "the quick walk and the full parse disagree");
});
