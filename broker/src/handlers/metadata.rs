use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use sluice_raft::TopicMeta;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics;

pub const VERSIONS: RangeInclusive<i16> = 0..=12;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let all = match &req.topics {
        None => true,
        Some(t) => ctx.version == 0 && t.is_empty(),
    };
    let auto_create = b.config.flag("auto.create.topics.enable")
        && (ctx.version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    if all {
        for t in b.image().topics.values() {
            topics.push(describe(t));
        }
    } else {
        for requested in req.topics.unwrap_or_default() {
            // v10+ may name a topic by id (name null); an id wins over a name.
            if let (true, Some(name)) = (requested.topic_id.is_nil(), requested.name) {
                topics.push(lookup_by_name(b, name, auto_create).await);
            } else {
                let image = b.image();
                match image.topic_by_id(&requested.topic_id) {
                    Some(t) => topics.push(describe(t)),
                    None => topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(requested.topic_id)
                            .with_error_code(E::UnknownTopicId.code()),
                    ),
                }
            }
        }
    }
    let image = b.image();
    let brokers = image
        .brokers
        .values()
        .map(|info| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(info.node_id))
                .with_host(str_bytes(info.host.clone()))
                .with_port(info.port)
                .with_rack(info.rack.clone().map(str_bytes))
        })
        .collect();
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(image.cluster_id.clone())))
        .with_controller_id(BrokerId(image.controller_id))
        .with_topics(topics);
    if (8..=10).contains(&ctx.version) {
        resp.cluster_authorized_operations = i32::MIN;
    }
    resp
}

async fn lookup_by_name(b: &Broker, name: TopicName, auto_create: bool) -> MetadataResponseTopic {
    if let Some(t) = b.image().topic(name.0.as_str()) {
        return describe(t);
    }
    let unknown = |code: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code)
    };
    if !auto_create {
        return unknown(E::UnknownTopicOrPartition.code());
    }
    match topics::create_topic(b, name.0.as_str(), -1, -1, BTreeMap::new(), false).await {
        Ok(_) => match b.image().topic(name.0.as_str()) {
            Some(t) => describe(t),
            None => unknown(E::LeaderNotAvailable.code()),
        },
        // Lost a race with another creator: describe what is there.
        Err(r) if r.error == E::TopicAlreadyExists => b
            .image()
            .topic(name.0.as_str())
            .map(describe)
            .unwrap_or_else(|| unknown(E::LeaderNotAvailable.code())),
        Err(r) => unknown(r.error.code()),
    }
}

fn describe(t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}
