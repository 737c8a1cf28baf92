//! Kafka wire protocol for Sluice: framing and codec, with no I/O.
//!
//! - [`frame`]: the 4-byte length prefix, checked against a maximum *before* any buffer
//!   is sized from it.
//! - [`request`]: request header parsing and body decoding on the `kafka-protocol` crate,
//!   with the api key, version and correlation id read by hand first so that a request
//!   the library cannot decode can still be answered or refused precisely.
//! - [`response`]: response header + body encoding into one length-prefixed frame.
//! - [`fetch`]: a Fetch response writer that interleaves encoded bytes with regions of
//!   segment files, so the records of a Fetch can go out with sendfile(2).
//! - [`alloc`]: the global allocator the broker runs with, which makes reservations
//!   sized from untrusted counts cost address space instead of memory.

pub mod alloc;
pub mod fetch;
pub mod frame;
pub mod request;
pub mod response;

pub use kafka_protocol;
