//! Arbitrary bytes as the records of a Produce request: split and validated as Kafka v2
//! batches. A batch that passes validation must describe exactly the bytes it spans.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: sluice_wire::alloc::LazyLargeAlloc = sluice_wire::alloc::LazyLargeAlloc;
use sluice_storage::batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batches) = batch::split_batches(data) {
        let mut end = 0;
        for (pos, h) in batches {
            assert_eq!(pos, end);
            end = pos + h.total_bytes();
            assert!(h.records_count == h.last_offset_delta + 1);
        }
        assert_eq!(end, data.len());
    }
});
