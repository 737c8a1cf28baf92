//! One client connection: frames in, responses out, in request order.
//!
//! The reader decodes and handles one request at a time (so the appends of pipelined
//! Produce requests keep their order, as in Kafka), then hands the response to a writer
//! task through a bounded queue; the writer sends plain bytes with write(2) and record
//! regions with sendfile(2). The queue bound is the per-connection in-flight limit.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use sluice_wire::fetch::Chunk;
use sluice_wire::request::{decode_request, DecodeError};
use sluice_wire::response::encode_api_versions_fallback;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::broker::Broker;
use crate::dispatch::{self, Reply, SendRegion};
use crate::metrics::Metrics;

const READ_CHUNK_BYTES: usize = 64 * 1024;

pub async fn serve(broker: Arc<Broker>, socket: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let peer = socket
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let client_host = socket
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let _ = socket.set_nodelay(true);
    set_buffer_sizes(
        &socket,
        broker.config.int("socket.send.buffer.bytes"),
        broker.config.int("socket.receive.buffer.bytes"),
    );
    let (mut rd, wr) = socket.into_split();
    let inflight = broker
        .config
        .int("max.inflight.requests.per.connection")
        .max(1) as usize;
    let (tx, rx) = mpsc::channel::<Vec<Chunk<SendRegion>>>(inflight);
    // Ends with this task, also when a shutdown cuts it off while the writer waits on a
    // client that does not read.
    let mut writer = AbortOnDrop(tokio::spawn(write_loop(wr, rx, broker.metrics.clone())));
    let max_frame = broker.config.int("socket.request.max.bytes") as usize;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    'conn: loop {
        // Handle every complete frame already buffered, until shutdown: a request read
        // after it is not handled (its client sees the connection close and retries
        // elsewhere or later), so nothing is written once the logs are closing.
        loop {
            if *shutdown.borrow() {
                break 'conn;
            }
            // Account for the frame's bytes before buffering them: the request memory
            // of all connections together is bounded by queued.max.request.bytes.
            let len = match sluice_wire::frame::peek_len(&buf, max_frame) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    Metrics::add(&broker.metrics.request_errors, 1);
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            if held.is_none() {
                let permits = len.clamp(1, broker.request_memory_bytes) as u32;
                tokio::select! {
                    p = broker.request_memory.clone().acquire_many_owned(permits) => match p {
                        Ok(p) => held = Some(p),
                        Err(_) => break 'conn,
                    },
                    _ = shutdown.changed() => break 'conn,
                }
            }
            let frame = match sluice_wire::frame::take_frame(&mut buf, max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    Metrics::add(&broker.metrics.request_errors, 1);
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            let reply = handle_frame(&broker, frame, &client_host).await;
            held = None;
            match reply {
                Ok(Some(chunks)) => {
                    if tx.send(chunks).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    Metrics::add(&broker.metrics.request_errors, 1);
                    tracing::warn!(%peer, %reason, "closing connection");
                    break 'conn;
                }
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            sluice_wire::frame::make_room(&mut buf, READ_CHUNK_BYTES);
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::debug!(%peer, pending = buf.len(), "connection closed mid-frame");
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(tx);
    let _ = (&mut writer.0).await;
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Decodes and handles one frame. `Ok(None)`: nothing to send (acks=0 Produce).
/// `Err`: the connection must be closed (Kafka closes on what it cannot parse).
async fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    client_host: &str,
) -> Result<Option<Vec<Chunk<SendRegion>>>, String> {
    Metrics::add(&broker.metrics.requests, 1);
    let request = match decode_request(frame, dispatch::is_supported) {
        Ok(r) => r,
        Err(DecodeError::UnsupportedVersion(p)) if p.api_key == ApiKey::ApiVersions as i16 => {
            // KIP-511: answer with v0 and the supported ranges so the client can retry.
            let keys: Vec<(i16, i16, i16)> = dispatch::SUPPORTED
                .iter()
                .map(|(k, v)| (*k as i16, *v.start(), *v.end()))
                .collect();
            let bytes = encode_api_versions_fallback(
                p.correlation_id,
                kafka_protocol::error::ResponseError::UnsupportedVersion.code(),
                &keys,
            );
            return Ok(Some(vec![Chunk::Bytes(bytes)]));
        }
        Err(e) => return Err(e.to_string()),
    };
    let preamble = request.preamble();
    let api_key = request.api_key;
    match dispatch::dispatch(broker, request, client_host).await {
        Reply::Message(body) => sluice_wire::response::encode_response(
            api_key,
            preamble.api_version,
            preamble.correlation_id,
            &body,
        )
        .map(|b| Some(vec![Chunk::Bytes(b)]))
        .map_err(|e| {
            tracing::error!(error = %e, "response encoding failed");
            e.to_string()
        }),
        Reply::Chunks(chunks) => Ok(Some(chunks)),
        Reply::Nothing => Ok(None),
        Reply::Close(reason) => Err(reason),
    }
}

/// Sets a connection's SO_SNDBUF and SO_RCVBUF to `socket.send.buffer.bytes` and
/// `socket.receive.buffer.bytes`, as Kafka's acceptor does; a size of -1 (or 0) keeps
/// the kernel's own, autotuned buffer.
fn set_buffer_sizes(socket: &TcpStream, send: i64, receive: i64) {
    let sock = socket2::SockRef::from(socket);
    if send > 0 {
        if let Err(e) = sock.set_send_buffer_size(send as usize) {
            tracing::debug!(error = %e, "could not set socket.send.buffer.bytes");
        }
    }
    if receive > 0 {
        if let Err(e) = sock.set_recv_buffer_size(receive as usize) {
            tracing::debug!(error = %e, "could not set socket.receive.buffer.bytes");
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<Chunk<SendRegion>>>,
    metrics: Arc<Metrics>,
) {
    while let Some(chunks) = rx.recv().await {
        for chunk in chunks {
            let result = match chunk {
                Chunk::Bytes(b) => wr.write_all(&b).await,
                Chunk::Region(r) => send_region(&wr, &r, &metrics).await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "write failed; closing connection");
                let _ = wr.shutdown().await;
                // Drain so the reader's sends fail and it stops.
                rx.close();
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Sends a file region with sendfile(2): page cache to socket, no user-space copy.
async fn send_region(
    wr: &OwnedWriteHalf,
    region: &SendRegion,
    metrics: &Metrics,
) -> io::Result<()> {
    let stream: &TcpStream = wr.as_ref();
    let file = &region.0.file;
    let mut offset = region.0.position as i64;
    let mut remaining = region.0.len;
    while remaining > 0 {
        let n = stream
            .async_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile(
                    stream.as_fd(),
                    file.as_fd(),
                    Some(&mut offset),
                    remaining,
                )
                .map_err(io::Error::from)
            })
            .await?;
        if n == 0 {
            // The file is shorter than the region: it was truncated under us. The
            // response is now malformed, so the connection must go.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment shorter than the region being sent",
            ));
        }
        remaining -= n;
        Metrics::add(&metrics.fetch_sendfile_bytes, n as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connected() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    /// A response of bytes and file regions (sent with sendfile) arrives whole and in
    /// order, and the next response after it, while the connection stays open.
    #[tokio::test]
    async fn a_response_of_bytes_and_regions_arrives_whole_and_in_order() {
        use std::io::Write;
        let (mut client, accepted) = connected().await;
        let mut file = tempfile::tempfile().unwrap();
        let records: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&records).unwrap();
        let file = Arc::new(file);
        let region = |position: u64, len: usize| {
            Chunk::Region(SendRegion(sluice_storage::log::FileSlice {
                file: file.clone(),
                position,
                len,
            }))
        };
        let response = vec![
            Chunk::Bytes(Bytes::from_static(b"head")),
            region(0, 100_000),
            Chunk::Bytes(Bytes::from_static(b"between")),
            region(100_000, 200_000),
            Chunk::Bytes(Bytes::from_static(b"tail")),
        ];
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&records[..100_000]);
        expected.extend_from_slice(b"between");
        expected.extend_from_slice(&records[100_000..]);
        expected.extend_from_slice(b"tail");
        // Then a one-chunk response, as most are: written plainly.
        expected.extend_from_slice(b"next");

        accepted.set_nodelay(true).unwrap();
        let (_, wr) = accepted.into_split();
        let (tx, rx) = mpsc::channel(2);
        let metrics = Arc::new(Metrics::default());
        let _writer = AbortOnDrop(tokio::spawn(write_loop(wr, rx, metrics.clone())));
        tx.send(response).await.unwrap();
        tx.send(vec![Chunk::Bytes(Bytes::from_static(b"next"))])
            .await
            .unwrap();
        let mut got = vec![0u8; expected.len()];
        // `tx` is still open: the bytes arrive without the writer closing the connection.
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_exact(&mut got),
        )
        .await
        .expect("the whole response, without the writer closing")
        .unwrap();
        assert!(got == expected, "bytes differ from the response");
        assert_eq!(
            metrics
                .fetch_sendfile_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            300_000
        );
        drop(tx);
    }

    #[tokio::test]
    async fn buffer_sizes_are_set_or_left_to_the_kernel() {
        let (_client, a) = connected().await;
        let sock = socket2::SockRef::from(&a);
        let (send0, receive0) = (
            sock.send_buffer_size().unwrap(),
            sock.recv_buffer_size().unwrap(),
        );
        set_buffer_sizes(&a, -1, 0);
        assert_eq!(sock.send_buffer_size().unwrap(), send0);
        assert_eq!(sock.recv_buffer_size().unwrap(), receive0);

        // Linux doubles the size asked for (room for its bookkeeping; sizes below
        // `net.core.wmem_max` / `rmem_max`, 208 KiB by default, are not capped) and keeps
        // it from then on, autotuning no more.
        let (_client, b) = connected().await;
        set_buffer_sizes(&b, 100_000, 50_000);
        let sock = socket2::SockRef::from(&b);
        assert_eq!(sock.send_buffer_size().unwrap(), 200_000);
        assert_eq!(sock.recv_buffer_size().unwrap(), 100_000);
    }
}
