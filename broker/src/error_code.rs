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
        StorageError::Io { .. } | StorageError::Poisoned | StorageError::Closed => {
            E::KafkaStorageError
        }
        StorageError::Batch(b) => match b {
            // Produce v3+ carries magic-2 batches only: Kafka's
            // `ProduceRequest.validateRecords` refuses others as INVALID_RECORD.
            BatchError::BadMagic { .. }
            | BatchError::ControlBatch
            | BatchError::BadCompression { .. }
            | BatchError::BadCount { .. }
            | BatchError::SeveralBatches { .. }
            | BatchError::BaseOffset { .. } => E::InvalidRecord,
            // What `LogValidator` throws as InvalidRecordException: records that do not
            // read, a producer id without a sequence.
            BatchError::NoSequence { .. }
            | BatchError::BadCompressedRecords { .. }
            | BatchError::MalformedRecord { .. } => E::InvalidRecord,
            // Sluice's bound on a batch's inflated size (`storage::inflate`).
            BatchError::InflatesTooLarge { .. } => E::MessageTooLarge,
            BatchError::Transactional => E::TransactionalIdAuthorizationFailed,
            BatchError::Truncated { .. }
            | BatchError::LengthMismatch { .. }
            | BatchError::BadCrc { .. } => E::CorruptMessage,
        },
        // "at least one record batch per partition" (`ProduceRequest.validateRecords`).
        StorageError::NoBatches => E::InvalidRecord,
        StorageError::RecordTooLarge { .. } => E::MessageTooLarge,
        StorageError::Producer(ProducerError::InvalidEpoch { .. }) => E::InvalidProducerEpoch,
        StorageError::Producer(ProducerError::OutOfOrder { .. }) => E::OutOfOrderSequenceNumber,
        StorageError::DuplicateSequence => E::DuplicateSequenceNumber,
        StorageError::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
    }
}

/// A group coordinator's write to its own log that failed, as the client is told: Kafka
/// answers the storage's error in the coordinator's terms
/// (`appendGroupMetadataErrorToResponseError`), so a consumer looks for its coordinator
/// again and retries, where KAFKA_STORAGE_ERROR would end its commit as unexpected.
pub fn group_write(e: &StorageError) -> E {
    match storage(e) {
        E::UnknownTopicOrPartition | E::NotEnoughReplicas | E::RequestTimedOut => {
            E::CoordinatorNotAvailable
        }
        E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
        E::MessageTooLarge | E::RecordListTooLarge | E::InvalidFetchSize => E::UnknownServerError,
        other => other,
    }
}

/// Kafka's default message for an error (`Errors.message()`), for the responses that
/// carry one where Kafka sets it. Only the errors Sluice sends with their default
/// message are here; None for the rest.
pub fn default_message(e: E) -> Option<&'static str> {
    Some(match e {
        E::UnknownTopicOrPartition => "This server does not host this topic-partition.",
        E::NotLeaderOrFollower => "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.",
        E::PreferredLeaderNotAvailable => "The preferred leader was not available.",
        E::EligibleLeadersNotAvailable => "Eligible topic partition leaders are not available.",
        E::ElectionNotNeeded => "Leader election not needed for topic partition.",
        _ => return None,
    })
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

/// The error for a partition this broker does not host, as Kafka's
/// `ReplicaManager.getPartitionOrError` gives it. A partition the metadata has is led
/// elsewhere or not opened here yet (a topic created a moment ago): the client refreshes
/// its metadata and retries. One the metadata does not have is unknown.
pub fn unhosted_partition(image: &sluice_raft::MetadataImage, topic: &str, partition: i32) -> E {
    // A view's partitions are its source's.
    let meta = image
        .topic(topic)
        .and_then(|t| match crate::view::source_of(t) {
            Some(source) => image.topic(source),
            None => Some(t),
        });
    let known =
        meta.is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partitions.len()));
    if known {
        E::NotLeaderOrFollower
    } else {
        E::UnknownTopicOrPartition
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::test_images;

    #[test]
    fn unhosted_partitions_of_known_topics_are_retriable() {
        let view = BTreeMap::from([(crate::view::SOURCE_CONFIG.to_owned(), "t".to_owned())]);
        let image = test_images::one_broker();
        let image = test_images::with_topic(&image, "t", 1, 2, BTreeMap::new());
        let image = test_images::with_topic(&image, "v", 2, 2, view);
        for (topic, partition, expected) in [
            ("t", 0, E::NotLeaderOrFollower),
            ("t", 1, E::NotLeaderOrFollower),
            ("t", 2, E::UnknownTopicOrPartition),
            ("t", -1, E::UnknownTopicOrPartition),
            ("v", 1, E::NotLeaderOrFollower),
            ("nope", 0, E::UnknownTopicOrPartition),
        ] {
            assert_eq!(
                unhosted_partition(&image, topic, partition),
                expected,
                "{topic}-{partition}"
            );
        }
    }
}
