//! Voter-to-voter RPC over TCP (openraft's `RaftNetworkFactory` / `RaftNetwork`, plus the
//! server that answers them).
//!
//! Wire format: every message is a frame `[len: u32 BE][serde_json body]`. A client sends an
//! [`RpcEnvelope`] (the target node id and one request) and reads exactly one [`RpcResponse`]
//! back on the same connection; requests on one connection are strictly sequential. A frame
//! longer than [`FRAME_BYTES_MAX`] is refused before anything is allocated for it.
//!
//! The client connects lazily, keeps the connection for later RPCs, drops it on any error or
//! timeout (a late answer would otherwise be read as the answer to the next request), and
//! retries once on a fresh connection when a reused one turns out to be dead.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::RPCTypes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::types::{Node, NodeId, Raft, TypeConfig};

/// Largest RPC frame accepted. A 3 MiB snapshot chunk (openraft's default) is about 12 MiB as
/// a JSON number array, so this leaves ample room.
pub(crate) const FRAME_BYTES_MAX: usize = 64 << 20;
/// Voters are few; anything beyond this is not a voter.
const CONNECTIONS_MAX: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct RpcEnvelope {
    /// The node the sender believes it is talking to; a mismatch means a misconfigured address.
    target: NodeId,
    request: RpcRequest,
}

#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Debug, Serialize, Deserialize)]
enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The request was addressed to another node id than the one listening here.
    WrongNode {
        node_id: NodeId,
    },
}

/// Reads one frame; `Ok(None)` on a clean EOF before the first byte of a frame.
async fn read_frame(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len_bytes = [0u8; 4];
    let mut filled = 0;
    while filled < len_bytes.len() {
        let n = stream.read(&mut len_bytes[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a frame header",
            ));
        }
        filled += n;
    }
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {FRAME_BYTES_MAX}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= FRAME_BYTES_MAX)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    stream.write_all(&buf).await
}

// ---------------------------------------------------------------------------------------------
// Server

/// The running RPC server; stopping it closes the listener and every open connection.
#[derive(Debug)]
pub(crate) struct RaftServer {
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl RaftServer {
    /// Serves `listener` (whose address is `local_addr`, for logs) until [`Self::stop`].
    pub(crate) fn spawn(
        listener: TcpListener,
        local_addr: SocketAddr,
        node_id: NodeId,
        raft: Raft,
    ) -> Self {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, node_id, raft, shutdown_rx));
        RaftServer {
            shutdown_tx,
            task,
            local_addr,
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown_tx.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, addr = %self.local_addr, "raft RPC server task failed");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    node_id: NodeId,
    raft: Raft,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_rx.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= CONNECTIONS_MAX {
                        tracing::warn!(%peer, "refusing raft RPC connection: too many open");
                        continue;
                    }
                    connections.spawn(serve_connection(stream, peer, node_id, raft.clone()));
                }
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "raft RPC accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, node_id: NodeId, raft: Raft) {
    let _ = stream.set_nodelay(true);
    loop {
        let frame = match read_frame(&mut stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "raft RPC connection failed");
                return;
            }
        };
        let envelope: RpcEnvelope = match serde_json::from_slice(&frame) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "undecodable raft RPC; closing connection");
                return;
            }
        };
        let response = if envelope.target != node_id {
            RpcResponse::WrongNode { node_id }
        } else {
            match envelope.request {
                RpcRequest::AppendEntries(rpc) => {
                    RpcResponse::AppendEntries(raft.append_entries(rpc).await)
                }
                RpcRequest::Vote(rpc) => RpcResponse::Vote(raft.vote(rpc).await),
                RpcRequest::InstallSnapshot(rpc) => {
                    RpcResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
                }
            }
        };
        let body = serde_json::to_vec(&response).expect("RPC responses always serialize");
        if let Err(e) = write_frame(&mut stream, &body).await {
            tracing::debug!(%peer, error = %e, "raft RPC reply failed");
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Creates one [`PeerClient`] per target voter.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    node_id: NodeId,
}

impl NetworkFactory {
    pub(crate) fn new(node_id: NodeId) -> Self {
        NetworkFactory { node_id }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            source: self.node_id,
            target,
            addr: node.addr.clone(),
            connection: None,
        }
    }
}

/// The connection to one peer voter.
#[derive(Debug)]
pub(crate) struct PeerClient {
    source: NodeId,
    target: NodeId,
    addr: String,
    connection: Option<TcpStream>,
}

/// Why an RPC got no answer.
#[derive(Debug)]
enum CallError {
    /// Could not connect: openraft backs off before retrying.
    Unreachable(io::Error),
    /// Connected, but the exchange failed: openraft retries at once.
    Network(io::Error),
    Timeout,
}

impl PeerClient {
    async fn call(&mut self, request: RpcRequest, ttl: Duration) -> Result<RpcResponse, CallError> {
        let envelope = RpcEnvelope {
            target: self.target,
            request,
        };
        let body = serde_json::to_vec(&envelope).map_err(|e| CallError::Network(e.into()))?;
        match tokio::time::timeout(ttl, self.exchange_with_retry(&body)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                self.connection = None;
                Err(CallError::Timeout)
            }
        }
    }

    async fn exchange_with_retry(&mut self, body: &[u8]) -> Result<RpcResponse, CallError> {
        let reused = self.connection.is_some();
        match self.exchange(body).await {
            Err(CallError::Network(e)) if reused => {
                tracing::debug!(target = self.target, error = %e, "stale raft connection; reconnecting");
                self.exchange(body).await
            }
            other => other,
        }
    }

    async fn exchange(&mut self, body: &[u8]) -> Result<RpcResponse, CallError> {
        let mut stream = match self.connection.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.addr)
                    .await
                    .map_err(CallError::Unreachable)?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        write_frame(&mut stream, body)
            .await
            .map_err(CallError::Network)?;
        let frame = match read_frame(&mut stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection");
                return Err(CallError::Network(e));
            }
            Err(e) => return Err(CallError::Network(e)),
        };
        let response = serde_json::from_slice(&frame).map_err(|e| CallError::Network(e.into()))?;
        self.connection = Some(stream);
        Ok(response)
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        e: CallError,
        action: RPCTypes,
        ttl: Duration,
    ) -> RPCError<NodeId, Node, E> {
        match e {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
            CallError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.source,
                target: self.target,
                timeout: ttl,
            }),
        }
    }

    fn unexpected<E: std::error::Error>(
        &mut self,
        response: RpcResponse,
    ) -> RPCError<NodeId, Node, E> {
        // The peer is not speaking our protocol (or is another node): start afresh next time.
        self.connection = None;
        let reason = match response {
            RpcResponse::WrongNode { node_id } => {
                format!(
                    "{} answered as node {node_id}, expected node {}",
                    self.addr, self.target
                )
            }
            other => format!("mismatched response from {}: {other:?}", self.addr),
        };
        RPCError::Network(NetworkError::new(&io::Error::new(
            io::ErrorKind::InvalidData,
            reason,
        )))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        let response = self
            .call(RpcRequest::AppendEntries(rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(e, RPCTypes::AppendEntries, ttl))?;
        match response {
            RpcResponse::AppendEntries(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let ttl = option.hard_ttl();
        let response = self
            .call(RpcRequest::InstallSnapshot(rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(e, RPCTypes::InstallSnapshot, ttl))?;
        match response {
            RpcResponse::InstallSnapshot(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        let response = self
            .call(RpcRequest::Vote(rpc), ttl)
            .await
            .map_err(|e| self.rpc_error(e, RPCTypes::Vote, ttl))?;
        match response {
            RpcResponse::Vote(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_frame_is_refused_before_allocation() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(&u32::MAX.to_be_bytes())
                .await
                .expect("write");
            stream
        });
        let (mut server_side, _) = listener.accept().await.expect("accept");
        let err = read_frame(&mut server_side).await.expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        drop(client.await.expect("client"));
    }

    #[tokio::test]
    async fn frames_round_trip_and_eof_is_clean() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            write_frame(&mut stream, b"hello").await.expect("write");
            write_frame(&mut stream, b"").await.expect("write");
        });
        let (mut server_side, _) = listener.accept().await.expect("accept");
        assert_eq!(
            read_frame(&mut server_side).await.expect("read"),
            Some(b"hello".to_vec())
        );
        assert_eq!(
            read_frame(&mut server_side).await.expect("read"),
            Some(Vec::new())
        );
        client.await.expect("client");
        assert_eq!(read_frame(&mut server_side).await.expect("read"), None);
    }

    #[tokio::test]
    async fn unreachable_peer_maps_to_unreachable() {
        // Bind then drop to get a port nobody listens on.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let mut client = NetworkFactory::new(1)
            .new_client(
                2,
                &Node {
                    addr: addr.to_string(),
                },
            )
            .await;
        let rpc = VoteRequest {
            vote: openraft::Vote::new(1, 1),
            last_log_id: None,
        };
        let err = client
            .vote(rpc, RPCOption::new(Duration::from_secs(1)))
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
    }
}
