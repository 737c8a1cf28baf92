//! The Kafka listener: accepts connections up to `max.connections`, serves each on its
//! own task, and stops on shutdown once every connection has ended, so that the logs
//! close after the last request that could write to them (Kafka stops its socket
//! server before its log manager).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::connection;
use crate::metrics::Metrics;

/// How long a shutdown waits for connections to finish the request each is handling
/// (a long-polling Fetch answers at once); those still running after it are cut off at
/// their next await point.
const CONNECTIONS_DRAIN: Duration = Duration::from_secs(3);

/// Serves until shutdown, then returns once no connection task is left.
pub async fn run(broker: Arc<Broker>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(
        broker.config.int("max.connections").max(1) as usize
    ));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Ended connections are reaped as they go.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.changed() => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            Metrics::add(&broker.metrics.connections_refused, 1);
            tracing::warn!(%peer, "refusing connection: max.connections reached");
            drop(socket);
            continue;
        };
        let b = broker.clone();
        let sd = shutdown.clone();
        connections.spawn(async move {
            Metrics::add(&b.metrics.connections_open, 1);
            let _open = OpenConnection(&b.metrics);
            connection::serve(b.clone(), socket, sd).await;
            drop(permit);
        });
    }
    // No new connections: a client reconnecting now is refused, not left unanswered.
    drop(listener);
    drain(&mut connections, CONNECTIONS_DRAIN).await;
}

/// Counts a connection out when its task ends, also when the task is cut off.
struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits for every connection task to end, at most `grace`; then cuts off the rest.
async fn drain(connections: &mut JoinSet<()>, grace: Duration) {
    let all_ended = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_ended).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still busy at shutdown: cut off"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, Cli};
    use clap::Parser;
    use tokio::io::AsyncWriteExt;

    /// A shutdown returns only once no connection task is left, so that the logs close
    /// after every request that could write to them. Here a client pipelines requests
    /// without reading the answers: its connection cannot finish (the answers fill the
    /// socket), so it is cut off after the drain's grace, and counted out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_returns_once_every_connection_has_ended() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let cli = Cli::parse_from(["sluice", "--listen", "127.0.0.1:0", "--data-dir", data]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = BrokerConfig::load(cli).unwrap();
        config.cli.advertised = Some(listener.local_addr().unwrap().to_string());
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let broker = Broker::open(config, stopped.clone()).await.unwrap();
        let server = tokio::spawn(run(broker.clone(), listener, stopped));

        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(addr).await.unwrap();
        // ApiVersions v0, 200,000 times: 2.8 MB of requests, 74 MB of answers, more
        // than any socket buffers hold.
        const REQUESTS: i32 = 200_000;
        let mut requests = Vec::new();
        for correlation_id in 0..REQUESTS {
            requests.extend_from_slice(&10i32.to_be_bytes());
            requests.extend_from_slice(&18i16.to_be_bytes());
            requests.extend_from_slice(&0i16.to_be_bytes());
            requests.extend_from_slice(&correlation_id.to_be_bytes());
            requests.extend_from_slice(&(-1i16).to_be_bytes());
        }
        let writing = tokio::spawn(async move {
            let _ = client.write_all(&requests).await;
            client
        });
        let open = || {
            broker
                .metrics
                .connections_open
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let served = || {
            broker
                .metrics
                .requests
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        // Stuck: the answers have filled the socket, and no requests have been read for
        // a second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (mut last, mut still) = (0, 0);
        while still < 5 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never stuck: {last}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = served();
            still = if now > 0 && now == last { still + 1 } else { 0 };
            last = now;
        }
        assert!(last < REQUESTS as u64, "the answers fit in the socket");
        assert_eq!(open(), 1);

        let began = tokio::time::Instant::now();
        stop.send(true).unwrap();
        server.await.unwrap();
        assert_eq!(open(), 0, "a connection outlived the server");
        assert!(
            began.elapsed() >= CONNECTIONS_DRAIN,
            "returned before the grace ran out"
        );
        writing.abort();
        broker.close().await;
    }
}
