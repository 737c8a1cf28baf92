use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub fn handle(b: &Arc<Broker>, ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = req.group_id.0.as_str();
    if ctx.version < 3 {
        let r = b.groups.leave(group, req.member_id.as_str(), None);
        return LeaveGroupResponse::default().with_error_code(r.err().map_or(0, |e| e.code()));
    }
    // v3+: a batch of members (KIP-345), each with its own result.
    let members = req
        .members
        .into_iter()
        .map(|m| {
            let r = b.groups.leave(
                group,
                m.member_id.as_str(),
                m.group_instance_id.as_ref().map(|s| s.as_str()),
            );
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(r.err().map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
