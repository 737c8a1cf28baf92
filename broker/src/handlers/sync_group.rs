use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use kafka_protocol::error::ResponseError as E;

use super::{str_bytes, unless_shutting_down};
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::group::SyncResult;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let synced = b.groups.sync(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|s| s.as_str()),
        req.protocol_type.as_ref().map(|s| s.as_str()),
        req.protocol_name.as_ref().map(|s| s.as_str()),
        assignments,
    );
    // Shutting down: as JoinGroup (`join_group::handle`).
    let r = unless_shutting_down(b, synced)
        .await
        .unwrap_or_else(|| SyncResult::error(E::CoordinatorNotAvailable));
    let mut resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if ctx.version >= 5 {
        resp.protocol_type = r.protocol_type.map(str_bytes);
        resp.protocol_name = r.protocol_name.map(str_bytes);
    }
    resp
}
