//! Requests whose array counts claim far more elements than their bytes hold must be
//! refused without the process committing memory for the claim. Runs with the broker's
//! allocator, as the broker does.

use bytes::Bytes;
use sluice_wire::alloc::LazyLargeAlloc;
use sluice_wire::request::{decode_request, DecodeError};

#[global_allocator]
static ALLOC: LazyLargeAlloc = LazyLargeAlloc;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}

#[test]
fn huge_array_counts_are_refused_cheaply() {
    let before = rss_bytes();
    // Found by cargo fuzz: CreatePartitions v0 whose topic array claims 0x050e0000 entries.
    let found = Bytes::from_static(&[
        0x00, 0x25, 0x00, 0x00, 0x32, 0x00, 0x00, 0x02, 0x00, 0x00, 0x05, 0x0e, 0x00, 0x00,
    ]);
    assert!(matches!(
        decode_request(found, |_, _| true),
        Err(DecodeError::Malformed { .. })
    ));
    // The same trick at the maximum count for several APIs (non-flexible versions).
    for (key, version) in [(37i16, 0i16), (3, 4), (19, 2), (8, 2), (11, 5)] {
        let mut frame = Vec::new();
        frame.extend_from_slice(&key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        frame.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        frame.extend_from_slice(&[0u8; 16]);
        let r = decode_request(Bytes::from(frame), |_, _| true);
        assert!(
            matches!(r, Err(DecodeError::Malformed { .. })),
            "api {key} v{version}: {r:?}"
        );
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "decoding hostile counts grew RSS by {grown} bytes"
    );
}
