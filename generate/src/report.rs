//! Stage 7, the report: what the parts of the target cost in the delta. The planner records
//! for each part the bytes it put into a new-bytes stream (or a patch's exact size); once the
//! streams are compressed, each byte is charged its stream's compressed size in proportion.
//! The result is one list, most expensive first ([`Stats::costs`]), of which the log and
//! `report.json` show the head ([`Stats::most_expensive`]) and `report.html` all.

use std::collections::HashMap;

use crate::plan::{Cost, HOW_NEW, HOW_NEW_X86};
use crate::{CostsLeftOut, ItemCost, PartKind, Stats, COST_ITEMS, TOP_ITEMS};

/// Fills `stats.costs`, `stats.costs_left_out` and `stats.most_expensive` from the planner's
/// `costs`. `stream_sizes` holds each new-bytes stream's (uncompressed, compressed) size.
/// When the plain stream (stream 0) was compressed after the x86 filter
/// (`stats.bcj_filtered_bytes`), its new bytes are reported as such.
pub(crate) fn report(stats: &mut Stats, costs: &[Cost], stream_sizes: &[(u64, u64)]) {
    let x86 = stats.bcj_filtered_bytes > 0;
    let mut all = item_costs(costs, stream_sizes, x86);
    let rest = all.split_off(all.len().min(COST_ITEMS));
    stats.costs_left_out = CostsLeftOut {
        parts: rest.len() as u64,
        changed_bytes: rest.iter().map(|c| c.changed_bytes).sum(),
        delta_bytes: rest.iter().map(|c| c.delta_bytes).sum(),
    };
    stats.most_expensive = all[..all.len().min(TOP_ITEMS)].to_vec();
    stats.costs = all;
}

/// Every part of the target with its cost, most expensive first.
fn item_costs(costs: &[Cost], stream_sizes: &[(u64, u64)], x86: bool) -> Vec<ItemCost> {
    type Key<'c> = (&'c str, Option<&'c str>, PartKind, &'static str);
    let mut by_part: HashMap<Key, (u64, u64)> = HashMap::new();
    for c in costs {
        let share = c.stream.map_or(0, |s| {
            let (data, compressed) = stream_sizes.get(s).copied().unwrap_or((0, 0));
            if data == 0 {
                0
            } else {
                (u128::from(c.bytes) * u128::from(compressed) / u128::from(data)) as u64
            }
        });
        let how = if x86 && c.stream == Some(0) && c.how == HOW_NEW {
            HOW_NEW_X86
        } else {
            c.how
        };
        let entry = by_part
            .entry((c.member.as_str(), c.path.as_deref(), c.kind, how))
            .or_default();
        entry.0 += c.bytes;
        entry.1 += c.fixed + share;
    }
    let mut all: Vec<ItemCost> = by_part
        .into_iter()
        .map(|((member, path, kind, how), (changed, delta))| ItemCost {
            member: member.to_string(),
            path: path.map(str::to_string),
            kind,
            how,
            changed_bytes: changed,
            delta_bytes: delta,
        })
        .collect();
    // Most expensive first; ties in a fixed order so that logs are reproducible.
    all.sort_by(|a, b| {
        b.delta_bytes.cmp(&a.delta_bytes).then_with(|| {
            (&a.member, &a.path, a.kind, a.how).cmp(&(&b.member, &b.path, b.kind, b.how))
        })
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HOW_BSDIFF, HOW_ZSTD_BASIS};

    fn cost(path: Option<&str>, kind: PartKind, how: &'static str, stream: Option<usize>) -> Cost {
        Cost {
            member: "rootfs.ext4".into(),
            path: path.map(str::to_string),
            kind,
            how,
            stream,
            bytes: 1000,
            fixed: if stream.is_none() { 300 } else { 0 },
        }
    }

    /// Stream bytes are charged in proportion, patches exactly; the same part's pieces add up;
    /// the head of the list is `most_expensive`; the x86 filter relabels stream 0 only.
    #[test]
    fn charges_streams_in_proportion_and_keeps_every_part() {
        let costs = [
            cost(Some("/a"), PartKind::File, HOW_NEW, Some(0)),
            cost(Some("/a"), PartKind::File, HOW_NEW, Some(0)),
            cost(Some("/b"), PartKind::File, HOW_ZSTD_BASIS, Some(1)),
            cost(Some("/c"), PartKind::File, HOW_BSDIFF, None),
            cost(None, PartKind::Metadata, HOW_NEW, Some(0)),
            cost(None, PartKind::Framing, HOW_NEW, Some(0)),
        ];
        // Stream 0: 4000 bytes into 400; stream 1: 1000 into 50.
        let sizes = [(4000, 400), (1000, 50)];
        let mut stats = Stats::default();
        report(&mut stats, &costs, &sizes);
        let got: Vec<(Option<&str>, PartKind, u64, u64)> = stats
            .costs
            .iter()
            .map(|c| (c.path.as_deref(), c.kind, c.changed_bytes, c.delta_bytes))
            .collect();
        assert_eq!(
            got,
            [
                (Some("/c"), PartKind::File, 1000, 300),
                (Some("/a"), PartKind::File, 2000, 200),
                (None, PartKind::Metadata, 1000, 100),
                (None, PartKind::Framing, 1000, 100),
                (Some("/b"), PartKind::File, 1000, 50),
            ]
        );
        assert_eq!(stats.most_expensive, stats.costs);
        assert_eq!(stats.costs_left_out, CostsLeftOut::default());

        stats.bcj_filtered_bytes = 4000;
        report(&mut stats, &costs, &sizes);
        assert_eq!(stats.costs[1].how, HOW_NEW_X86);
        assert_eq!(stats.costs[4].how, HOW_ZSTD_BASIS);
    }

    /// Past [`COST_ITEMS`] parts are only counted; `most_expensive` is the first
    /// [`TOP_ITEMS`].
    #[test]
    fn caps_the_list_and_counts_the_rest() {
        let costs: Vec<Cost> = (0..COST_ITEMS + 5)
            .map(|i| Cost {
                bytes: i as u64 + 1,
                ..cost(None, PartKind::Payload, HOW_BSDIFF, None)
            })
            .map(|c| Cost {
                path: Some(format!("/f{}", c.bytes)),
                fixed: c.bytes,
                ..c
            })
            .collect();
        let mut stats = Stats::default();
        report(&mut stats, &costs, &[]);
        assert_eq!(stats.costs.len(), COST_ITEMS);
        assert_eq!(stats.most_expensive[..], stats.costs[..TOP_ITEMS]);
        assert_eq!(stats.costs[0].delta_bytes, COST_ITEMS as u64 + 5);
        assert_eq!(
            stats.costs_left_out,
            CostsLeftOut {
                parts: 5,
                changed_bytes: 15,
                delta_bytes: 15
            }
        );
    }
}
