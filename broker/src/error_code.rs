//! The one place where Sluice's typed errors become Kafka error codes.

use kafka_protocol::error::ResponseError as E;
use sluice_raft::MetadataError;
use sluice_storage::batch::BatchError;
use sluice_storage::producer::ProducerError;
use sluice_storage::Error as StorageError;

pub const NONE: i16 = 0;

pub fn code(e: E) -> i16 {
    e.code()
}

pub fn storage(e: &StorageError) -> E {
    match e {
        StorageError::Io { .. } | StorageError::Poisoned => E::KafkaStorageError,
        StorageError::Batch(b) => match b {
            BatchError::BadMagic { .. } => E::UnsupportedForMessageFormat,
            BatchError::ControlBatch
            | BatchError::BadCompression { .. }
            | BatchError::BadCount { .. } => E::InvalidRecord,
            BatchError::Transactional => E::TransactionalIdAuthorizationFailed,
            BatchError::Truncated { .. }
            | BatchError::LengthMismatch { .. }
            | BatchError::BadCrc { .. } => E::CorruptMessage,
        },
        StorageError::NoBatches => E::CorruptMessage,
        StorageError::RecordTooLarge { .. } => E::MessageTooLarge,
        StorageError::Producer(ProducerError::InvalidEpoch { .. }) => E::InvalidProducerEpoch,
        StorageError::Producer(ProducerError::OutOfOrder { .. }) => E::OutOfOrderSequenceNumber,
        StorageError::DuplicateSequence => E::DuplicateSequenceNumber,
        StorageError::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
    }
}

pub fn metadata(e: &MetadataError) -> E {
    match e {
        MetadataError::TopicAlreadyExists | MetadataError::TopicIdAlreadyExists { .. } => {
            E::TopicAlreadyExists
        }
        MetadataError::InvalidTopicId | MetadataError::InvalidTopicName { .. } => {
            E::InvalidTopicException
        }
        MetadataError::UnknownTopic => E::UnknownTopicOrPartition,
        MetadataError::InvalidPartitions { .. } => E::InvalidPartitions,
        MetadataError::InvalidReplicationFactor { .. } => E::InvalidReplicationFactor,
        MetadataError::InvalidProducerIdCount { .. }
        | MetadataError::ProducerIdsExhausted
        | MetadataError::InvalidBrokerRegistration { .. }
        | MetadataError::ClusterIdAlreadySet { .. }
        | MetadataError::InvalidClusterId { .. } => E::UnknownServerError,
    }
}

/// Errors of the quorum itself (not of a command): retriable where Kafka's are.
pub fn quorum(e: &sluice_raft::Error) -> E {
    match e {
        sluice_raft::Error::NotLeader { .. } => E::NotController,
        _ => E::UnknownServerError,
    }
}
