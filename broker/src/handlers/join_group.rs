use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use kafka_protocol::error::ResponseError as E;

use super::{str_bytes, unless_shutting_down};
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::group::{JoinRequest, JoinResult};

pub const VERSIONS: RangeInclusive<i16> = 0..=9;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let rebalance_ms = if ctx.version >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.client_host),
        session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
        rebalance_timeout: Duration::from_millis(rebalance_ms.max(0) as u64),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    let member_id = join.member_id.clone();
    let joined = unless_shutting_down(b, b.groups.join(req.group_id.0.as_str(), join)).await;
    // Shutting down: Kafka's coordinator answers COORDINATOR_NOT_AVAILABLE once it is
    // no longer active; the member finds the coordinator again and rejoins.
    let r = joined.unwrap_or_else(|| JoinResult::error(E::CoordinatorNotAvailable, &member_id));
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_name(r.protocol_name.map(str_bytes))
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    let mut jm = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_metadata(m.metadata);
                    if ctx.version >= 5 {
                        jm.group_instance_id = m.instance_id.map(str_bytes);
                    }
                    jm
                })
                .collect(),
        );
    if ctx.version >= 7 {
        resp.protocol_type = r.protocol_type.map(str_bytes);
    }
    if ctx.version >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    if ctx.version < 7 && resp.protocol_name.is_none() {
        // Before v7 the protocol name is not nullable.
        resp.protocol_name = Some(str_bytes(""));
    }
    resp
}
