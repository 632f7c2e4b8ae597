//! Planning whole files inside a target filesystem: changed gzip files re-created on the
//! device from their text ([`inner_gz`]), changed executables rebuilt with a bsdiff patch
//! ([`inner_patch`]). Each file becomes one item made from its old version; its data in the
//! target content is claimed by slices of that item, so block matching leaves it alone.

use delta::{Item, Recipe};

use super::{
    Basis, Cost, Part, Planner, Segment, HOW_BSDIFF, HOW_EXE, HOW_GZIP, HOW_GZIP_NEW, SEGMENT_LIMIT,
};
use crate::items::item_of;
use crate::reference::{self, Layout, Stretch};
use crate::{inner_gz, inner_patch, Error, PartKind};

impl Planner<'_> {
    /// Plans the changed gzip files of a target filesystem ([`inner_gz`]): each is re-created
    /// on the device from its content, and the contents are compressed together against the
    /// old versions' contents. Returns the ranges of the target content the files now make
    /// (for [`Self::plan_around`]) and the contents still to be made from the new streams.
    #[allow(clippy::type_complexity)]
    pub(crate) fn plan_inner_gz(
        &mut self,
        source: usize,
        files: Vec<inner_gz::InnerGz>,
    ) -> Result<(Vec<(u64, u64, Item)>, Vec<(Item, Vec<Part>)>), Error> {
        let mut claimed = Vec::new();
        let mut pending = Vec::new();
        for f in files {
            let old_len = f.old.as_ref().map_or(0, |(_, c)| c.len());
            let cost = (f.content.len() + old_len) as u64;
            if f.old.is_some() && cost > SEGMENT_LIMIT / 2 {
                continue; // too large for one segment: planned as plain bytes
            }
            let file_item = item_of(&f.bytes);
            let content_item = item_of(&f.content);
            let recipe = match f.recreate {
                inner_gz::Recreate::Zlib(params) => Recipe::ZlibCompression {
                    container: params.container,
                    level: params.level,
                    uncompressed: content_item,
                },
                inner_gz::Recreate::GnuGzip(level) => Recipe::GnuGzipCompression {
                    level,
                    uncompressed: content_item,
                },
            };
            self.builder.add_recipe(file_item, recipe)?;
            self.claim_file(&f.layout, &f.bytes, file_item, &mut claimed)?;
            self.stats.inner_gz_files += 1;
            self.stats.inner_gz_bytes += f.bytes.len() as u64;
            if matches!(f.recreate, inner_gz::Recreate::GnuGzip(_)) {
                self.stats.inner_gz_gnu_files += 1;
            }
            // Whether the content is made already: by another file's plan (the same text
            // twice), or as the old text in a basis (only the compression changed).
            let made = |planner: &Self, pending: &[(Item, Vec<Part>)]| {
                pending.iter().any(|(i, _)| *i == content_item)
                    || planner.segments.iter().any(|s| match &s.basis {
                        Basis::Items(items) => items.iter().any(|(i, _)| *i == content_item),
                        Basis::Source { .. } => false,
                    })
            };
            let Some((old_layout, old_content)) = f.old else {
                // A new file: its text joins the plain new bytes (with the other new files,
                // whose texts often share much).
                if made(self, &pending) {
                    continue;
                }
                let len = f.content.len() as u64;
                let part = self.push_new(&f.content)?;
                self.note_cost((PartKind::File, Some(&f.path)), HOW_GZIP_NEW, 0, len);
                pending.push((content_item, vec![part]));
                continue;
            };
            // The old file, then its content on the device.
            let old_item = self.old_file(source, &old_layout)?;
            let old_content_item = item_of(&old_content);
            self.builder.add_recipe(
                old_content_item,
                Recipe::ZlibDecompression {
                    container: codec::zlib::Container::Gzip,
                    compressed: old_item,
                },
            )?;
            if content_item == old_content_item || made(self, &pending) {
                continue;
            }
            // Its content joins the current gzip-content segment, or starts one.
            let len = f.content.len() as u64;
            let fits = self.segments.last().is_some_and(|s| {
                matches!(s.basis, Basis::Items(_))
                    && s.data.len() as u64 + s.basis_len + cost <= SEGMENT_LIMIT
            });
            if !fits {
                self.segments.push(Segment {
                    data: Vec::new(),
                    basis: Basis::Items(Vec::new()),
                    basis_len: 0,
                    metadata: false,
                });
            }
            let stream = self.segments.len();
            let seg = self.segments.last_mut().expect("just ensured");
            let offset = seg.data.len() as u64;
            seg.data.extend_from_slice(&f.content);
            seg.basis_len += old_content.len() as u64;
            if let Basis::Items(items) = &mut seg.basis {
                items.push((old_content_item, old_content));
            }
            self.stats.new_bytes += len;
            self.note_cost((PartKind::File, Some(&f.path)), HOW_GZIP, stream, len);
            pending.push((
                content_item,
                vec![Part::New {
                    stream,
                    offset,
                    len,
                }],
            ));
        }
        claimed.sort_unstable_by_key(|c| c.0);
        Ok((claimed, pending))
    }

    /// Plans the changed executables that a bsdiff or executable patch makes smaller than
    /// zstd ([`inner_patch`]); returns the ranges of the target content they now make.
    pub(crate) fn plan_inner_patches(
        &mut self,
        source: usize,
        files: Vec<inner_patch::InnerPatch>,
    ) -> Result<Vec<(u64, u64, Item)>, Error> {
        let mut claimed = Vec::new();
        for f in files {
            let old = self.old_file(source, &f.old_layout)?;
            let file_item = item_of(&f.bytes);
            let stored = f.encoding.stored_len();
            let (recipe, how, asset) = match f.encoding {
                inner_patch::Encoding::Bsdiff(patch) => {
                    let patch_item = item_of(&patch);
                    let recipe = Recipe::BspatchDecompression {
                        patch: patch_item,
                        old,
                    };
                    (recipe, HOW_BSDIFF, patch)
                }
                inner_patch::Encoding::Exe(exe) => {
                    let patch_item = item_of(&exe.patch);
                    let frame_item = item_of(&exe.frame);
                    self.builder.add_recipe(
                        patch_item,
                        Recipe::ZstdDecompression {
                            compressed: frame_item,
                            basis: exe.basis.then_some(old),
                        },
                    )?;
                    self.stats.exe_patched_files += 1;
                    let recipe = Recipe::ExeBspatch {
                        patch: patch_item,
                        old,
                    };
                    (recipe, HOW_EXE, exe.frame)
                }
            };
            self.builder.add_recipe(file_item, recipe)?;
            self.claim_file(&f.layout, &f.bytes, file_item, &mut claimed)?;
            self.stats.patched_files += 1;
            self.stats.patched_bytes += f.bytes.len() as u64;
            self.stats.patch_bytes += stored as u64;
            self.stats.patch_saved_bytes += f.zstd_len.saturating_sub(stored) as u64;
            self.stats.new_bytes += f.bytes.len() as u64;
            self.costs.push(Cost {
                member: self.member.clone(),
                path: Some(f.path.clone()),
                kind: PartKind::File,
                how,
                stream: None,
                bytes: f.bytes.len() as u64,
                fixed: stored as u64,
            });
            self.patches.push(asset);
        }
        Ok(claimed)
    }

    /// The item of an old file laid out in source content `source`, with its recipes (its
    /// zeros from `all_zeros`).
    fn old_file(&mut self, source: usize, layout: &Layout) -> Result<Item, Error> {
        let mut parts = Vec::with_capacity(layout.len());
        for stretch in layout {
            parts.push(match *stretch {
                Stretch::Data { offset, len } => self.source_piece(source, offset, len)?,
                Stretch::Zeros(len) => self.zeros(len)?,
            });
        }
        Ok(match parts.as_slice() {
            [one] => *one,
            _ => {
                let bytes = reference::gather_file(self.source_bytes(source), layout);
                let item = item_of(&bytes);
                self.builder.add_recipe(item, Recipe::Chain(parts))?;
                item
            }
        })
    }

    /// Records where a file made as `file_item` sits in the target content: the file itself
    /// when it is one stretch of data, else a slice of it per stretch of data (its zeros are
    /// holes: not in the content).
    fn claim_file(
        &mut self,
        layout: &Layout,
        bytes: &[u8],
        file_item: Item,
        claimed: &mut Vec<(u64, u64, Item)>,
    ) -> Result<(), Error> {
        if let [Stretch::Data { offset, len }] = layout.as_slice() {
            claimed.push((*offset, *len, file_item));
            return Ok(());
        }
        let mut at = 0u64;
        for stretch in layout {
            if let Stretch::Data { offset, len } = *stretch {
                let piece = item_of(&bytes[at as usize..(at + len) as usize]);
                self.builder.add_recipe(
                    piece,
                    Recipe::Slice {
                        offset: at,
                        whole: file_item,
                    },
                )?;
                claimed.push((offset, len, piece));
            }
            at += stretch.size();
        }
        Ok(())
    }
}
