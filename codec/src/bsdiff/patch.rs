//! Bounded BSDIFF40 decoding: a reader that produces the new file sequentially while reading the
//! old file by positioned reads, so neither old nor new is ever held in memory.
//!
//! Every control value is checked against the declared sizes before it is acted on, so a corrupt
//! patch ends in an error, never in a hang (ADU's applier hangs) or an unbounded allocation. Memory
//! is three bzip2 decoders (at most ~3.7 MB each for 900k blocks) and two 64 KiB buffers.

use std::io::{self, Read};
use std::rc::Rc;

use super::{decode_offtin, BsdiffError, ReadAt, CONTROL_TRIPLE_LEN, HEADER_LEN, MAGIC};

/// Bytes handled per step; bounds the scratch buffer used to read the old file.
const STEP: usize = 64 * 1024;
/// Control triples that produce no output (x = y = 0) are legal but pointless; this many in a row
/// means a corrupt or hostile patch (a small bzip2 stream can expand to billions of them).
const MAX_IDLE_TRIPLES: u64 = 1 << 16;

/// The parsed 32-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub control_len: u64,
    pub diff_len: u64,
    pub new_size: u64,
}

impl Header {
    /// Reads and checks the header of `patch`: magic, non-negative fields, and blocks that fit.
    pub fn read(patch: &dyn ReadAt) -> Result<Header, BsdiffError> {
        let size = patch.size();
        if size < HEADER_LEN {
            return Err(BsdiffError::TooShort { len: size });
        }
        let mut raw = [0u8; HEADER_LEN as usize];
        patch
            .read_exact_at(0, &mut raw)
            .map_err(BsdiffError::Patch)?;
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&raw[..8]);
        if &magic != MAGIC {
            return Err(BsdiffError::BadMagic { found: magic });
        }
        let field = |name: &'static str, at: usize| -> Result<u64, BsdiffError> {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            let value = decode_offtin(b);
            u64::try_from(value)
                .map_err(|_| BsdiffError::NegativeHeaderField { field: name, value })
        };
        let header = Header {
            control_len: field("control length", 8)?,
            diff_len: field("diff length", 16)?,
            new_size: field("new size", 24)?,
        };
        let available = size - HEADER_LEN;
        let blocks = header.control_len.checked_add(header.diff_len);
        if blocks.is_none_or(|b| b > available) {
            return Err(BsdiffError::BlocksExceedPatch {
                control: header.control_len,
                diff: header.diff_len,
                available,
            });
        }
        Ok(header)
    }
}

/// Sequential reader over a byte range of a random-access input.
struct RangeReader<P> {
    input: Rc<P>,
    pos: u64,
    end: u64,
}

impl<P: ReadAt> Read for RangeReader<P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.input.read_at(self.pos, &mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

type Block<P> = bzip2::read::BzDecoder<RangeReader<P>>;

/// Where the decoder is inside the current control triple.
#[derive(Debug, Clone, Copy)]
struct Triple {
    /// Diff bytes (added to old bytes) still to produce.
    diff_left: u64,
    /// Extra bytes still to copy.
    extra_left: u64,
    /// Old-position adjustment applied after the extra bytes.
    seek: i64,
}

/// Produces the new file of a BSDIFF40 patch, pulling from the patch and the old file on demand.
pub struct BspatchReader<P: ReadAt, O: ReadAt> {
    old: O,
    control: Block<P>,
    diff: Block<P>,
    extra: Block<P>,
    new_size: u64,
    new_pos: u64,
    old_pos: i64,
    triple: Option<Triple>,
    triples_read: u64,
    idle_triples: u64,
    scratch: Vec<u8>,
    failed: bool,
    finished: bool,
}

impl<P: ReadAt, O: ReadAt> BspatchReader<P, O> {
    /// Opens a patch. `expected_new_size`, when given, must equal the size in the header (the
    /// applier knows the result length from the delta and refuses a patch that disagrees).
    pub fn new(patch: P, old: O, expected_new_size: Option<u64>) -> Result<Self, BsdiffError> {
        let header = Header::read(&patch)?;
        if let Some(expected) = expected_new_size {
            if expected != header.new_size {
                return Err(BsdiffError::NewSizeMismatch {
                    declared: header.new_size,
                    expected,
                });
            }
        }
        let patch = Rc::new(patch);
        let control_start = HEADER_LEN;
        let diff_start = control_start + header.control_len;
        let extra_start = diff_start + header.diff_len;
        let block = |start: u64, end: u64| {
            bzip2::read::BzDecoder::new(RangeReader {
                input: Rc::clone(&patch),
                pos: start,
                end,
            })
        };
        Ok(BspatchReader {
            old,
            control: block(control_start, diff_start),
            diff: block(diff_start, extra_start),
            extra: block(extra_start, patch.size()),
            new_size: header.new_size,
            new_pos: 0,
            old_pos: 0,
            triple: None,
            triples_read: 0,
            idle_triples: 0,
            scratch: Vec::new(),
            failed: false,
            finished: false,
        })
    }

    /// Size of the output, from the header.
    pub fn new_size(&self) -> u64 {
        self.new_size
    }

    fn bad_control(&self, reason: String) -> BsdiffError {
        BsdiffError::BadControl {
            index: self.triples_read,
            new_pos: self.new_pos,
            reason,
        }
    }

    fn next_triple(&mut self) -> Result<Triple, BsdiffError> {
        let mut raw = [0u8; CONTROL_TRIPLE_LEN];
        let new_pos = self.new_pos;
        self.control
            .read_exact(&mut raw)
            .map_err(|source| BsdiffError::Block {
                block: "control",
                new_pos,
                source,
            })?;
        let field = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            decode_offtin(b)
        };
        let (x, y, z) = (field(0), field(8), field(16));
        self.triples_read += 1;
        let left = self.new_size - self.new_pos;
        let diff_left = u64::try_from(x).map_err(|_| self.bad_control(format!("x = {x}")))?;
        let extra_left = u64::try_from(y).map_err(|_| self.bad_control(format!("y = {y}")))?;
        if diff_left.checked_add(extra_left).is_none_or(|n| n > left) {
            return Err(self.bad_control(format!(
                "x = {x} and y = {y} go past the end of the output ({left} bytes left)"
            )));
        }
        if x == 0 && y == 0 {
            self.idle_triples += 1;
            if self.idle_triples > MAX_IDLE_TRIPLES {
                return Err(self.bad_control(format!(
                    "more than {MAX_IDLE_TRIPLES} consecutive triples produce no output"
                )));
            }
        } else {
            self.idle_triples = 0;
        }
        // The old position must stay representable through this triple: x is added before the
        // seek.
        if self
            .old_pos
            .checked_add(x)
            .and_then(|p| p.checked_add(z))
            .is_none()
        {
            return Err(self.bad_control(format!("old position overflows (z = {z})")));
        }
        Ok(Triple {
            diff_left,
            extra_left,
            seek: z,
        })
    }

    /// Produces diff bytes: `out[i] = diff[i] + old[old_pos + i]`, with old bytes outside the old
    /// file counting as zero.
    fn produce_diff(&mut self, out: &mut [u8]) -> Result<(), BsdiffError> {
        let new_pos = self.new_pos;
        self.diff
            .read_exact(out)
            .map_err(|source| BsdiffError::Block {
                block: "diff",
                new_pos,
                source,
            })?;
        let old_size = i128::from(self.old.size());
        let start = i128::from(self.old_pos);
        let end = start + out.len() as i128;
        let lo = start.clamp(0, old_size);
        let hi = end.clamp(0, old_size);
        if lo < hi {
            // lo and hi lie in [0, old_size], and out.len() fits usize, so these conversions hold.
            let skip = (lo - start) as usize;
            let count = (hi - lo) as usize;
            self.scratch.resize(count, 0);
            let offset = lo as u64;
            self.old
                .read_exact_at(offset, &mut self.scratch)
                .map_err(|source| BsdiffError::Old { offset, source })?;
            for (dst, &o) in out[skip..skip + count].iter_mut().zip(&self.scratch) {
                *dst = dst.wrapping_add(o);
            }
        }
        Ok(())
    }

    /// Once the output is complete, each block must end exactly there, with a valid bzip2
    /// end-of-stream: a truncated block, or one with data left over, means a corrupt patch.
    fn check_blocks_end(&mut self) -> Result<(), BsdiffError> {
        let new_pos = self.new_pos;
        for (block, reader) in [
            ("control", &mut self.control),
            ("diff", &mut self.diff),
            ("extra", &mut self.extra),
        ] {
            let mut probe = [0u8; 1];
            match reader.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => {
                    return Err(BsdiffError::Block {
                        block,
                        new_pos,
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            "data left over after the output is complete",
                        ),
                    })
                }
                Err(source) => {
                    return Err(BsdiffError::Block {
                        block,
                        new_pos,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn read_step(&mut self, buf: &mut [u8]) -> Result<usize, BsdiffError> {
        loop {
            let Some(mut triple) = self.triple else {
                if self.new_pos == self.new_size {
                    if !self.finished {
                        self.check_blocks_end()?;
                        self.finished = true;
                    }
                    return Ok(0);
                }
                self.triple = Some(self.next_triple()?);
                continue;
            };
            if triple.diff_left > 0 {
                let n = (buf.len() as u64).min(triple.diff_left).min(STEP as u64) as usize;
                self.produce_diff(&mut buf[..n])?;
                triple.diff_left -= n as u64;
                self.old_pos += n as i64;
                self.new_pos += n as u64;
                self.triple = Some(triple);
                return Ok(n);
            }
            if triple.extra_left > 0 {
                let n = (buf.len() as u64).min(triple.extra_left).min(STEP as u64) as usize;
                let new_pos = self.new_pos;
                self.extra
                    .read_exact(&mut buf[..n])
                    .map_err(|source| BsdiffError::Block {
                        block: "extra",
                        new_pos,
                        source,
                    })?;
                triple.extra_left -= n as u64;
                self.new_pos += n as u64;
                self.triple = Some(triple);
                return Ok(n);
            }
            // Overflow was excluded when the triple was read.
            self.old_pos = self.old_pos.saturating_add(triple.seek);
            self.triple = None;
        }
    }
}

impl<P: ReadAt, O: ReadAt> Read for BspatchReader<P, O> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bsdiff patch already failed",
            ));
        }
        self.read_step(buf).map_err(|e| {
            self.failed = true;
            io::Error::from(e)
        })
    }
}

/// Applies a patch held in memory to an old file held in memory (tests, small items).
pub fn apply(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, BsdiffError> {
    let mut reader = BspatchReader::new(patch, old, None)?;
    // The header's size is bounded by nothing but the patch; grow as bytes arrive instead of
    // trusting it for the allocation.
    let mut out = Vec::with_capacity(reader.new_size().min(1 << 20) as usize);
    reader
        .read_to_end(&mut out)
        .map_err(|e| match e.downcast::<BsdiffError>() {
            Ok(inner) => inner,
            Err(other) => BsdiffError::Patch(other),
        })?;
    Ok(out)
}
