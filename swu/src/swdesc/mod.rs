//! sw-description: parsing (libconfig or JSON, as SWUpdate tries them), the artifacts it
//! describes, and lossless in-place edits of artifact attributes.
//!
//! The text is never re-serialised. Each edit replaces the bytes of one value or inserts one
//! setting next to its siblings in their own style, so comments, formatting and order survive
//! (DiffGenTool re-serialises through libconfig and loses them).

mod artifacts;
mod edit;
mod json;
mod libconfig;
mod tree;

pub use artifacts::{Artifact, BootenvEntry, Compression, Inventory, Section};
pub use edit::{EditError, Editor};
pub use tree::{line_column, Group, Node, ParseError, Setting, Syntax, Value, MAX_DEPTH};

/// Errors reading a sw-description.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sw-description is not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
    #[error(transparent)]
    Syntax(#[from] ParseError),
    #[error("sw-description has no \"software\" group (line {line}, column {column})")]
    NoSoftware { line: usize, column: usize },
    #[error("{message} (line {line}, column {column})")]
    Structure {
        message: String,
        line: usize,
        column: usize,
    },
}

/// A parsed sw-description: its text and the tree with spans into it.
#[derive(Debug, Clone)]
pub struct SwDescription {
    text: String,
    syntax: Syntax,
    root: Node,
}

impl SwDescription {
    /// Parses like SWUpdate: libconfig first, then JSON. When both fail the error of the syntax
    /// the text looks like is reported (JSON if it starts with `{`).
    pub fn parse(bytes: &[u8]) -> Result<SwDescription, Error> {
        let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8(e.valid_up_to()))?;
        let (syntax, root) = match libconfig::parse(text) {
            Ok(root) => (Syntax::Libconfig, root),
            Err(lc_err) => match json::parse(text) {
                Ok(root) => (Syntax::Json, root),
                Err(json_err) => {
                    let looks_json = text.trim_start().starts_with('{');
                    return Err(Error::Syntax(if looks_json { json_err } else { lc_err }));
                }
            },
        };
        let doc = SwDescription {
            text: text.to_string(),
            syntax,
            root,
        };
        if doc.software().is_none() {
            let (line, column) = line_column(text, 0);
            return Err(Error::NoSoftware { line, column });
        }
        Ok(doc)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The top-level `software` group.
    pub fn software(&self) -> Option<&Node> {
        self.root
            .value
            .as_group()?
            .get_value("software")
            .filter(|n| n.value.as_group().is_some())
    }

    /// Every artifact and bootenv entry, in every layout (see [`Inventory`]).
    pub fn inventory(&self) -> Result<Inventory, Error> {
        artifacts::collect(self)
    }

    /// Starts a set of in-place edits.
    pub fn editor(&self) -> Editor<'_> {
        Editor::new(self)
    }

    /// 1-based line and column of a byte offset in the text.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_column(&self.text, offset)
    }

    pub(crate) fn structure_error(&self, offset: usize, message: impl Into<String>) -> Error {
        let (line, column) = self.position(offset);
        Error::Structure {
            message: message.into(),
            line,
            column,
        }
    }
}
