//! Producer ids for InitProducerId, handed out from blocks the metadata quorum
//! allocates (so ids stay unique across restarts and, later, across brokers).

use std::sync::Mutex;

use sluice_raft::{CommandOutcome, MetadataCommand, MetadataStore};

const BLOCK_SIZE: i64 = 1000;

#[derive(Debug, Default)]
pub struct ProducerIdManager {
    /// Next id to hand out and the end of the current block (exclusive).
    block: Mutex<(i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("metadata quorum: {0}")]
    Quorum(#[from] sluice_raft::Error),
    #[error("allocation rejected: {0}")]
    Rejected(sluice_raft::MetadataError),
}

impl ProducerIdManager {
    pub async fn next(&self, metadata: &MetadataStore) -> Result<i64, ProducerIdError> {
        loop {
            {
                let mut b = self.block.lock().unwrap_or_else(|p| p.into_inner());
                if b.0 < b.1 {
                    let id = b.0;
                    b.0 += 1;
                    return Ok(id);
                }
            }
            match metadata
                .propose(MetadataCommand::AllocateProducerIds { count: BLOCK_SIZE })
                .await?
            {
                CommandOutcome::ProducerIdBlock { first, count } => {
                    let mut b = self.block.lock().unwrap_or_else(|p| p.into_inner());
                    if b.0 >= b.1 {
                        *b = (first, first + count);
                    }
                }
                CommandOutcome::Rejected(e) => return Err(ProducerIdError::Rejected(e)),
                other => unreachable!("AllocateProducerIds answers with a block, got {other:?}"),
            }
        }
    }
}
