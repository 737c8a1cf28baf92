//! Response encoding: `length ‖ ResponseHeader ‖ body` as one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Writes the response header for `api_key`/`version` into `buf`.
pub fn put_response_header(buf: &mut BytesMut, api_key: ApiKey, version: i16, correlation_id: i32) {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Header v0/v1 have only the correlation id and (v1) an empty tag buffer: cannot fail.
    header
        .encode(buf, api_key.response_header_version(version))
        .expect("response header encodes");
}

/// Encodes a complete, length-prefixed response frame.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    put_response_header(&mut buf, api_key, version, correlation_id);
    body.encode(&mut buf, version).map_err(|e| EncodeError {
        api_key,
        version,
        reason: e.to_string(),
    })?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// An ApiVersions v0 answer carrying only an error code and the supported keys; Kafka
/// sends this when a client asks for an ApiVersions version it does not know (KIP-511),
/// so the client can retry with one it does.
pub fn encode_api_versions_fallback(
    correlation_id: i32,
    error_code: i16,
    keys: &[(i16, i16, i16)],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(16 + keys.len() * 6);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i16(error_code);
    buf.put_i32(keys.len() as i32);
    for &(key, min, max) in keys {
        buf.put_i16(key);
        buf.put_i16(min);
        buf.put_i16(max);
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}
