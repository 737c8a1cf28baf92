use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{authorized_operations, str_bytes, AclResource};
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup::default().with_group_id(id.clone());
            if ctx.version >= 3 {
                // Every group is described without an error (an unknown one as Dead).
                d.authorized_operations = if req.include_authorized_operations {
                    authorized_operations(AclResource::Group)
                } else {
                    i32::MIN
                };
            }
            match b.groups.describe(id.0.as_str()) {
                // Kafka describes an unknown group as Dead, without an error, before v6.
                None => d.with_group_state(str_bytes("Dead")),
                Some(v) => d
                    .with_group_state(str_bytes(v.state.name()))
                    .with_protocol_type(str_bytes(v.protocol_type))
                    .with_protocol_data(str_bytes(v.protocol))
                    .with_members(
                        v.members
                            .into_iter()
                            .map(|m| {
                                let mut dm = DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if ctx.version >= 4 {
                                    dm.group_instance_id = m.instance_id.map(str_bytes);
                                }
                                dm
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
