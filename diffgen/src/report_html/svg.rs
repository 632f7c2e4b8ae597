//! The treemap of a [`Page`] as inline SVG: the parts' groups become nested tiles (laid out by
//! [`treemap`]), each leaf a rectangle coloured by its encoding with a `<title>` tooltip (what,
//! encoding, changed and delta bytes). Parts too small to see are merged, per group, into one
//! tile that says how many they are, so that the page stays small for deltas with thousands
//! of changed files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::page::{grouped, human, percent, Encoding, Leaf, Page};
use super::render::escape;
use super::treemap::{self, Node, Rect, Spacing, Tile};

/// Size of the drawing in SVG units (the page scales it to its width).
pub const WIDTH: f64 = 1200.0;
pub const HEIGHT: f64 = 640.0;
/// Parts below this area (in SVG units squared) are merged with the group's other small parts.
const MIN_TILE: f64 = 100.0;
const SPACING: Spacing = Spacing {
    pad: 1.5,
    header: 15.0,
    header_min_width: 48.0,
};
/// Width of a character of the labels, roughly (11 px sans-serif).
const CHAR_WIDTH: f64 = 6.2;

/// What a tile stands for.
enum Entry<'p> {
    Group {
        name: String,
        size: u64,
    },
    Leaf(&'p Leaf),
    /// Small parts of one group, merged.
    Merged {
        parts: u64,
        delta: u64,
        changed: u64,
        by_encoding: BTreeMap<Encoding, u64>,
    },
}

/// A group of the tree being built: its subgroups by name and its leaves.
#[derive(Default)]
struct Group<'p> {
    size: u64,
    groups: BTreeMap<&'p str, Group<'p>>,
    leaves: Vec<&'p Leaf>,
}

/// The treemap of `page`'s parts, as an `<svg>` element.
pub fn treemap(page: &Page) -> String {
    let mut root = Group::default();
    for leaf in page.leaves.iter().filter(|l| l.delta > 0) {
        let mut g = &mut root;
        g.size += leaf.delta;
        for name in &leaf.group {
            g = g.groups.entry(name.as_str()).or_default();
            g.size += leaf.delta;
        }
        g.leaves.push(leaf);
    }
    let scale = WIDTH * HEIGHT / page.total.max(root.size).max(1) as f64;
    let mut entries = Vec::new();
    let node = build(&root, String::new(), scale, &mut entries);
    let area = Rect {
        x: 0.0,
        y: 0.0,
        w: WIDTH,
        h: HEIGHT * (root.size as f64 / page.total.max(root.size).max(1) as f64),
    };
    let mut svg = format!(
        "<svg class=\"map\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"treemap of the delta's bytes\">"
    );
    for tile in treemap::layout(&node, area, SPACING) {
        draw(&mut svg, &tile, &entries[tile.id], page.total);
    }
    svg.push_str("</svg>");
    svg
}

/// The node of group `g` (named `name`), its entries pushed to `entries`; children smaller
/// than [`MIN_TILE`] at `scale` are merged.
fn build<'p>(g: &Group<'p>, name: String, scale: f64, entries: &mut Vec<Entry<'p>>) -> Node {
    let id = entries.len();
    entries.push(Entry::Group { name, size: g.size });
    let mut children = Vec::new();
    let mut small: Vec<&'p Leaf> = Vec::new();
    for (sub_name, sub) in &g.groups {
        if (sub.size as f64) * scale < MIN_TILE {
            collect(sub, &mut small);
        } else {
            children.push(build(sub, sub_name.to_string(), scale, entries));
        }
    }
    for leaf in &g.leaves {
        if (leaf.delta as f64) * scale < MIN_TILE {
            small.push(leaf);
        } else {
            children.push(leaf_node(Entry::Leaf(leaf), leaf.delta, entries));
        }
    }
    match small.as_slice() {
        [] => {}
        [one] => children.push(leaf_node(Entry::Leaf(one), one.delta, entries)),
        many => {
            let mut by_encoding = BTreeMap::new();
            for l in many {
                *by_encoding.entry(l.encoding).or_default() += l.delta;
            }
            let delta = many.iter().map(|l| l.delta).sum();
            let merged = Entry::Merged {
                parts: many.len() as u64,
                delta,
                changed: many.iter().filter_map(|l| l.changed).sum(),
                by_encoding,
            };
            children.push(leaf_node(merged, delta, entries));
        }
    }
    Node {
        size: g.size,
        id,
        children,
    }
}

fn collect<'p>(g: &Group<'p>, out: &mut Vec<&'p Leaf>) {
    out.extend(&g.leaves);
    for sub in g.groups.values() {
        collect(sub, out);
    }
}

fn leaf_node<'p>(entry: Entry<'p>, size: u64, entries: &mut Vec<Entry<'p>>) -> Node {
    entries.push(entry);
    Node {
        size,
        id: entries.len() - 1,
        children: Vec::new(),
    }
}

fn draw(svg: &mut String, tile: &Tile, entry: &Entry, total: u64) {
    // Every tile is drawn, however thin: the DOM holds all the bytes.
    let r = tile.rect;
    let coords = format!(
        "x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"",
        r.x, r.y, r.w, r.h
    );
    match entry {
        Entry::Group { name, size } => {
            let tip = format!(
                "{name}: {} bytes, {} of the delta",
                grouped(*size),
                percent(*size, total)
            );
            let _ = write!(
                svg,
                "<rect class=\"g d{}\" {coords}><title>{}</title></rect>",
                tile.depth.min(2),
                escape(&tip)
            );
            if let Some(h) = tile.header {
                let text = format!("{name} · {} · {}", human(*size), percent(*size, total));
                label(svg, h, &text, "h", 11.0);
            }
        }
        Entry::Leaf(leaf) => {
            let changed = leaf.changed.map_or(String::new(), |c| {
                format!("\nchanged: {} bytes", grouped(c))
            });
            // A file's member is the group it is drawn in.
            let place = if leaf.place.is_empty() || leaf.name.starts_with('/') {
                String::new()
            } else {
                format!(" ({})", leaf.place)
            };
            let tip = format!(
                "{}{place}\nencoding: {}{changed}\ndelta: {} bytes ({})",
                leaf.name,
                leaf.how,
                grouped(leaf.delta),
                percent(leaf.delta, total)
            );
            tile_rect(svg, &coords, leaf.encoding, leaf.delta, &tip);
            let short = leaf.name.rsplit('/').next().unwrap_or(&leaf.name);
            tile_labels(svg, r, short, leaf.delta, leaf.encoding);
        }
        Entry::Merged {
            parts,
            delta,
            changed,
            by_encoding,
        } => {
            let main = by_encoding
                .iter()
                .max_by_key(|(_, b)| **b)
                .map_or(Encoding::Other, |(e, _)| *e);
            let mix: Vec<String> = by_encoding
                .iter()
                .rev()
                .map(|(e, b)| format!("{}: {} bytes", e.label(), grouped(*b)))
                .collect();
            let tip = format!(
                "{parts} smaller parts (coloured by the largest share)\n{}\nchanged: {} bytes\ndelta: {} bytes ({})",
                mix.join("\n"),
                grouped(*changed),
                grouped(*delta),
                percent(*delta, total)
            );
            tile_rect(svg, &coords, main, *delta, &tip);
            tile_labels(svg, r, &format!("{parts} smaller parts"), *delta, main);
        }
    }
}

fn tile_rect(svg: &mut String, coords: &str, encoding: Encoding, delta: u64, tip: &str) {
    let _ = write!(
        svg,
        "<rect class=\"t {}\" {coords} data-bytes=\"{delta}\"><title>{}</title></rect>",
        encoding.class(),
        escape(tip)
    );
}

/// A tile's name and size, where they fit.
fn tile_labels(svg: &mut String, r: Rect, name: &str, delta: u64, encoding: Encoding) {
    let class = if encoding.colour().1 { "l dark" } else { "l" };
    if r.w >= 36.0 && r.h >= 15.0 {
        label(svg, Rect { h: 14.0, ..r }, name, class, 11.0);
    }
    if r.w >= 36.0 && r.h >= 29.0 {
        label(
            svg,
            Rect {
                y: r.y + 13.0,
                h: 14.0,
                ..r
            },
            &human(delta),
            class,
            11.0,
        );
    }
}

/// `text` at the top left of `r`, cut to fit its width.
fn label(svg: &mut String, r: Rect, text: &str, class: &str, size: f64) {
    let fits = ((r.w - 6.0) / CHAR_WIDTH).floor().max(0.0) as usize;
    if fits < 3 {
        return;
    }
    let count = text.chars().count();
    let shown: String = if count <= fits {
        text.to_string()
    } else {
        text.chars().take(fits - 1).collect::<String>() + "…"
    };
    let _ = write!(
        svg,
        "<text class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
        r.x + 3.0,
        r.y + size,
        escape(&shown)
    );
}
