use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use sluice_raft::{MetadataImage, TopicMeta};

use super::{authorized_operations, str_bytes, AclResource};
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics;
use crate::view;

pub const VERSIONS: RangeInclusive<i16> = 0..=12;

/// Kafka takes topic ids, and topics named null, only from v12 on: v10 and v11 carry
/// the fields but its handler refuses a request that uses them (`InvalidRequestException`),
/// and the error response names each topic asked for (a null name as "") with
/// INVALID_REQUEST, and nothing else.
fn ids_before_v12(
    version: i16,
    asked: Option<&[MetadataRequestTopic]>,
) -> Option<MetadataResponse> {
    let asked = asked.filter(|_| version < 12)?;
    if !asked
        .iter()
        .any(|t| t.name.is_none() || !t.topic_id.is_nil())
    {
        return None;
    }
    tracing::debug!(
        version,
        "metadata request refused: topic ids or null names before v12"
    );
    let topics = asked
        .iter()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_name(Some(t.name.clone().unwrap_or_default()))
                .with_topic_id(t.topic_id)
                .with_error_code(E::InvalidRequest.code())
        })
        .collect();
    Some(MetadataResponse::default().with_topics(topics))
}

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    if let Some(refused) = ids_before_v12(ctx.version, req.topics.as_deref()) {
        return refused;
    }
    let (req_cluster_ops, req_topic_ops) = (
        req.include_cluster_authorized_operations,
        req.include_topic_authorized_operations,
    );
    let all = match &req.topics {
        None => true,
        Some(t) => ctx.version == 0 && t.is_empty(),
    };
    let auto_create = b.config.flag("auto.create.topics.enable")
        && (ctx.version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    if all {
        let image = b.image();
        for t in image.topics.values() {
            topics.push(describe(&image, t));
        }
    } else {
        for requested in req.topics.unwrap_or_default() {
            // v10+ may name a topic by id (name null); an id wins over a name.
            if let (true, Some(name)) = (requested.topic_id.is_nil(), requested.name) {
                topics.push(lookup_by_name(b, name, auto_create).await);
            } else {
                let image = b.image();
                match image.topic_by_id(&requested.topic_id) {
                    Some(t) => topics.push(describe(&image, t)),
                    // Named null, as Kafka answers an unknown id (the library's default
                    // name is an empty string).
                    None => topics.push(
                        MetadataResponseTopic::default()
                            .with_name(None)
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
        resp.cluster_authorized_operations = if req_cluster_ops {
            authorized_operations(AclResource::Cluster)
        } else {
            i32::MIN
        };
    }
    if ctx.version >= 8 && req_topic_ops {
        // As `KafkaApis.handleTopicMetadataRequest`: every topic answered by name,
        // found or not (not those asked for by an unknown id).
        for t in resp.topics.iter_mut().filter(|t| t.name.is_some()) {
            t.topic_authorized_operations = authorized_operations(AclResource::Topic);
        }
    }
    resp
}

async fn lookup_by_name(b: &Broker, name: TopicName, auto_create: bool) -> MetadataResponseTopic {
    let image = b.image();
    if let Some(t) = image.topic(name.0.as_str()) {
        return describe(&image, t);
    }
    let unknown = |code: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code)
    };
    if !auto_create {
        // As `KafkaApis.getTopicMetadata`: a name no topic could have is invalid, so
        // the client fails at once instead of waiting for the topic to appear.
        return unknown(match topics::legal_topic_name(name.0.as_str()) {
            Err(r) => r.error.code(),
            Ok(()) => E::UnknownTopicOrPartition.code(),
        });
    }
    match topics::create_topic(b, name.0.as_str(), -1, -1, BTreeMap::new(), false).await {
        // Created, or lost a race with another creator: describe what is there.
        Ok(_)
        | Err(topics::Refusal {
            error: E::TopicAlreadyExists,
            ..
        }) => {
            let image = b.image();
            match image.topic(name.0.as_str()) {
                Some(t) => describe(&image, t),
                None => unknown(E::LeaderNotAvailable.code()),
            }
        }
        Err(r) => unknown(r.error.code()),
    }
}

/// A topic's metadata. A view's partitions are its source's: the same leaders and
/// leader epochs, since its reads are the source partitions' reads.
fn describe(image: &MetadataImage, t: &TopicMeta) -> MetadataResponseTopic {
    let source = view::source_of(t).and_then(|s| image.topic(s));
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            source
                .and_then(|s| s.partitions.get(p.partition as usize))
                .unwrap_or(p)
        })
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
