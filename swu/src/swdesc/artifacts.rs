//! Which artifacts a sw-description describes, in every layout SWUpdate supports.
//!
//! SWUpdate looks each section (`images`, `files`, `scripts`, `bootenv`/`uboot`) up under the
//! first existing prefix of `software.<board>.<set>.<mode>`, `software.<set>.<mode>`,
//! `software.<board>`, `software` (sbabic/swupdate `parser/parser.c`, `find_node_and_path`).
//! Which board and collection a device selects is not known when a release is built, so the
//! inventory walks every group up to three levels below `software` and reports each section
//! under every prefix it is reachable from.
//!
//! Links (`ref = "#./../other"`) are followed as SWUpdate does (`set_find_path`): on the last
//! node of a prefix, on a section, and on list entries (whose target list is spliced in); `.`
//! is the parent of the node holding the link, a first component other than `.`/`..` makes it
//! absolute, chains stop after 10 hops.

use std::ops::Range;

use super::tree::{Group, Node, Value};
use super::{Error, SwDescription};

/// Link hops SWUpdate follows before giving up (`MAX_LINKS_DEPTH`).
const MAX_LINK_HOPS: usize = 10;
/// Longest node path SWUpdate builds (`MAX_PARSED_NODES`).
const MAX_PATH_NODES: usize = 20;

/// The sections that carry artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Images,
    Files,
    Scripts,
    /// `bootenv` (or its older name `uboot`): name/value pairs, or a bootloader script file.
    Bootenv,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Images => "images",
            Section::Files => "files",
            Section::Scripts => "scripts",
            Section::Bootenv => "bootenv",
        }
    }

    /// The `type` SWUpdate assumes when an entry gives none.
    fn default_type(self, entry: &Group) -> Option<&'static str> {
        match self {
            Section::Images if entry.get("volume").is_some() => Some("ubivol"),
            Section::Images if entry.get("device").is_some() => Some("raw"),
            Section::Images => None,
            Section::Files => Some("rawfile"),
            Section::Scripts => Some("lua"),
            Section::Bootenv => None,
        }
    }
}

/// The `compressed` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip: `compressed = "zlib"`, or the deprecated `compressed = true`.
    Zlib {
        boolean_form: bool,
    },
    Zstd,
    /// A string SWUpdate 2022.12 does not know (newer versions know "xz" and "lz4").
    Other(String),
}

impl Compression {
    pub fn is_compressed(&self) -> bool {
        !matches!(self, Compression::None)
    }

    /// The value as SWUpdate names it.
    pub fn label(&self) -> &str {
        match self {
            Compression::None => "none",
            Compression::Zlib { .. } => "zlib",
            Compression::Zstd => "zstd",
            Compression::Other(s) => s,
        }
    }
}

/// One artifact entry (an element of `images`, `files`, `scripts`, or a `bootenv` script).
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub section: Section,
    /// Every path under which SWUpdate can reach this entry, e.g.
    /// `software.myboard.stable.main.images[0]` (more than one when links share it).
    pub selections: Vec<String>,
    /// The cpio member it names; `None` means SWUpdate skips the entry.
    pub filename: Option<String>,
    /// `type` as written.
    pub kind: Option<String>,
    /// `type` as SWUpdate resolves it (with the section's default).
    pub effective_kind: Option<String>,
    /// `sha256` as written (hex).
    pub sha256: Option<String>,
    pub compressed: Compression,
    pub encrypted: bool,
    pub installed_directly: bool,
    pub device: Option<String>,
    pub path: Option<String>,
    pub size: Option<i64>,
    /// Byte range of the entry's `{ ... }` in the text: its identity for edits.
    pub entry_span: Range<usize>,
    /// 1-based position of the entry.
    pub line: usize,
    pub column: usize,
}

/// A `bootenv` name/value pair.
#[derive(Debug, Clone, PartialEq)]
pub struct BootenvEntry {
    pub name: String,
    pub value: String,
    pub selections: Vec<String>,
}

/// Everything [`SwDescription::inventory`] finds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Unique entries, in text order.
    pub artifacts: Vec<Artifact>,
    pub bootenv: Vec<BootenvEntry>,
    /// Things SWUpdate would silently ignore but a user likely did not mean (dangling links on
    /// prefixes, sections of the wrong type).
    pub warnings: Vec<String>,
}

impl Inventory {
    /// Entries that name a cpio member.
    pub fn with_files(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter().filter(|a| a.filename.is_some())
    }
}

pub(super) fn collect(doc: &SwDescription) -> Result<Inventory, Error> {
    let mut c = Collector {
        doc,
        inv: Inventory::default(),
    };
    let software = vec!["software".to_string()];
    c.walk_prefix(&software, 0)?;
    c.inv.artifacts.sort_by_key(|a| a.entry_span.start);
    Ok(c.inv)
}

struct Collector<'d> {
    doc: &'d SwDescription,
    inv: Inventory,
}

/// Looks a node up by names from the root, without following links on the way (as
/// libconfig's `config_lookup` does).
fn lookup<'n>(root: &'n Node, path: &[String]) -> Option<&'n Node> {
    path.iter().try_fold(root, |node, name| {
        node.value.as_group().and_then(|g| g.get_value(name))
    })
}

/// SWUpdate's `set_find_path`: the path a link in the node at `path` points to.
fn link_target(path: &[String], link: &str) -> Option<Vec<String>> {
    let rest = link.strip_prefix('#')?;
    if link.len() < 3 {
        return None;
    }
    let mut nodes: Vec<String> = path[..path.len().saturating_sub(1)].to_vec();
    for (i, token) in rest.split('/').filter(|t| !t.is_empty()).enumerate() {
        match token {
            ".." => {
                nodes.pop()?;
            }
            "." => {}
            name => {
                if i == 0 {
                    nodes.clear();
                }
                nodes.push(name.to_string());
            }
        }
        if nodes.len() >= MAX_PATH_NODES {
            return None;
        }
    }
    Some(nodes)
}

impl<'d> Collector<'d> {
    fn root(&self) -> &'d Node {
        self.doc.root()
    }

    /// `find_root`: the node at `path`, following a link if that node is a group holding a
    /// string `ref`. Returns the resolved path and node, or `None` if it does not resolve.
    fn resolve(&self, path: &[String]) -> Option<(Vec<String>, &'d Node)> {
        let mut path = path.to_vec();
        for _ in 0..MAX_LINK_HOPS {
            let node = lookup(self.root(), &path)?;
            let link = node
                .value
                .as_group()
                .and_then(|g| g.get_value("ref"))
                .and_then(|r| r.value.as_str());
            match link {
                Some(link) => path = link_target(&path, link)?,
                None => return Some((path, node)),
            }
        }
        None
    }

    /// Collects the sections under the prefix at `prefix` (depth 0 = `software`), then recurses
    /// into child groups up to `<board>.<set>.<mode>`.
    fn walk_prefix(&mut self, prefix: &[String], depth: usize) -> Result<(), Error> {
        let label = prefix.join(".");
        match self.resolve(prefix) {
            Some((resolved, node)) if node.value.as_group().is_some() => {
                self.collect_sections(&resolved, &label)?
            }
            Some(_) => {}
            None => self.inv.warnings.push(format!(
                "{label}: link does not resolve; SWUpdate ignores this selection"
            )),
        }
        if depth == 3 {
            return Ok(());
        }
        // Descend by name without following links: SWUpdate looks prefixes up as whole paths.
        let Some(group) = lookup(self.root(), prefix).and_then(|n| n.value.as_group()) else {
            return Ok(());
        };
        for setting in &group.settings {
            let is_section = matches!(
                setting.name.as_str(),
                "images" | "files" | "scripts" | "bootenv" | "uboot" | "partitions" | "vars"
            );
            if !is_section && setting.value.value.as_group().is_some() && setting.name != "ref" {
                let mut child = prefix.to_vec();
                child.push(setting.name.clone());
                self.walk_prefix(&child, depth + 1)?;
            }
        }
        Ok(())
    }

    fn collect_sections(&mut self, resolved: &[String], label: &str) -> Result<(), Error> {
        for (section, names) in [
            (Section::Images, &["images"][..]),
            (Section::Files, &["files"]),
            (Section::Scripts, &["scripts"]),
            (Section::Bootenv, &["bootenv", "uboot"]),
        ] {
            // SWUpdate takes the first name that exists (bootenv before uboot).
            for name in names {
                let mut path = resolved.to_vec();
                path.push(name.to_string());
                if lookup(self.root(), &path).is_none() {
                    continue;
                }
                let section_label = format!("{label}.{name}");
                match self.resolve(&path) {
                    Some((list_path, node)) => match node.value.as_elements() {
                        Some(items) => {
                            self.collect_entries(section, &list_path, items, &section_label, 0)?
                        }
                        None => self.inv.warnings.push(format!(
                            "{section_label} is a {}, not a list; SWUpdate finds no entries in it",
                            node.value.type_name()
                        )),
                    },
                    None => self.inv.warnings.push(format!(
                        "{section_label}: link does not resolve; SWUpdate ignores this section"
                    )),
                }
                break;
            }
        }
        Ok(())
    }

    fn collect_entries(
        &mut self,
        section: Section,
        list_path: &[String],
        items: &'d [Node],
        label: &str,
        hops: usize,
    ) -> Result<(), Error> {
        for (i, item) in items.iter().enumerate() {
            let selection = format!("{label}[{i}]");
            let Some(entry) = item.value.as_group() else {
                return Err(self.doc.structure_error(
                    item.span.start,
                    format!(
                        "{selection} is a {}, expected a group",
                        item.value.type_name()
                    ),
                ));
            };
            if let Some(link) = entry.get_value("ref") {
                // A linked entry: the target list's entries stand in its place.
                let target = link.value.as_str().and_then(|l| link_target(list_path, l));
                let resolved = target.as_deref().and_then(|t| self.resolve(t));
                let Some((target_path, node)) = resolved.filter(|_| hops < MAX_LINK_HOPS) else {
                    return Err(self.doc.structure_error(
                        link.span.start,
                        format!("{selection}: link does not resolve to a list"),
                    ));
                };
                let Some(target_items) = node.value.as_elements() else {
                    return Err(self.doc.structure_error(
                        link.span.start,
                        format!(
                            "{selection}: link points to a {}, expected a list",
                            node.value.type_name()
                        ),
                    ));
                };
                self.collect_entries(section, &target_path, target_items, &selection, hops + 1)?;
                continue;
            }
            self.add_entry(section, entry, item, selection)?;
        }
        Ok(())
    }

    fn add_entry(
        &mut self,
        section: Section,
        entry: &Group,
        node: &Node,
        selection: String,
    ) -> Result<(), Error> {
        let string = |key: &str| -> Result<Option<String>, Error> {
            match entry.get_value(key) {
                None => Ok(None),
                Some(Node {
                    value: Value::Str(s),
                    ..
                }) => Ok(Some(s.clone())),
                Some(other) => Err(self.doc.structure_error(
                    other.span.start,
                    format!(
                        "{selection}: \"{key}\" must be a string, found {}",
                        other.value.type_name()
                    ),
                )),
            }
        };
        let boolean = |key: &str| -> Result<bool, Error> {
            match entry.get_value(key).map(|n| (&n.value, n.span.start)) {
                None => Ok(false),
                Some((Value::Bool(b), _)) => Ok(*b),
                Some((Value::Int(i), _)) => Ok(*i != 0),
                Some((other, at)) => Err(self.doc.structure_error(
                    at,
                    format!(
                        "{selection}: \"{key}\" must be a boolean, found {}",
                        other.type_name()
                    ),
                )),
            }
        };

        if section == Section::Bootenv && entry.get("filename").is_none() {
            let name = string("name")?.unwrap_or_default();
            let value = string("value")?.unwrap_or_default();
            match self
                .inv
                .bootenv
                .iter_mut()
                .find(|b| b.name == name && b.value == value)
            {
                Some(b) => b.selections.push(selection),
                None => self.inv.bootenv.push(BootenvEntry {
                    name,
                    value,
                    selections: vec![selection],
                }),
            }
            return Ok(());
        }

        if let Some(existing) = self
            .inv
            .artifacts
            .iter_mut()
            .find(|a| a.entry_span == node.span)
        {
            existing.selections.push(selection);
            return Ok(());
        }

        let compressed = match entry.get_value("compressed") {
            None => Compression::None,
            Some(n) => match &n.value {
                Value::Str(s) if s == "zlib" => Compression::Zlib {
                    boolean_form: false,
                },
                Value::Str(s) if s == "zstd" => Compression::Zstd,
                Value::Str(s) => Compression::Other(s.clone()),
                Value::Bool(true) => Compression::Zlib { boolean_form: true },
                Value::Int(i) if *i != 0 => Compression::Zlib { boolean_form: true },
                Value::Bool(false) | Value::Int(_) => Compression::None,
                other => {
                    return Err(self.doc.structure_error(
                        n.span.start,
                        format!(
                            "{selection}: \"compressed\" must be a string or boolean, found {}",
                            other.type_name()
                        ),
                    ))
                }
            },
        };
        let sha256 = string("sha256")?;
        let kind = string("type")?;
        let size = match entry.get_value("size") {
            None => None,
            Some(Node {
                value: Value::Int(i),
                ..
            }) => Some(*i),
            Some(n) => {
                return Err(self.doc.structure_error(
                    n.span.start,
                    format!("{selection}: \"size\" must be an integer"),
                ))
            }
        };
        let (line, column) = self.doc.position(node.span.start);
        self.inv.artifacts.push(Artifact {
            section,
            filename: string("filename")?,
            effective_kind: kind
                .clone()
                .or_else(|| section.default_type(entry).map(str::to_string)),
            kind,
            sha256,
            compressed,
            encrypted: boolean("encrypted")?,
            installed_directly: boolean("installed-directly")?,
            device: string("device")?,
            path: string("path")?,
            size,
            entry_span: node.span.clone(),
            line,
            column,
            selections: vec![selection],
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn link_paths_follow_swupdate() {
        let base = p(&["software", "pc", "stable", "common", "images"]);
        assert_eq!(
            link_target(&base, "#./../trythis"),
            Some(p(&["software", "pc", "stable", "trythis"]))
        );
        assert_eq!(
            link_target(&base, "#/software/x"),
            Some(p(&["software", "x"]))
        );
        assert_eq!(link_target(&base, "./x"), None);
        assert_eq!(link_target(&p(&["software"]), "#./../../x"), None);
    }
}
