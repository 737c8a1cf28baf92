use crate::batch::BatchError;
use crate::producer::ProducerError;

/// Everything a partition log can refuse or fail with. The broker maps each variant to
/// one Kafka error code, in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error while {op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
    #[error("produce request carried no record batch")]
    NoBatches,
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: usize },
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("a request mixing retried and new batches of one producer")]
    DuplicateSequence,
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// A flush or an append failed earlier: the log refuses writes until the broker
    /// restarts and recovers it from its files, because after a failed fsync the page
    /// cache can no longer be trusted, and a failed append may have left part of a batch.
    #[error("the log refuses writes after an earlier write or flush failed, until a restart")]
    Poisoned,
    /// The log was closed (the broker is shutting down): Kafka's closed log refuses an
    /// append the same way, with a `KafkaStorageException`.
    #[error("the log is closed: the broker is shutting down")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done to an I/O error.
pub(crate) trait IoContext<T> {
    fn during(self, op: &'static str) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn during(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Io { op, source })
    }
}
