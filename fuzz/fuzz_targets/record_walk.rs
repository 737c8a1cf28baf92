//! Records sections come from producers: the walkers the broker runs on every produced
//! batch (the strict check with its look for delay headers, the parse that splits
//! delayed records out, the read of a retry count) must neither panic nor disagree with
//! one another on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_storage::record::{check_section, parse_one, parse_records};

const PREFIX: &[u8] = b"mq.del";

fuzz_target!(|data: &[u8]| {
    let Some((&count, section)) = data.split_first() else {
        return;
    };
    let checked = check_section(section, i32::from(count), PREFIX);
    let Ok(records) = parse_records(section, i32::from(count)) else {
        assert!(checked.is_err(), "the check passed records the parse refuses");
        return;
    };
    let mut any = false;
    let mut max = None;
    for r in &records {
        // A record read out of a section reads alone, as the delay store keeps it.
        let alone = parse_one(r.bytes).expect("a parsed record parses alone");
        assert_eq!(alone.headers().count(), r.headers().count());
        any |= r.headers().any(|(k, _)| k.starts_with(PREFIX));
        max = max.max(Some(r.timestamp_delta));
        let _ = r.header("mq.delay.ms");
    }
    if let Ok(found) = checked {
        assert_eq!(found.header_key_prefix_seen, any, "the check and the parse disagree");
        assert_eq!(found.max_timestamp_delta, max);
    }
});
