//! Arbitrary bytes through the frame splitter and the request decoder: they must
//! return an error or a request, never panic, and never allocate from a length prefix
//! beyond the frame limit.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: sluice_wire::alloc::LazyLargeAlloc = sluice_wire::alloc::LazyLargeAlloc;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = sluice_wire::frame::take_frame(&mut buf, 1 << 20) {
        let _ = sluice_wire::request::decode_request(frame, |_, _| true);
    }
    // Also as one frame body, without the length prefix.
    let _ = sluice_wire::request::decode_request(bytes::Bytes::copy_from_slice(data), |_, _| true);
});
