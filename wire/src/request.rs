//! Request decoding: header first by hand, then the body with `kafka-protocol`.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

/// The first eight bytes of every request, in every version: enough to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// A fully decoded request.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

impl Request {
    pub fn preamble(&self) -> Preamble {
        Preamble {
            api_key: self.header.request_api_key,
            api_version: self.header.request_api_version,
            correlation_id: self.header.correlation_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than eight bytes: not even a header. The connection is closed.
    #[error("frame of {len} bytes is too short for a request header")]
    Truncated { len: usize },
    /// An api key this broker has never heard of. Kafka closes the connection.
    #[error("unknown api key {}", .0.api_key)]
    UnknownApiKey(Preamble),
    /// A known api key at a version outside what the broker supports.
    #[error("unsupported version {} of api key {}", .0.api_version, .0.api_key)]
    UnsupportedVersion(Preamble),
    /// The bytes do not parse as the header or body they claim to be.
    #[error("malformed request (api key {}, version {}): {reason}", .preamble.api_key, .preamble.api_version)]
    Malformed { preamble: Preamble, reason: String },
}

/// Reads the preamble without consuming the frame.
pub fn peek_preamble(frame: &[u8]) -> Result<Preamble, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Truncated { len: frame.len() });
    }
    let mut b = &frame[..8];
    Ok(Preamble {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes a request frame. `supported` says which versions of a key the broker serves;
/// anything else is refused before the library sees it.
pub fn decode_request(
    mut frame: Bytes,
    supported: impl Fn(ApiKey, i16) -> bool,
) -> Result<Request, DecodeError> {
    let preamble = peek_preamble(&frame)?;
    let api_key =
        ApiKey::try_from(preamble.api_key).map_err(|_| DecodeError::UnknownApiKey(preamble))?;
    if !supported(api_key, preamble.api_version) {
        return Err(DecodeError::UnsupportedVersion(preamble));
    }
    let malformed = |e: anyhow_like::AnyErr| DecodeError::Malformed {
        preamble,
        reason: e.0,
    };
    let header_version = api_key.request_header_version(preamble.api_version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| malformed(e.into()))?;
    let body = RequestKind::decode(api_key, &mut frame, preamble.api_version)
        .map_err(|e| malformed(e.into()))?;
    Ok(Request {
        header,
        api_key,
        body,
    })
}

/// `kafka-protocol` reports errors as `anyhow::Error`; this keeps anyhow out of our API.
mod anyhow_like {
    pub struct AnyErr(pub String);
    impl<E: std::fmt::Display> From<E> for AnyErr {
        fn from(e: E) -> Self {
            AnyErr(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encode(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_api_versions() {
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("x"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let req = decode_request(encode(ApiKey::ApiVersions, 3, &body), |_, _| true).unwrap();
        assert_eq!(req.api_key, ApiKey::ApiVersions);
        assert_eq!(req.header.correlation_id, 7);
        assert!(matches!(req.body, RequestKind::ApiVersions(_)));
    }

    #[test]
    fn refuses_unknown_key_and_version() {
        let frame = Bytes::from_static(&[0x03, 0xe7, 0, 0, 0, 0, 0, 9]);
        assert!(
            matches!(decode_request(frame, |_, _| true), Err(DecodeError::UnknownApiKey(p)) if p.correlation_id == 9)
        );
        let frame = encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert!(matches!(
            decode_request(frame, |_, v| v < 3),
            Err(DecodeError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn truncated_and_garbage() {
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 1]), |_, _| true),
            Err(DecodeError::Truncated { .. })
        ));
        // Metadata v12 with a body cut short.
        let frame = Bytes::from_static(&[0, 3, 0, 12, 0, 0, 0, 1, 0xff]);
        assert!(matches!(
            decode_request(frame, |_, _| true),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
