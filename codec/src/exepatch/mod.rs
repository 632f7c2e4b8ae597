//! Executable patches (`DGEXEP02`): a bsdiff-style patch of a rebuilt executable whose diff
//! bytes are taken against a *prediction* of the new file instead of the old bytes.
//!
//! A rebuilt program differs from its old version mostly in references: every call, branch and
//! address computation that crosses code or data that moved gets a new value. bsdiff's diff
//! bytes record each such change; they repeat a few values, but far from compress to nothing.
//! Here the patch's control triples double as an address map (old region -> new region), and
//! the applier, before adding the diff bytes, re-targets every reference it finds in the old
//! bytes through that map (`exe` finds and rewrites them: x86-64, aarch64, ARM, Thumb-2). A
//! reference whose target moved with a matched region then comes out right and costs a zero
//! diff byte. This is Courgette/Zucchini's idea in the shape of bsdiff: the prediction streams
//! window by window and needs no disassembly of the new file.
//!
//! Layout (all integers unsigned LEB128 varints unless said otherwise; uncompressed — the
//! delta stores the patch compressed):
//!
//! ```text
//! "DGEXEP02"
//! new size
//! old loads:   count, then per load: file offset, address, file size, memory size
//! new loads:   the same for the new file
//! code ranges: count, then per range: kind (1 x86-64, 2 aarch64, 3 ARM, 4 Thumb-2, 5-8
//!              data, see [`Isa`]), old file offset, length, address of its first byte
//!              (increasing offsets, no range overlapping the one before)
//! stack shifts: count (<= 64), then per shift: code range index, threshold, amount (zigzag)
//! frames:      count (<= 64), then per entry: index of an aarch64 code range whose stack frames
//!              are re-laid (see [`frames`])
//! controls:    count, then per triple: add length, copy length, seek (zigzag-encoded)
//! diff bytes:  (sum of add lengths) bytes, added to the prediction
//! extra bytes: (sum of copy lengths) bytes, copied
//! ```
//!
//! A triple (add, copy, seek) reads as in BSDIFF40: `add` bytes of the prediction of the old
//! bytes at the old position plus as many diff bytes, then `copy` extra bytes, then the old
//! position moves by `add + seek`. Old bytes outside the old file read as zero. See
//! [`map`] for the prediction, in the words the format defines it.

pub mod frames;
pub mod map;
pub mod reader;

#[cfg(feature = "bsdiff-encoder")]
pub mod encode;

pub use map::{AddressMap, Isa, Load, Segment};
pub use reader::ExePatchReader;

#[cfg(feature = "bsdiff-encoder")]
pub use encode::{align, diff, diff_with, drop_excursions};

use std::io;

use crate::bsdiff::ReadAt;

/// The 8 bytes every patch starts with (`DGEXEP01`, the first form without frame
/// re-layouts, was never released and is not read).
pub const MAGIC: &[u8; 8] = b"DGEXEP02";
/// At most this many loads per file and code ranges per patch (ELF files have a handful of
/// each; the limit bounds what a hostile patch can make the applier hold).
pub const MAX_TABLE: u64 = 4096;
/// At most this many stack shifts and frame re-layouts each (the generator writes one per
/// aarch64 range at most; each is applied to every word of its range, so the limit bounds the
/// work a hostile patch can ask for).
pub const MAX_STACK_RULES: u64 = 64;

/// One code range of the old file: where it is, its address, its instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRange {
    pub isa: Isa,
    pub offset: u64,
    pub len: u64,
    pub vaddr: u64,
}

/// Everything before the control triples: what the prediction needs to know of both files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub old_loads: Vec<Load>,
    pub new_loads: Vec<Load>,
    pub code: Vec<CodeRange>,
    /// Stack offsets to shift in aarch64 code ranges (by index into `code`).
    pub stack: Vec<StackShift>,
    /// aarch64 code ranges (by index into `code`) whose stack frames are re-laid as the new
    /// file's prologues show ([`frames`]).
    pub frames: Vec<u64>,
}

/// In aarch64 code range `range`, every stack offset of at least `from` bytes moves by `by`
/// (`exe::aarch64::shift_stack_offset`): the frames of a rebuilt library can change shape all
/// at once (a toolchain that reserves a different area at the bottom of every frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackShift {
    pub range: u64,
    pub from: u64,
    pub by: i64,
}

/// One control triple, as in BSDIFF40.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub add: u64,
    pub copy: u64,
    pub seek: i64,
}

/// What is wrong with a patch.
#[derive(Debug, thiserror::Error)]
pub enum ExePatchError {
    #[error("executable patch does not start with DGEXEP02")]
    BadMagic,
    #[error("executable patch is truncated or corrupt at byte {at}: {what}")]
    Corrupt { at: u64, what: String },
    #[error("executable patch makes {declared} bytes, but {expected} were expected")]
    NewSizeMismatch { declared: u64, expected: u64 },
    #[error("reading the {what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl From<ExePatchError> for io::Error {
    fn from(e: ExePatchError) -> io::Error {
        match e {
            ExePatchError::Read { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The parsed start of a patch, with where its diff and extra bytes begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub new_size: u64,
    pub layout: Layout,
    pub controls: Vec<Control>,
    pub diff_start: u64,
    pub extra_start: u64,
}

impl Header {
    /// The number of control triples a patch declares (what holding them costs is known
    /// before they are read).
    pub fn control_count(patch: &dyn ReadAt) -> Result<u64, ExePatchError> {
        let mut r = VarReader::new(patch);
        let mut magic = [0u8; 8];
        r.bytes(&mut magic)?;
        if &magic != MAGIC {
            return Err(ExePatchError::BadMagic);
        }
        r.varint("new size")?;
        read_loads(&mut r)?;
        read_loads(&mut r)?;
        read_code(&mut r)?;
        read_stack(&mut r)?;
        read_frames(&mut r)?;
        r.varint("control count")
    }

    /// Reads and checks everything up to the diff bytes. Controls are held in memory
    /// (`max_controls` bounds them); their add lengths must fit the patch, their sum the new
    /// size.
    pub fn read(patch: &dyn ReadAt, max_controls: u64) -> Result<Header, ExePatchError> {
        let mut r = VarReader::new(patch);
        let mut magic = [0u8; 8];
        r.bytes(&mut magic)?;
        if &magic != MAGIC {
            return Err(ExePatchError::BadMagic);
        }
        let new_size = r.varint("new size")?;
        let old_loads = read_loads(&mut r)?;
        let new_loads = read_loads(&mut r)?;
        let code = read_code(&mut r)?;
        let stack = read_stack(&mut r)?;
        let frames = read_frames(&mut r)?;
        let controls = read_controls(&mut r, max_controls)?;
        let diff_start = r.pos;
        let (add, copy) = totals(&controls, &r)?;
        if add.checked_add(copy) != Some(new_size) {
            return Err(r.corrupt(format!(
                "controls make {add} + {copy} bytes, the new size is {new_size}"
            )));
        }
        let extra_start = diff_start.saturating_add(add);
        if extra_start.saturating_add(copy) > patch.size() {
            return Err(r.corrupt("diff and extra bytes run past the end".into()));
        }
        Ok(Header {
            new_size,
            layout: Layout {
                old_loads,
                new_loads,
                code,
                stack,
                frames,
            },
            controls,
            diff_start,
            extra_start,
        })
    }
}

fn read_loads(r: &mut VarReader) -> Result<Vec<Load>, ExePatchError> {
    let n = r.count("loads")?;
    (0..n)
        .map(|_| {
            Ok(Load {
                offset: r.varint("load offset")?,
                vaddr: r.varint("load address")?,
                file_size: r.varint("load file size")?,
                mem_size: r.varint("load memory size")?,
            })
        })
        .collect()
}

/// Reads the code ranges: in increasing offset order, none overlapping the one before (each
/// window scans the ranges it overlaps; overlapping ranges would multiply that work).
fn read_code(r: &mut VarReader) -> Result<Vec<CodeRange>, ExePatchError> {
    let n = r.count("code ranges")?;
    let mut code: Vec<CodeRange> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let id = r.varint("ISA")?;
        let isa = Isa::from_id(id).ok_or_else(|| r.corrupt(format!("unknown ISA {id}")))?;
        let range = CodeRange {
            isa,
            offset: r.varint("code offset")?,
            len: r.varint("code length")?,
            vaddr: r.varint("code address")?,
        };
        if code
            .last()
            .is_some_and(|p| p.offset.saturating_add(p.len) > range.offset)
        {
            return Err(r.corrupt("code ranges overlap or are out of order".into()));
        }
        code.push(range);
    }
    Ok(code)
}

fn read_stack(r: &mut VarReader) -> Result<Vec<StackShift>, ExePatchError> {
    let n = r.count_at_most("stack shifts", MAX_STACK_RULES)?;
    (0..n)
        .map(|_| {
            Ok(StackShift {
                range: r.varint("stack shift range")?,
                from: r.varint("stack shift threshold")?,
                by: unzigzag(r.varint("stack shift amount")?),
            })
        })
        .collect()
}

fn read_frames(r: &mut VarReader) -> Result<Vec<u64>, ExePatchError> {
    let n = r.count_at_most("frame re-layouts", MAX_STACK_RULES)?;
    (0..n).map(|_| r.varint("frame re-layout range")).collect()
}

fn read_controls(r: &mut VarReader, max: u64) -> Result<Vec<Control>, ExePatchError> {
    let n = r.varint("control count")?;
    if n > max {
        return Err(r.corrupt(format!("{n} controls, more than the {max} allowed")));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let add = r.varint("add length")?;
        let copy = r.varint("copy length")?;
        let seek = unzigzag(r.varint("seek")?);
        out.push(Control { add, copy, seek });
    }
    Ok(out)
}

/// Sums of the add and copy lengths (overflow is corruption).
fn totals(controls: &[Control], r: &VarReader) -> Result<(u64, u64), ExePatchError> {
    let (mut add, mut copy) = (0u64, 0u64);
    for c in controls {
        add = add
            .checked_add(c.add)
            .ok_or_else(|| r.corrupt("add lengths overflow".into()))?;
        copy = copy
            .checked_add(c.copy)
            .ok_or_else(|| r.corrupt("copy lengths overflow".into()))?;
    }
    Ok((add, copy))
}

/// Writes everything up to the diff bytes.
pub fn write_header(new_size: u64, layout: &Layout, controls: &[Control], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    put_varint(out, new_size);
    for loads in [&layout.old_loads, &layout.new_loads] {
        put_varint(out, loads.len() as u64);
        for l in loads.iter() {
            for v in [l.offset, l.vaddr, l.file_size, l.mem_size] {
                put_varint(out, v);
            }
        }
    }
    put_varint(out, layout.code.len() as u64);
    for c in &layout.code {
        for v in [c.isa.id(), c.offset, c.len, c.vaddr] {
            put_varint(out, v);
        }
    }
    put_varint(out, layout.stack.len() as u64);
    for s in &layout.stack {
        put_varint(out, s.range);
        put_varint(out, s.from);
        put_varint(out, zigzag(s.by));
    }
    put_varint(out, layout.frames.len() as u64);
    for &range in &layout.frames {
        put_varint(out, range);
    }
    put_varint(out, controls.len() as u64);
    for c in controls {
        put_varint(out, c.add);
        put_varint(out, c.copy);
        put_varint(out, zigzag(c.seek));
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Reads varints from a random-access patch, a buffer at a time.
struct VarReader<'p> {
    patch: &'p dyn ReadAt,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'p> VarReader<'p> {
    fn new(patch: &'p dyn ReadAt) -> Self {
        VarReader {
            patch,
            pos: 0,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    fn corrupt(&self, what: String) -> ExePatchError {
        ExePatchError::Corrupt { at: self.pos, what }
    }

    fn byte(&mut self) -> Result<Option<u8>, ExePatchError> {
        let in_buf = self.pos.wrapping_sub(self.buf_start);
        if in_buf >= self.buf.len() as u64 {
            self.buf.resize(64 * 1024, 0);
            let n = self
                .patch
                .read_at(self.pos, &mut self.buf)
                .map_err(|source| ExePatchError::Read {
                    what: "executable patch",
                    source,
                })?;
            self.buf.truncate(n);
            self.buf_start = self.pos;
            if n == 0 {
                return Ok(None);
            }
        }
        let b = self.buf[(self.pos - self.buf_start) as usize];
        self.pos += 1;
        Ok(Some(b))
    }

    fn bytes(&mut self, out: &mut [u8]) -> Result<(), ExePatchError> {
        for slot in out {
            *slot = self
                .byte()?
                .ok_or_else(|| self.corrupt("ends early".into()))?;
        }
        Ok(())
    }

    fn varint(&mut self, what: &str) -> Result<u64, ExePatchError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self
                .byte()?
                .ok_or_else(|| self.corrupt(format!("ends in the {what}")))?;
            v |= ((b & 0x7F) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt(format!("the {what} is not a valid varint")))
    }

    fn count(&mut self, what: &str) -> Result<u64, ExePatchError> {
        self.count_at_most(what, MAX_TABLE)
    }

    fn count_at_most(&mut self, what: &str, max: u64) -> Result<u64, ExePatchError> {
        let n = self.varint(what)?;
        if n > max {
            return Err(self.corrupt(format!("{n} {what}, more than {max}")));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let layout = Layout {
            old_loads: vec![Load {
                offset: 0,
                vaddr: 0x40_0000,
                file_size: 100,
                mem_size: 200,
            }],
            new_loads: vec![],
            code: vec![CodeRange {
                isa: Isa::Thumb,
                offset: 4,
                len: 60,
                vaddr: 0x40_0004,
            }],
            stack: vec![StackShift {
                range: 0,
                from: 96,
                by: -96,
            }],
            frames: vec![0],
        };
        let controls = [
            Control {
                add: 10,
                copy: 3,
                seek: -7,
            },
            Control {
                add: 0,
                copy: 2,
                seek: i64::MIN,
            },
        ];
        let mut out = Vec::new();
        write_header(15, &layout, &controls, &mut out);
        out.extend_from_slice(&[0; 15]);
        let h = Header::read(&&out[..], 10).unwrap();
        assert_eq!(h.layout, layout);
        assert_eq!(h.controls, controls);
        assert_eq!(h.extra_start - h.diff_start, 10);
        assert!(Header::read(&&out[..], 1).is_err(), "too many controls");
        assert!(
            Header::read(&&out[..out.len() - 1], 10).is_err(),
            "truncated"
        );
        // Code ranges must not overlap.
        let overlapping = Layout {
            code: vec![layout.code[0], layout.code[0]],
            ..layout.clone()
        };
        let mut out = Vec::new();
        write_header(15, &overlapping, &controls, &mut out);
        out.extend_from_slice(&[0; 15]);
        let err = Header::read(&&out[..], 10).unwrap_err().to_string();
        assert!(err.contains("code ranges overlap"), "{err}");
        // Every frame re-layout applies to every word of its range: their number is bounded.
        let many = Layout {
            frames: vec![0; MAX_STACK_RULES as usize + 1],
            ..layout
        };
        let mut out = Vec::new();
        write_header(15, &many, &controls, &mut out);
        out.extend_from_slice(&[0; 15]);
        let err = Header::read(&&out[..], 10).unwrap_err().to_string();
        assert!(err.contains("65 frame re-layouts, more than 64"), "{err}");
    }
}
