//! Sluice: a broker that speaks the Kafka protocol.
//!
//! - [`config`]: flags, environment and the TOML file of Kafka-named settings.
//! - [`server`]: the listener, connection limits, shutdown.
//! - [`connection`]: one client connection: frames in, ordered responses out, sendfile.
//! - [`dispatch`]: the API table and the routing `match`.
//! - [`handlers`]: one module per Kafka API.
//! - [`broker`]: shared state and lifecycle; [`partitions`]: hosted partition logs;
//!   [`group`]: the consumer-group coordinator; [`producer_ids`]: producer id blocks;
//!   [`topics`]: topic administration; [`error_code`]: typed errors to Kafka codes;
//!   [`metrics`]: counters and the /metrics endpoint; [`view`]: tag-filtered views;
//!   [`delay`]: delayed delivery.

pub mod broker;
pub mod clock;
pub mod config;
pub mod connection;
pub mod delay;
pub mod dispatch;
pub mod error_code;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod metrics;
pub mod partitions;
pub mod producer_ids;
pub mod server;
#[cfg(test)]
mod test_images;
pub mod topics;
pub mod view;
