//! Stage 7, the report: what the parts of the target cost in the delta. The planner records
//! for each part the bytes it put into a new-bytes stream (or a patch's exact size); once the
//! streams are compressed, each byte is charged its stream's compressed size in proportion.

use std::collections::HashMap;

use crate::plan::Cost;
use crate::{ItemCost, TOP_ITEMS};

/// The [`TOP_ITEMS`] most expensive parts of the target. `stream_sizes` holds each new-bytes
/// stream's (uncompressed, compressed) size; bytes in a stream are charged its compressed
/// size in proportion.
pub(crate) fn most_expensive(costs: &[Cost], stream_sizes: &[(u64, u64)]) -> Vec<ItemCost> {
    let mut by_part: HashMap<(&str, Option<&str>, &'static str), (u64, u64)> = HashMap::new();
    for c in costs {
        let share = c.stream.map_or(0, |s| {
            let (data, compressed) = stream_sizes.get(s).copied().unwrap_or((0, 0));
            if data == 0 {
                0
            } else {
                (u128::from(c.bytes) * u128::from(compressed) / u128::from(data)) as u64
            }
        });
        let entry = by_part
            .entry((c.member.as_str(), c.path.as_deref(), c.how))
            .or_default();
        entry.0 += c.bytes;
        entry.1 += c.fixed + share;
    }
    let mut all: Vec<ItemCost> = by_part
        .into_iter()
        .map(|((member, path, how), (changed, delta))| ItemCost {
            member: member.to_string(),
            path: path.map(str::to_string),
            how,
            changed_bytes: changed,
            delta_bytes: delta,
        })
        .collect();
    // Most expensive first; ties in a fixed order so that logs are reproducible.
    all.sort_by(|a, b| {
        b.delta_bytes
            .cmp(&a.delta_bytes)
            .then_with(|| (&a.member, &a.path, a.how).cmp(&(&b.member, &b.path, b.how)))
    });
    all.truncate(TOP_ITEMS);
    all
}
