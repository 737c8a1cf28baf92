use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 1..=4;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&partition)),
    };
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in b.replicas.all() {
        if !wanted(&p.topic, p.index) {
            continue;
        }
        let size = p.lock().size_bytes() as i64;
        by_topic.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(size),
        );
    }
    let dir = std::fs::canonicalize(&b.config.cli.data_dir)
        .unwrap_or_else(|_| b.config.cli.data_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.display().to_string()))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    if ctx.version >= 4 {
        if let Ok(st) = nix::sys::statvfs::statvfs(&dir) {
            let frag = st.fragment_size() as i64;
            result.total_bytes = st.blocks() as i64 * frag;
            result.usable_bytes = st.blocks_available() as i64 * frag;
        }
    } else {
        result.total_bytes = -1;
        result.usable_bytes = -1;
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
