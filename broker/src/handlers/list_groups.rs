use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

/// Every Sluice group is a classic group.
const GROUP_TYPE: &str = "classic";

pub fn handle(b: &Arc<Broker>, ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let groups = b
        .groups
        .list()
        .into_iter()
        .filter(|(_, v)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(v.state.name()))
        })
        .filter(|_| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case(GROUP_TYPE))
        })
        .map(|(id, v)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(v.protocol_type));
            if ctx.version >= 4 {
                g.group_state = str_bytes(v.state.name());
            }
            if ctx.version >= 5 {
                g.group_type = str_bytes(GROUP_TYPE);
            }
            g
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
