//! Point-in-time rules both stores share: how a nonconformity stood at a past time, and the
//! order controls are listed in.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::evaluate::{NcEvent, Nonconformity};
use crate::store::ControlRecord;

/// Rewinds a nonconformity to how it stood at `at`, from its events up to `at` (oldest first).
pub(crate) fn nc_as_of(
    mut nc: Nonconformity,
    events: &[NcEvent],
    at: DateTime<Utc>,
) -> Nonconformity {
    if let Some(last) = events.last() {
        nc.state = last.to;
        nc.updated_at = last.at;
    }
    let keep = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= at);
    nc.resolved_at = keep(nc.resolved_at);
    nc.verified_at = keep(nc.verified_at);
    nc.closed_at = keep(nc.closed_at);
    if nc.closed_at.is_none() {
        nc.close_reason = None;
    }
    nc
}

/// Sorts control records in Annex A catalogue order (unknown controls last).
pub(crate) fn catalogue_order(records: &mut [ControlRecord]) {
    let order: HashMap<&str, usize> = vigil_shared::controls::all()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    records.sort_by_key(|r| {
        order
            .get(r.state.control.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
}
