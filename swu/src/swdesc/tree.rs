//! The syntax tree both sw-description parsers produce: libconfig's types (groups, lists,
//! arrays, scalars), each node carrying the byte span of its text so that edits can replace
//! exactly the bytes of one value and leave everything else alone.

use std::fmt;
use std::ops::Range;

/// Which syntax a sw-description is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Libconfig,
    Json,
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syntax::Libconfig => "libconfig",
            Syntax::Json => "JSON",
        })
    }
}

/// A value with the byte range of its text in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Range<usize>,
}

/// Values of the sw-description tree. JSON objects map to groups and JSON arrays to lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `{ name = value; ... }`; the document root is a group without braces in libconfig.
    Group(Group),
    /// `( value, ... )`: heterogeneous.
    List(Vec<Node>),
    /// `[ scalar, ... ]`: homogeneous scalars.
    Array(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// JSON `null` (libconfig has no null).
    Null,
}

impl Value {
    /// Short name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Group(_) => "group",
            Value::List(_) => "list",
            Value::Array(_) => "array",
            Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_group(&self) -> Option<&Group> {
        match self {
            Value::Group(g) => Some(g),
            _ => None,
        }
    }

    /// Elements of a list or array.
    pub fn as_elements(&self) -> Option<&[Node]> {
        match self {
            Value::List(v) | Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// A group's settings plus where new settings can be inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub settings: Vec<Setting>,
    /// Offset just after the opening brace (or 0 for libconfig's brace-less root).
    pub body_start: usize,
    /// Offset of the closing brace (or the end of the text for the root).
    pub body_end: usize,
}

impl Group {
    /// The setting that lookups see for `name`: the last one with that name (json-c keeps the
    /// last duplicate; libconfig rejects duplicates, so there it is the only one).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }

    pub fn get_value(&self, name: &str) -> Option<&Node> {
        self.get(name).map(|s| &s.value)
    }
}

/// `name = value;` inside a group (or `"name": value,` in JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    /// Span of the name as written (including quotes in JSON).
    pub name_span: Range<usize>,
    pub value: Node,
    /// Offset of the `;` or `,` that ends the setting, if there is one.
    pub terminator: Option<usize>,
}

impl Setting {
    /// Offset just past the setting including its terminator.
    pub fn end(&self) -> usize {
        self.terminator.map_or(self.value.span.end, |t| t + 1)
    }
}

/// A syntax error with its position (1-based line and column, counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{syntax} syntax error: {message} (line {line}, column {column})")]
pub struct ParseError {
    pub syntax: Syntax,
    pub message: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl ParseError {
    pub(crate) fn at(
        syntax: Syntax,
        text: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        ParseError {
            syntax,
            message: message.into(),
            offset,
            line,
            column,
        }
    }
}

/// 1-based line and column of a byte offset (columns count characters, not bytes).
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Nesting deeper than this is rejected: no real sw-description comes close, and it keeps the
/// recursive parsers' stack use bounded on hostile input.
pub const MAX_DEPTH: usize = 64;
