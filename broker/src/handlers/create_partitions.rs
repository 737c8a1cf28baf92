use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_raft::MetadataCommand;

use super::{repeated, str_bytes};
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics::{self, Refusal};
use crate::view;

pub const VERSIONS: RangeInclusive<i16> = 0..=3;

pub async fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // A topic named twice is refused, once, and grown by neither (`ControllerApis`).
    let twice = repeated(req.topics.iter().map(|t| t.name.clone()));
    let mut results: Vec<_> = twice
        .iter()
        .map(|name| {
            CreatePartitionsTopicResult::default()
                .with_name(name.clone())
                .with_error_code(E::InvalidRequest.code())
                .with_error_message(Some(str_bytes("Duplicate topic name.")))
        })
        .collect();
    for t in req.topics.into_iter().filter(|t| !twice.contains(&t.name)) {
        let name = t.name.0.to_string();
        let outcome = check(b, &name, t.count, t.assignments.is_some());
        let outcome = match outcome {
            Ok(()) if !req.validate_only => grow(b, &name, t.count).await,
            other => other,
        };
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name);
        if let Err(refusal) = outcome {
            r.error_code = refusal.error.code();
            r.error_message = Some(str_bytes(refusal.message));
        }
        results.push(r);
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Grows a topic, then its views: a view has its source's partitions.
async fn grow(b: &Broker, name: &str, new_total: i32) -> Result<(), Refusal> {
    let propose = |name: &str| {
        topics::propose_simple(
            b,
            MetadataCommand::CreatePartitions {
                name: name.to_owned(),
                new_total,
            },
        )
    };
    propose(name).await?;
    let image = b.image();
    for v in view::views_of(&image, name) {
        propose(&v.name).await?;
        tracing::info!(view = %v.name, new_total, "view grown with its source");
    }
    Ok(())
}

fn check(b: &Broker, name: &str, count: i32, has_assignments: bool) -> Result<(), Refusal> {
    let image = b.image();
    let Some(topic) = image.topic(name) else {
        return Err(topics::unknown_topic(name));
    };
    if let Some(source) = view::source_of(topic) {
        return Err(Refusal::new(
            E::InvalidPartitions,
            format!("topic '{name}' is a view and has its source's partitions: add partitions to '{source}'"),
        ));
    }
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err(Refusal::new(
            E::InvalidPartitions,
            format!("topic currently has {current} partitions, which is higher than or equal to the requested {count}"),
        ));
    }
    if has_assignments {
        return Err(Refusal::new(
            E::InvalidRequest,
            "manual replica assignment is not supported by Sluice yet",
        ));
    }
    Ok(())
}
