//! The HTML of `report.html`: one self-contained document (inline CSS, the treemaps as inline
//! SVG, a few lines of inline script that sort the tables; no fonts, images or scripts from
//! anywhere), one section per delta: header facts, text, legend, treemap and the table of the
//! parts.

use std::fmt::Write as _;

use super::page::{grouped, percent, Encoding, Page};
use super::svg;

/// Rows of a section's table at most (the treemap shows every part).
pub const TABLE_ROWS: usize = 2000;

const CSS: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1240px;padding:16px 20px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.facts dt{color:#555}dl.facts dd{margin:0;overflow-wrap:anywhere}
ul.insights{margin:10px 0;padding-left:20px}ul.insights li{margin:3px 0}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:10px 0 6px;font-size:13px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:5px}
svg.map{width:100%;height:auto;display:block;background:#f4f4f4;font-size:11px}
svg.map rect.g{fill:none;stroke:#fff;stroke-width:1.5}svg.map rect.g.d0{stroke:#333;stroke-width:1.2}
svg.map rect.t{stroke:#fff;stroke-width:.6}svg.map rect.t:hover{stroke:#000;stroke-width:2}
svg.map text{pointer-events:none;fill:#fff}svg.map text.dark,svg.map text.h{fill:#111}svg.map text.h{font-weight:600}
table.parts{border-collapse:collapse;width:100%;font-size:12.5px;margin-top:6px}
table.parts th{position:sticky;top:0;background:#eee;cursor:pointer;text-align:left;padding:4px 6px;user-select:none}
table.parts th.n,table.parts td:nth-child(n+4){text-align:right;font-variant-numeric:tabular-nums}
table.parts td{padding:2px 6px;border-bottom:1px solid #eee;overflow-wrap:anywhere}
table.parts tr:hover td{background:#fafad2}
.note{color:#555;font-size:13px}footer{margin-top:28px;color:#777;font-size:12px}
";

/// Sorts a table by the clicked column (numbers by value), again in the other direction.
const SCRIPT: &str = "\
document.querySelectorAll('table.parts').forEach(function(t){
t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),num=th.className=='n',up=th.dataset.dir!='up';
function v(r){var s=r.cells[i].textContent;return num?parseFloat(s.replace(/[^0-9.]/g,''))||0:s}
rows.sort(function(x,y){var a=v(x),c=v(y);var d=num?a-c:a.localeCompare(c);return up?d:-d});
th.dataset.dir=up?'up':'down';rows.forEach(function(r){b.appendChild(r)})})})});
";

/// The whole document: `heading`, one section per page, `footer`.
pub fn document(heading: &str, pages: &[Page], footer: &str) -> String {
    let mut css = String::from(CSS);
    for e in Encoding::ALL {
        let _ = writeln!(
            css,
            ".{0}{{fill:{1};background:{1}}}",
            e.class(),
            e.colour().0
        );
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{0}</title><style>\n{css}</style></head><body>\n<h1>{0}</h1>\n",
        escape(heading)
    );
    for (i, page) in pages.iter().enumerate() {
        section(&mut html, i, page);
    }
    let _ = write!(
        html,
        "<footer>{}</footer>\n<script>\n{SCRIPT}</script>\n</body></html>\n",
        escape(footer)
    );
    html
}

fn section(html: &mut String, i: usize, page: &Page) {
    let _ = write!(
        html,
        "<section id=\"delta-{i}\">\n<h2>{}</h2>\n<dl class=\"facts\">",
        escape(&page.title)
    );
    for f in &page.facts {
        let bytes = f
            .bytes
            .map_or(String::new(), |b| format!(" data-bytes=\"{b}\""));
        let _ = write!(
            html,
            "<dt>{}</dt><dd data-fact=\"{}\"{bytes}>{}</dd>",
            escape(f.label),
            escape(f.label),
            escape(&f.value)
        );
    }
    html.push_str("</dl>\n<ul class=\"insights\">");
    for s in &page.insights {
        let _ = write!(html, "<li>{}</li>", escape(s));
    }
    html.push_str("</ul>\n<div class=\"legend\">");
    for e in Encoding::ALL {
        if page.leaves.iter().any(|l| l.encoding == e && l.delta > 0) {
            let _ = write!(
                html,
                "<span><i class=\"sw {}\"></i>{}</span>",
                e.class(),
                escape(e.label())
            );
        }
    }
    html.push_str("</div>\n");
    html.push_str(&svg::treemap(page));
    html.push_str(
        "\n<p class=\"note\">Area: delta bytes. Hover over a tile for its name, encoding, changed bytes and delta bytes; click a column heading to sort.</p>\n",
    );
    table(html, page);
    for c in &page.caveats {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(c));
    }
    html.push_str("</section>\n");
}

fn table(html: &mut String, page: &Page) {
    let _ = writeln!(
        html,
        "<table class=\"parts\"><thead><tr><th>where</th><th>part</th><th>encoding</th>\
         <th class=\"n\">{}</th><th class=\"n\">delta bytes</th><th class=\"n\">% of delta</th></tr></thead><tbody>",
        escape(page.changed_heading)
    );
    for leaf in page.leaves.iter().take(TABLE_ROWS) {
        let changed = leaf.changed.map_or(String::new(), grouped);
        let share = leaf.delta as f64 * 100.0 / page.total.max(1) as f64;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><i class=\"sw {}\"></i>{}</td><td>{changed}</td><td>{}</td><td>{share:.2}</td></tr>",
            escape(&leaf.place),
            escape(&leaf.name),
            leaf.encoding.class(),
            escape(leaf.encoding.label()),
            grouped(leaf.delta)
        );
    }
    html.push_str("</tbody></table>\n");
    if page.leaves.len() > TABLE_ROWS {
        let rest = &page.leaves[TABLE_ROWS..];
        let bytes: u64 = rest.iter().map(|l| l.delta).sum();
        let _ = writeln!(
            html,
            "<p class=\"note\">{} cheaper parts are not listed ({} delta bytes, {}); the treemap includes them.</p>",
            grouped(rest.len() as u64),
            grouped(bytes),
            percent(bytes, page.total)
        );
    }
}

/// `s` with the characters HTML gives a meaning escaped (for text and attribute values).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
