//! Counters the broker exposes in Prometheus text format at `GET /metrics`.
//! A handful of atomics and a minimal HTTP/1.1 responder: enough for scraping and for
//! tests that prove where Fetch bytes came from.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Record bytes sent from segment files by sendfile(2).
    pub fetch_sendfile_bytes: AtomicU64,
    /// Record bytes that went through a user-space buffer on their way to a socket.
    pub fetch_copied_bytes: AtomicU64,
    pub requests: AtomicU64,
    pub request_errors: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_refused: AtomicU64,
    /// View reads: stored bytes of batches sent whole (by sendfile), bytes of batches
    /// rebuilt from their matching records, stored bytes of batches that matched nothing.
    pub view_whole_bytes: AtomicU64,
    pub view_rebuilt_bytes: AtomicU64,
    pub view_skipped_bytes: AtomicU64,
    /// View reads: batches settled by their tag summary, and batches decoded.
    pub view_settled_batches: AtomicU64,
    pub view_decoded_batches: AtomicU64,
    pub produced_records: AtomicU64,
    pub produced_bytes: AtomicU64,
    /// Delayed delivery: records taken into the timer, appended when due, and dropped
    /// (their produce failed or their topic was deleted before they came due).
    pub delay_scheduled: AtomicU64,
    pub delay_released: AtomicU64,
    pub delay_dropped: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "sluice_fetch_sendfile_bytes_total",
                "counter",
                &self.fetch_sendfile_bytes,
                "Record bytes sent from segment files with sendfile(2)",
            ),
            (
                "sluice_fetch_copied_bytes_total",
                "counter",
                &self.fetch_copied_bytes,
                "Record bytes copied through user space for Fetch",
            ),
            (
                "sluice_view_fetch_whole_bytes_total",
                "counter",
                &self.view_whole_bytes,
                "View reads: stored bytes of batches sent whole, by sendfile(2)",
            ),
            (
                "sluice_view_fetch_rebuilt_bytes_total",
                "counter",
                &self.view_rebuilt_bytes,
                "View reads: bytes of batches rebuilt from their matching records",
            ),
            (
                "sluice_view_fetch_skipped_bytes_total",
                "counter",
                &self.view_skipped_bytes,
                "View reads: stored bytes of batches with no matching record, not sent",
            ),
            (
                "sluice_view_fetch_settled_batches_total",
                "counter",
                &self.view_settled_batches,
                "View reads: batches settled by their tag summary without decoding",
            ),
            (
                "sluice_view_fetch_decoded_batches_total",
                "counter",
                &self.view_decoded_batches,
                "View reads: batches decoded to judge their records",
            ),
            (
                "sluice_delay_scheduled_records_total",
                "counter",
                &self.delay_scheduled,
                "Delayed records accepted and held until due",
            ),
            (
                "sluice_delay_released_records_total",
                "counter",
                &self.delay_released,
                "Delayed records appended to their partition when due",
            ),
            (
                "sluice_delay_dropped_records_total",
                "counter",
                &self.delay_dropped,
                "Delayed records dropped: their produce failed or their topic is gone",
            ),
            (
                "sluice_requests_total",
                "counter",
                &self.requests,
                "Requests handled",
            ),
            (
                "sluice_request_errors_total",
                "counter",
                &self.request_errors,
                "Frames refused (undecodable, unknown api, unsupported version)",
            ),
            (
                "sluice_connections_open",
                "gauge",
                &self.connections_open,
                "Client connections open",
            ),
            (
                "sluice_connections_refused_total",
                "counter",
                &self.connections_refused,
                "Connections refused at max.connections",
            ),
            (
                "sluice_produced_records_total",
                "counter",
                &self.produced_records,
                "Records appended by Produce",
            ),
            (
                "sluice_produced_bytes_total",
                "counter",
                &self.produced_bytes,
                "Batch bytes appended by Produce",
            ),
        ];
        let mut out = String::new();
        for (name, kind, value, help) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Serves `/metrics` until the listener task is dropped.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let Ok(n) = sock.read(&mut buf).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /metrics") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        });
    }
}
