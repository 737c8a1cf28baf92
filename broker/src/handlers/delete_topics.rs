use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use sluice_raft::MetadataCommand;

use super::{repeated, str_bytes};
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
    // Kafka refuses the whole request while deletion is disabled, before it looks a topic
    // up (`ControllerApis.deleteTopics`): versions before 3 do not know
    // TOPIC_DELETION_DISABLED.
    if !b.config.flag("delete.topic.enable") {
        let code = if ctx.version < 3 {
            E::InvalidRequest
        } else {
            E::TopicDeletionDisabled
        };
        let responses = targets
            .into_iter()
            .map(|(name, id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(code.code())
            })
            .collect();
        return DeleteTopicsResponse::default().with_responses(responses);
    }
    // Kafka's screening (`ControllerApis.deleteTopics`): a topic named by neither name nor
    // id, by both, or more than once, is refused and not deleted.
    let refuse = |name: Option<TopicName>, id: uuid::Uuid, message: &str| {
        DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(id)
            .with_error_code(E::InvalidRequest.code())
            .with_error_message(Some(str_bytes(message)))
    };
    let names = repeated(
        targets
            .iter()
            .filter(|(_, id)| id.is_nil())
            .filter_map(|(name, _)| name.clone()),
    );
    let ids = repeated(
        targets
            .iter()
            .filter(|(name, id)| name.is_none() && !id.is_nil())
            .map(|(_, id)| *id),
    );
    let mut responses = Vec::new();
    let mut valid = Vec::new();
    for (name, id) in targets {
        match (&name, id.is_nil()) {
            (None, true) => responses.push(refuse(
                None,
                id,
                "Neither topic name nor id were specified.",
            )),
            (Some(_), false) => responses.push(refuse(
                name,
                id,
                "You may not specify both topic name and topic id.",
            )),
            (Some(n), true) if names.contains(n) => {}
            (None, false) if ids.contains(&id) => {}
            _ => valid.push((name, id)),
        }
    }
    let nil = uuid::Uuid::nil();
    responses.extend(
        names
            .into_iter()
            .map(|n| refuse(Some(n), nil, "Duplicate topic name.")),
    );
    responses.extend(
        ids.into_iter()
            .map(|id| refuse(None, id, "Duplicate topic id.")),
    );
    for (name, id) in valid {
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
        if topic.internal {
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
