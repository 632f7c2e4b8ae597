//! Changed executables patched with their references re-targeted (`codec::exepatch`, the
//! `exe_bspatch` extension of the zstd profile).
//!
//! A rebuilt program's bsdiff patch is mostly references that changed because code or data
//! moved (on aarch64 more than half of a security upgrade's delta). The executable patch
//! carries what the device needs to predict them: the load segments of both versions, the old
//! version's code sections with their instruction set, and bsdiff's alignment, which doubles
//! as the map of moved regions. ELF headers are read with the `object` crate; a file it cannot
//! read, or of another architecture, gets no executable patch.

use codec::bsdiff::Triple;
use codec::exepatch::{CodeRange, Isa, Layout, Load};
use object::{Architecture, Object, ObjectSection, ObjectSegment, SectionKind};

/// zstd level of the stored patch: patches are small, and level 19 packs the sparse diff
/// bytes 10-20 % tighter than level 9.
const LEVEL: i32 = 19;
/// The frame's window, at most 8 MiB as the delta's other frames with a basis: the device
/// decodes it within its memory budget (48 MiB by default). An uncompressed patch is as long
/// as the file, mostly zeros, so a longer window would gain little.
const WINDOW_LOG: u32 = 23;

/// An executable patch from an old version to a new one, compressed for the delta.
pub struct ExePatch {
    /// The uncompressed patch (the ingredient of `exe_bspatch`).
    pub patch: Vec<u8>,
    /// One zstd frame of `patch`, as the delta stores it.
    pub frame: Vec<u8>,
}

/// The smallest executable patch from `old` to `new`, if both are ELF files of an instruction
/// set `exe` knows (for 32-bit ARM both ARM and Thumb-2 decoding are tried: stripped files do
/// not say which their code uses). `triples` is bsdiff's alignment of the two.
pub fn encode(old: &[u8], new: &[u8], triples: &[Triple]) -> Option<ExePatch> {
    let mut best: Option<ExePatch> = None;
    for layout in layouts(old, new)? {
        let Ok(patch) = codec::exepatch::diff_aligned(old, new, &layout, triples) else {
            continue;
        };
        let Ok(frame) = codec::zstd::compress_with_prefix(&patch, &[], LEVEL, WINDOW_LOG) else {
            continue;
        };
        if best.as_ref().is_none_or(|b| frame.len() < b.frame.len()) {
            best = Some(ExePatch { patch, frame });
        }
    }
    best
}

/// The layouts to try for a pair of ELF files (none if either is not ELF, they differ in
/// architecture, or `exe` does not know it).
fn layouts(old: &[u8], new: &[u8]) -> Option<Vec<Layout>> {
    let (old_file, new_file) = (
        object::File::parse(old).ok()?,
        object::File::parse(new).ok()?,
    );
    let arch = old_file.architecture();
    if new_file.architecture() != arch {
        return None;
    }
    let isas: &[Isa] = match arch {
        Architecture::X86_64 => &[Isa::X86_64],
        Architecture::Aarch64 => &[Isa::Aarch64],
        Architecture::Arm => &[Isa::Thumb, Isa::Arm],
        _ => return None,
    };
    let (old_loads, new_loads) = (loads(&old_file), loads(&new_file));
    Some(
        isas.iter()
            .map(|&isa| Layout {
                old_loads: old_loads.clone(),
                new_loads: new_loads.clone(),
                code: code_ranges(&old_file, isa),
            })
            .collect(),
    )
}

/// The file's loadable segments.
fn loads(file: &object::File) -> Vec<Load> {
    file.segments()
        .map(|s| {
            let (offset, file_size) = s.file_range();
            Load {
                offset,
                vaddr: s.address(),
                file_size,
                mem_size: s.size(),
            }
        })
        .collect()
}

/// Sections of absolute addresses: relocations (offset and addend), pointer data, the GOT,
/// constructor tables, the dynamic section, symbol values (also of unstripped files).
const POINTER_SECTIONS: &[&str] = &[
    ".rela.dyn",
    ".rela.plt",
    ".rel.dyn",
    ".rel.plt",
    ".data.rel.ro",
    ".data",
    ".got",
    ".got.plt",
    ".init_array",
    ".fini_array",
    ".dynamic",
    ".dynsym",
    ".symtab",
];

/// The file's code sections as ranges of `isa`, and its tables of references as data ranges.
fn code_ranges(file: &object::File, isa: Isa) -> Vec<CodeRange> {
    let pointers = if file.is_64() { Isa::Abs64 } else { Isa::Abs32 };
    file.sections()
        .filter_map(|s| {
            let name = s.name().ok()?;
            let isa = if s.kind() == SectionKind::Text {
                isa
            } else if POINTER_SECTIONS.contains(&name) {
                pointers
            } else if name == ".eh_frame" {
                Isa::PcRel32
            } else if name == ".eh_frame_hdr" {
                Isa::BaseRel32
            } else {
                return None;
            };
            let (offset, len) = s.file_range()?;
            Some(CodeRange {
                isa,
                offset,
                len,
                vaddr: s.address(),
            })
        })
        .collect()
}
