//! The Kafka listener: accepts connections up to `max.connections`, serves each on its
//! own task, and stops on shutdown.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::broker::Broker;
use crate::connection;
use crate::metrics::Metrics;

pub async fn run(broker: Arc<Broker>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(
        broker.config.int("max.connections").max(1) as usize
    ));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
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
        tokio::spawn(async move {
            Metrics::add(&b.metrics.connections_open, 1);
            connection::serve(b.clone(), socket, sd).await;
            b.metrics
                .connections_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
}
