use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use sluice_raft::MetadataCommand;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics;
use crate::view;

pub const VERSIONS: RangeInclusive<i16> = 1..=6;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if ctx.version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::new();
    for (name, id) in targets {
        let image = b.image();
        let found = match &name {
            Some(n) => image.topic(n.0.as_str()),
            None => image.topic_by_id(&id),
        };
        let mut result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        let Some(topic) = found else {
            result.error_code = if name.is_some() {
                E::UnknownTopicOrPartition.code()
            } else {
                E::UnknownTopicId.code()
            };
            responses.push(result);
            continue;
        };
        result.name = Some(TopicName(str_bytes(topic.name.clone())));
        result.topic_id = topic.id;
        if !b.config.flag("delete.topic.enable") {
            result.error_code = E::TopicDeletionDisabled.code();
        } else if topic.internal {
            result.error_code = E::InvalidTopicException.code();
            result.error_message = Some(str_bytes("internal topics cannot be deleted"));
        } else if let Err(r) = topics::propose_simple(
            b,
            MetadataCommand::DeleteTopic {
                name: topic.name.clone(),
            },
        )
        .await
        {
            result.error_code = r.error.code();
            result.error_message = Some(str_bytes(r.message));
        } else {
            tracing::info!(topic = %topic.name, "deleted topic");
            b.groups.delete_topic_offsets(&topic.name);
            // A view cannot outlive its source (documented): delete its views with it.
            for v in view::views_of(&image, &topic.name) {
                let cmd = MetadataCommand::DeleteTopic {
                    name: v.name.clone(),
                };
                match topics::propose_simple(b, cmd).await {
                    Ok(()) => {
                        tracing::info!(view = %v.name, source = %topic.name, "deleted view with its source");
                        b.groups.delete_topic_offsets(&v.name);
                    }
                    Err(r) => {
                        tracing::error!(view = %v.name, error = %r.message, "could not delete view of a deleted topic")
                    }
                }
            }
        }
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
