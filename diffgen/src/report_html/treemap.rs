//! Treemap layout for `report.html`: the squarified algorithm (Bruls, Huizing and van Wijk,
//! 2000), which keeps tiles close to squares so that their areas can be compared by eye, and
//! its nesting (a group's children laid out inside the group's tile, below a strip for its
//! name, the group laid out larger by what that takes so that areas stay comparable across
//! groups). Pure geometry, laid out here rather than in the browser so that the page needs no
//! script to draw and a test can check the tiles.

use std::collections::HashMap;

/// A rectangle in SVG user units (x to the right, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// This rectangle less `pad` on every side and `top` more at the top (never negative).
    pub fn inset(&self, pad: f64, top: f64) -> Rect {
        let w = (self.w - 2.0 * pad).max(0.0);
        let h = (self.h - 2.0 * pad - top).max(0.0);
        Rect {
            x: self.x + pad,
            y: self.y + pad + top,
            w,
            h,
        }
    }
}

/// Lays out `sizes` (sorted largest first; zeros get empty rectangles) in `area`: one
/// rectangle each, in the same order, with areas in proportion to the sizes, filling `area`.
pub fn squarify(sizes: &[f64], area: Rect) -> Vec<Rect> {
    let total: f64 = sizes.iter().filter(|s| **s > 0.0).sum();
    let mut out = Vec::with_capacity(sizes.len());
    if total <= 0.0 || area.area() <= 0.0 {
        let empty = Rect {
            w: 0.0,
            h: 0.0,
            ..area
        };
        out.resize(sizes.len(), empty);
        return out;
    }
    let scale = area.area() / total;
    let scaled: Vec<f64> = sizes.iter().map(|s| s.max(0.0) * scale).collect();
    let mut free = area;
    let mut start = 0;
    while start < scaled.len() {
        let side = free.w.min(free.h);
        let mut end = start + 1;
        let mut worst_now = worst(&scaled[start..end], side);
        while end < scaled.len() {
            let next = worst(&scaled[start..=end], side);
            if next > worst_now {
                break;
            }
            worst_now = next;
            end += 1;
        }
        free = lay_row(&scaled[start..end], free, &mut out);
        start = end;
    }
    out
}

/// The worst aspect ratio of `row` laid along a side of length `side`.
fn worst(row: &[f64], side: f64) -> f64 {
    let sum: f64 = row.iter().sum();
    let max = row.iter().copied().fold(0.0, f64::max);
    let min = row.iter().copied().fold(f64::INFINITY, f64::min);
    if sum <= 0.0 || min <= 0.0 || side <= 0.0 {
        // Empty tiles do not make a row worse.
        return if sum <= 0.0 { 0.0 } else { f64::INFINITY };
    }
    let s2 = side * side;
    (s2 * max / (sum * sum)).max(sum * sum / (s2 * min))
}

/// Places `row` along the shorter side of `free` and returns what is left of it.
fn lay_row(row: &[f64], free: Rect, out: &mut Vec<Rect>) -> Rect {
    let sum: f64 = row.iter().sum();
    if free.w >= free.h {
        // A column at the left.
        let w = if free.h > 0.0 { sum / free.h } else { 0.0 };
        let mut y = free.y;
        for a in row {
            let h = if w > 0.0 { a / w } else { 0.0 };
            out.push(Rect { x: free.x, y, w, h });
            y += h;
        }
        Rect {
            x: free.x + w,
            w: (free.w - w).max(0.0),
            ..free
        }
    } else {
        // A row at the top.
        let h = if free.w > 0.0 { sum / free.w } else { 0.0 };
        let mut x = free.x;
        for a in row {
            let w = if h > 0.0 { a / h } else { 0.0 };
            out.push(Rect { x, y: free.y, w, h });
            x += w;
        }
        Rect {
            y: free.y + h,
            h: (free.h - h).max(0.0),
            ..free
        }
    }
}

/// A node of the tree to lay out: a group (with children) or a leaf. `id` is the caller's,
/// unique in the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub size: u64,
    pub id: usize,
    pub children: Vec<Node>,
}

/// A tile: where node `id` went, at which depth (the root's children are at 0), and, for a
/// group, the strip at its top for its name (none when too small) and the rectangle its
/// children fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub id: usize,
    pub depth: usize,
    pub rect: Rect,
    pub group: bool,
    pub header: Option<Rect>,
    pub inner: Rect,
}

/// Spacing of nested tiles.
#[derive(Debug, Clone, Copy)]
pub struct Spacing {
    /// Gap between a group's border and its children (given only to groups at least four
    /// gaps wide and tall).
    pub pad: f64,
    /// Height of a group's name strip, given only to groups at least this wide and three
    /// times as tall.
    pub header: f64,
    pub header_min_width: f64,
}

/// Layout passes: each gives the groups the room their gaps and name strips took in the last.
const ROUNDS: usize = 5;

/// Lays out the children of `root` in `area`, and theirs inside them, depth first: a group's
/// tile comes before its children's. Leaves' areas are in proportion to their sizes across
/// groups too: a group is laid out as larger than its size by what its gaps and name strip
/// take (measured in the previous pass), so that its children get their share.
pub fn layout(root: &Node, area: Rect, spacing: Spacing) -> Vec<Tile> {
    let mut room: HashMap<usize, f64> = HashMap::new();
    let mut tiles = Vec::new();
    for _ in 0..ROUNDS {
        tiles.clear();
        place_children(root, area, 0, spacing, &room, &mut tiles);
        for t in tiles.iter().filter(|t| t.group && t.inner.area() > 0.0) {
            room.insert(t.id, t.rect.area() / t.inner.area());
        }
    }
    tiles
}

/// The size `node` is laid out with: its own for a leaf; its children's, times the room its
/// gaps and strip take, for a group.
fn weight(node: &Node, room: &HashMap<usize, f64>) -> f64 {
    if node.children.is_empty() {
        return node.size as f64;
    }
    let children: f64 = node.children.iter().map(|c| weight(c, room)).sum();
    children * room.get(&node.id).copied().unwrap_or(1.0)
}

fn place_children(
    node: &Node,
    area: Rect,
    depth: usize,
    spacing: Spacing,
    room: &HashMap<usize, f64>,
    out: &mut Vec<Tile>,
) {
    let mut order: Vec<(&Node, f64)> = node.children.iter().map(|c| (c, weight(c, room))).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let sizes: Vec<f64> = order.iter().map(|c| c.1).collect();
    for ((child, _), rect) in order.into_iter().zip(squarify(&sizes, area)) {
        let group = !child.children.is_empty();
        let (header, inner) = if group {
            frame(rect, spacing)
        } else {
            (None, rect)
        };
        out.push(Tile {
            id: child.id,
            depth,
            rect,
            group,
            header,
            inner,
        });
        if group {
            place_children(child, inner, depth + 1, spacing, room, out);
        }
    }
}

/// A group's name strip (if it has room for one) and the rectangle left for its children.
fn frame(rect: Rect, spacing: Spacing) -> (Option<Rect>, Rect) {
    let pad = if rect.w >= 4.0 * spacing.pad && rect.h >= 4.0 * spacing.pad {
        spacing.pad
    } else {
        0.0
    };
    let header =
        (rect.w >= spacing.header_min_width && rect.h >= 3.0 * spacing.header).then(|| Rect {
            h: spacing.header,
            ..rect.inset(pad, 0.0)
        });
    (header, rect.inset(pad, header.map_or(0.0, |h| h.h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: Rect = Rect {
        x: 10.0,
        y: 20.0,
        w: 600.0,
        h: 400.0,
    };

    fn inside(r: &Rect, outer: &Rect) -> bool {
        let e = 1e-6;
        r.x >= outer.x - e
            && r.y >= outer.y - e
            && r.x + r.w <= outer.x + outer.w + e
            && r.y + r.h <= outer.y + outer.h + e
    }

    fn overlap(a: &Rect, b: &Rect) -> f64 {
        let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
        let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
        w.max(0.0) * h.max(0.0)
    }

    /// Areas in proportion to the sizes, every tile inside the area, none overlapping, the
    /// area filled, and tiles close to squares (the point of squarifying).
    #[test]
    fn squarify_fills_the_area_in_proportion() {
        let sizes = [
            600.0, 600.0, 400.0, 400.0, 300.0, 200.0, 100.0, 50.0, 25.0, 1.0,
        ];
        let total: f64 = sizes.iter().sum();
        let rects = squarify(&sizes, AREA);
        assert_eq!(rects.len(), sizes.len());
        for (s, r) in sizes.iter().zip(&rects) {
            let want = s / total * AREA.area();
            assert!(
                (r.area() - want).abs() < 1e-6 * AREA.area(),
                "{r:?} for {s}"
            );
            assert!(inside(r, &AREA), "{r:?}");
        }
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                assert!(overlap(a, b) < 1e-6, "{a:?} overlaps {b:?}");
            }
        }
        let covered: f64 = rects.iter().map(Rect::area).sum();
        assert!((covered - AREA.area()).abs() < 1e-6 * AREA.area());
        // The six largest tiles are at worst 1:3.
        for r in &rects[..6] {
            let ratio = r.w.max(r.h) / r.w.min(r.h);
            assert!(ratio < 3.0, "{r:?}: {ratio}");
        }
    }

    /// The example of Bruls et al.: 6, 6, 4, 3, 2, 2, 1 in a 6 x 4 rectangle. The first row
    /// is the two 6s, stacked at the left (a 3 x 4 block), the 4 beside it at the top.
    #[test]
    fn squarify_matches_the_paper() {
        let sizes = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let r = squarify(
            &sizes,
            Rect {
                x: 0.0,
                y: 0.0,
                w: 6.0,
                h: 4.0,
            },
        );
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(r[0].w, 3.0) && close(r[0].h, 2.0) && close(r[0].x, 0.0));
        assert!(close(r[1].y, 2.0) && close(r[1].w, 3.0));
        assert!(close(r[2].x, 3.0) && close(r[2].y, 0.0));
    }

    #[test]
    fn squarify_handles_nothing_to_lay_out() {
        assert!(squarify(&[], AREA).is_empty());
        let r = squarify(&[0.0, 0.0], AREA);
        assert!(r.iter().all(|r| r.area() == 0.0));
        // A zero among positive sizes gets an empty tile; the others still fill the area.
        let r = squarify(&[3.0, 1.0, 0.0], AREA);
        assert_eq!(r[2].area(), 0.0);
        assert!((r[0].area() + r[1].area() - AREA.area()).abs() < 1e-6);
    }

    fn leaf(id: usize, size: u64) -> Node {
        Node {
            size,
            id,
            children: Vec::new(),
        }
    }

    /// Children sit inside their group, below its name strip; groups come before their
    /// children; leaves of one group share its area in proportion.
    #[test]
    fn layout_nests_groups() {
        let root = Node {
            size: 1000,
            id: 0,
            children: vec![
                Node {
                    size: 700,
                    id: 1,
                    children: vec![leaf(10, 400), leaf(11, 300)],
                },
                leaf(2, 300),
            ],
        };
        let spacing = Spacing {
            pad: 1.0,
            header: 14.0,
            header_min_width: 40.0,
        };
        let tiles = layout(&root, AREA, spacing);
        let ids: Vec<usize> = tiles.iter().map(|t| t.id).collect();
        assert_eq!(ids, [1, 10, 11, 2]);
        let group = &tiles[0];
        assert!(group.group && group.depth == 0);
        let header = group.header.expect("a large group has a name strip");
        assert_eq!(header.h, 14.0);
        for child in &tiles[1..3] {
            assert_eq!(child.depth, 1);
            assert!(inside(&child.rect, &group.rect));
            assert!(child.rect.y >= header.y + header.h - 1e-9);
        }
        let (a, b) = (tiles[1].rect.area(), tiles[2].rect.area());
        assert!((a / b - 4.0 / 3.0).abs() < 1e-9);
        // Across groups too: the leaf of 300 at the top level and the one of 300 inside the
        // group (its name strip and gaps notwithstanding) have the same area, within 1 %.
        let (inside, outside) = (tiles[2].rect.area(), tiles[3].rect.area());
        assert!(
            (inside / outside - 1.0).abs() < 0.01,
            "{inside} vs {outside}"
        );
        assert!(tiles[0].rect.area() > tiles[1].rect.area() + tiles[2].rect.area());
    }

    /// Many groups two deep, with strips and gaps: every leaf's area per unit of size is the
    /// same within 3 %, and the leaves fill their groups.
    #[test]
    fn layout_keeps_areas_comparable_across_groups() {
        let mut id = 0;
        let mut next = || {
            id += 1;
            id
        };
        let mut groups = Vec::new();
        for g in 0..6u64 {
            let dirs: Vec<Node> = (0..4u64)
                .map(|d| {
                    let leaves: Vec<Node> = (1..=5u64)
                        .map(|l| leaf(next(), (g + 1) * 100 + d * 37 + l * l * 11))
                        .collect();
                    Node {
                        size: leaves.iter().map(|l| l.size).sum(),
                        id: next(),
                        children: leaves,
                    }
                })
                .collect();
            groups.push(Node {
                size: dirs.iter().map(|d| d.size).sum(),
                id: next(),
                children: dirs,
            });
        }
        let root = Node {
            size: groups.iter().map(|g| g.size).sum(),
            id: 0,
            children: groups,
        };
        let sizes: HashMap<usize, u64> = leaves_of(&root).into_iter().collect();
        let spacing = Spacing {
            pad: 1.5,
            header: 15.0,
            header_min_width: 48.0,
        };
        let tiles = layout(&root, AREA, spacing);
        let per_unit: Vec<f64> = tiles
            .iter()
            .filter(|t| !t.group)
            .map(|t| t.rect.area() / sizes[&t.id] as f64)
            .collect();
        assert_eq!(per_unit.len(), 6 * 4 * 5);
        let (lo, hi) = per_unit
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(hi / lo < 1.03, "{lo} .. {hi}");
        assert!(tiles.iter().any(|t| t.header.is_some()));
    }

    fn leaves_of(node: &Node) -> Vec<(usize, u64)> {
        if node.children.is_empty() {
            return vec![(node.id, node.size)];
        }
        node.children.iter().flat_map(leaves_of).collect()
    }
}
