//! In-place edits of artifact settings: replace the bytes of one value, or insert a new
//! setting after the last one of its group in the style of its neighbours. Every other byte of
//! the text is kept, and the result is parsed again before it is handed out.

use std::ops::Range;

use super::tree::{Group, Node, Syntax, Value};
use super::{Artifact, SwDescription};

/// Errors applying edits.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("artifact entry at byte {0} not found in this sw-description")]
    NoSuchEntry(usize),
    #[error("two edits overlap at byte {0}")]
    Overlap(usize),
    #[error("edited sw-description no longer parses: {0}")]
    Reparse(#[from] super::Error),
}

#[derive(Debug)]
struct Edit {
    range: Range<usize>,
    text: String,
}

/// Collects edits against one [`SwDescription`] and applies them together.
pub struct Editor<'a> {
    doc: &'a SwDescription,
    edits: Vec<Edit>,
}

impl<'a> Editor<'a> {
    pub(super) fn new(doc: &'a SwDescription) -> Self {
        Editor {
            doc,
            edits: Vec::new(),
        }
    }

    /// Sets `key` of the artifact's entry to a string: replaces the existing value (whatever
    /// its type, e.g. `compressed = true` becomes `compressed = "zstd"`) or adds the setting.
    pub fn set_string(
        &mut self,
        artifact: &Artifact,
        key: &str,
        value: &str,
    ) -> Result<(), EditError> {
        let literal = string_literal(self.doc.syntax(), value);
        self.set_literal(artifact.entry_span.clone(), key, literal)
    }

    /// Sets `key` of the group whose node spans `entry_span` to the literal text `literal`.
    fn set_literal(
        &mut self,
        entry_span: Range<usize>,
        key: &str,
        literal: String,
    ) -> Result<(), EditError> {
        let group = find_group(self.doc.root(), &entry_span)
            .ok_or(EditError::NoSuchEntry(entry_span.start))?;
        match group.get(key) {
            Some(setting) => self.edits.push(Edit {
                range: setting.value.span.clone(),
                text: literal,
            }),
            None => {
                let (at, text) =
                    insertion(self.doc.text(), self.doc.syntax(), group, key, &literal);
                self.edits.push(Edit {
                    range: at..at,
                    text,
                })
            }
        }
        Ok(())
    }

    /// Applies all edits and parses the result.
    pub fn finish(mut self) -> Result<SwDescription, EditError> {
        // Stable sort: inserts at the same offset stay in the order they were made.
        self.edits.sort_by_key(|e| (e.range.start, e.range.end));
        let text = self.doc.text();
        let mut out = String::with_capacity(text.len() + 256);
        let mut cursor = 0;
        for e in &self.edits {
            if e.range.start < cursor {
                return Err(EditError::Overlap(e.range.start));
            }
            out.push_str(&text[cursor..e.range.start]);
            out.push_str(&e.text);
            cursor = e.range.end;
        }
        out.push_str(&text[cursor..]);
        Ok(SwDescription::parse(out.as_bytes())?)
    }
}

/// The group node whose span is exactly `span`.
fn find_group<'n>(node: &'n Node, span: &Range<usize>) -> Option<&'n Group> {
    if node.span.start > span.start || node.span.end < span.end {
        return None;
    }
    match &node.value {
        Value::Group(g) if node.span == *span => Some(g),
        Value::Group(g) => g.settings.iter().find_map(|s| find_group(&s.value, span)),
        Value::List(items) | Value::Array(items) => items.iter().find_map(|n| find_group(n, span)),
        _ => None,
    }
}

/// Where and what to insert to add `key = literal` to `group`, imitating the last setting.
fn insertion(
    text: &str,
    syntax: Syntax,
    group: &Group,
    key: &str,
    literal: &str,
) -> (usize, String) {
    let name = match syntax {
        Syntax::Libconfig => key.to_string(),
        Syntax::Json => string_literal(Syntax::Json, key),
    };
    let Some(last) = group.settings.last() else {
        // Empty group: `{}` becomes `{ key = value; }`.
        let setting = match syntax {
            Syntax::Libconfig => format!(" {name} = {literal}; "),
            Syntax::Json => format!(" {name}: {literal} "),
        };
        return (group.body_start, setting);
    };
    // The separator exactly as the last setting wrote it (" = ", ": ", ...), unless a comment
    // hides in it.
    let sep = &text[last.name_span.end..last.value.span.start];
    let sep = if sep.contains(['#', '/']) || sep.contains('\n') {
        match syntax {
            Syntax::Libconfig => " = ",
            Syntax::Json => ": ",
        }
    } else {
        sep
    };
    // On its own line with the same indentation if the last setting starts a line; otherwise
    // on the same line after a space.
    let line_start = text[..last.name_span.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let prefix = &text[line_start..last.name_span.start];
    let gap = if prefix.chars().all(|c| c == ' ' || c == '\t') && line_start > 0 {
        let newline = if text[..line_start].ends_with("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        format!("{newline}{prefix}")
    } else {
        " ".to_string()
    };
    match syntax {
        Syntax::Libconfig => {
            let terminator = last.terminator.map_or(';', |t| text.as_bytes()[t] as char);
            (last.end(), format!("{gap}{name}{sep}{literal}{terminator}"))
        }
        Syntax::Json => (last.value.span.end, format!(",{gap}{name}{sep}{literal}")),
    }
}

/// A string literal in the document's syntax.
pub fn string_literal(syntax: Syntax, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => match syntax {
                Syntax::Libconfig => out.push_str(&format!("\\x{:02x}", c as u32)),
                Syntax::Json => out.push_str(&format!("\\u{:04x}", c as u32)),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
