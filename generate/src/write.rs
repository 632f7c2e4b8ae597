//! Stage 5, writing: every chain still waiting for the streams' items is finished (parts of a
//! stream become slices of its item), and the delta is written to a temp file next to the
//! output (moved into place only after verification), then read back: the sizes it states are
//! the ones reported.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use delta::{Item, Recipe};
use tempfile::NamedTempFile;

use crate::encode::Encoded;
use crate::inputs::map_file;
use crate::items::{item_of, sha256_of};
use crate::plan::{Part, Pending, Planner};
use crate::{io_at, Error};

/// The delta in its temp file.
pub(crate) struct Written {
    pub file: NamedTempFile,
    _registered: cleanup::Registered,
    pub len: u64,
    pub sha256: [u8; 32],
    /// Each new-bytes stream's (uncompressed, compressed) size, the remainder's included.
    pub stream_sizes: Vec<(u64, u64)>,
}

/// Finishes the chains of `pending` and writes the delta into a temp file beside `output`.
pub(crate) fn write(
    planner: &mut Planner,
    pending: Vec<Pending>,
    new_bytes: &[u8],
    encoded: Encoded,
    output: &Path,
) -> Result<Written, Error> {
    finish_chains(planner, pending, new_bytes, &encoded)?;
    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut tmp, registered) = cleanup::temp_file(&out_dir, ".diffgen-delta-", ".tmp").map_err(
        io_at("cannot create a temp file in the output folder", &out_dir),
    )?;
    let len = {
        let mut w = io::BufWriter::new(tmp.as_file_mut());
        let n = planner.builder.write_to(&mut w)?;
        w.flush().map_err(io_at("cannot write", output))?;
        n
    };
    let sha256 = {
        let m = map_file(tmp.path())?.expect("a delta is never empty");
        sha256_of(&m)
    };
    // Sizes as the written delta states them.
    let (archive, _) = delta::read_path(tmp.path(), &delta::ReadLimits::default())
        .map_err(|e| Error::Verify(format!("the written delta does not read back: {e}")))?;
    let inspection = delta::inspect::inspect(&archive);
    planner.stats.recipes = inspection.recipes as usize;
    let mut stream_sizes = encoded.stream_sizes;
    if let Some(r) = &inspection.remainder_compressed {
        planner.stats.new_compressed_bytes = r.length;
        stream_sizes[0].1 = r.length;
    }
    Ok(Written {
        file: tmp,
        _registered: registered,
        len,
        sha256,
        stream_sizes,
    })
}

/// Adds the recipe of every pending chain: its parts, each an item (a part of a stream is a
/// slice of the stream's item).
fn finish_chains(
    planner: &mut Planner,
    pending: Vec<Pending>,
    new_bytes: &[u8],
    encoded: &Encoded,
) -> Result<(), Error> {
    let stream_items = &encoded.stream_items;
    let stream_bytes = |stream: usize| -> &[u8] {
        if stream == 0 {
            new_bytes
        } else {
            &encoded.segments[stream - 1].data
        }
    };
    for (result, parts) in pending {
        let mut items = Vec::with_capacity(parts.len());
        for part in parts {
            items.push(match part {
                Part::Item(item) => item,
                Part::New {
                    stream,
                    offset,
                    len,
                } if offset == 0 && len == stream_items[stream].length() => stream_items[stream],
                Part::New {
                    stream,
                    offset,
                    len,
                } => {
                    let item =
                        item_of(&stream_bytes(stream)[offset as usize..(offset + len) as usize]);
                    let slice = Recipe::Slice {
                        offset,
                        whole: stream_items[stream],
                    };
                    planner.builder.add_recipe(item, slice)?;
                    item
                }
            });
        }
        items.retain(|i: &Item| !i.is_empty());
        // A single part that is the result itself needs no chain (it would refer to itself).
        if !(items.len() == 1 && items[0] == result) {
            planner.builder.add_recipe(result, Recipe::Chain(items))?;
        }
    }
    Ok(())
}
