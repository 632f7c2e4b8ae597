//! Bounded decoding of an executable patch: the new file produced front to back while the old
//! file and the patch are read by positioned reads.
//!
//! Memory: the control triples and the map built from them (at most [`MEMORY_PER_CONTROL`]
//! bytes per triple; the caller bounds the count, see [`ExePatchReader::memory`] and
//! [`super::Header::control_count`]), one prediction window and the references found in it.
//! With frame re-layouts ([`super::frames`]) every byte produced is also observed, in order.

use std::io::{self, Read};

use super::frames::Frames;
use super::map::{AddressMap, Segment, WINDOW};
use super::{Control, ExePatchError, Header};
use crate::bsdiff::ReadAt;

/// Bytes of memory per control triple, at most: the triple, and the map's segments, sweep
/// points, heap and pieces while it is built.
pub const MEMORY_PER_CONTROL: u64 = 128;
/// Fixed memory besides the triples: the window, its references and read buffers.
pub const FIXED_MEMORY: u64 = 4 * WINDOW as u64 + (1 << 20);

/// Produces the new file of an executable patch.
pub struct ExePatchReader<P: ReadAt, O: ReadAt> {
    patch: P,
    old: O,
    map: AddressMap,
    /// Frame re-layouts, when the patch has any: they observe every byte produced.
    frames: Option<Frames>,
    controls: Vec<Control>,
    next: usize,
    add_left: u64,
    copy_left: u64,
    seek: i64,
    /// The add part of the current triple.
    segment: Segment,
    old_pos: u64,
    new_pos: u64,
    diff_pos: u64,
    extra_pos: u64,
    window: Vec<u8>,
    /// The diff bytes of the current window (kept to avoid an allocation per window).
    diff: Vec<u8>,
    window_read: usize,
}

impl<P: ReadAt, O: ReadAt> ExePatchReader<P, O> {
    /// The memory a patch of `controls` triples needs while applied.
    pub fn memory(controls: u64) -> u64 {
        FIXED_MEMORY.saturating_add(controls.saturating_mul(MEMORY_PER_CONTROL))
    }

    /// Opens a patch whose result must be `expected_new_size` bytes; at most `max_controls`
    /// triples are accepted.
    pub fn new(
        patch: P,
        old: O,
        expected_new_size: u64,
        max_controls: u64,
    ) -> Result<Self, ExePatchError> {
        let header = Header::read(&patch, max_controls)?;
        if header.new_size != expected_new_size {
            return Err(ExePatchError::NewSizeMismatch {
                declared: header.new_size,
                expected: expected_new_size,
            });
        }
        let frames = Frames::new(&header.layout);
        let map = AddressMap::new(header.layout, &header.controls);
        Ok(ExePatchReader {
            patch,
            old,
            map,
            frames,
            controls: header.controls,
            next: 0,
            add_left: 0,
            copy_left: 0,
            seek: 0,
            segment: Segment {
                old: 0,
                new: 0,
                len: 0,
            },
            old_pos: 0,
            new_pos: 0,
            diff_pos: header.diff_start,
            extra_pos: header.extra_start,
            window: Vec::new(),
            diff: Vec::new(),
            window_read: 0,
        })
    }

    /// Makes the next window of the current segment: prediction plus diff bytes.
    fn next_window(&mut self) -> io::Result<()> {
        let n = self.add_left.min(WINDOW as u64) as usize;
        self.window.resize(n, 0);
        let place = (self.old_pos, self.new_pos, self.segment);
        predict_window(&self.map, &self.old, place, &mut self.window)?;
        self.diff.resize(n, 0);
        self.patch
            .read_exact_at(self.diff_pos, &mut self.diff)
            .map_err(|e| read_error("executable patch", e))?;
        let diff = &self.diff;
        match &mut self.frames {
            Some(frames) => frames.settle(&mut self.window, self.old_pos, |i, b| {
                *b = b.wrapping_add(diff[i]);
            }),
            None => {
                for (w, d) in self.window.iter_mut().zip(diff) {
                    *w = w.wrapping_add(*d);
                }
            }
        }
        self.diff_pos += n as u64;
        self.old_pos = self.old_pos.wrapping_add(n as u64);
        self.new_pos += n as u64;
        self.add_left -= n as u64;
        self.window_read = 0;
        Ok(())
    }

    /// Moves to the next control triple; false at the end.
    fn next_control(&mut self) -> bool {
        let Some(c) = self.controls.get(self.next) else {
            return false;
        };
        self.old_pos = self.old_pos.wrapping_add(self.seek as u64);
        self.segment = Segment {
            old: self.old_pos,
            new: self.new_pos,
            len: c.add,
        };
        self.add_left = c.add;
        self.copy_left = c.copy;
        self.seek = c.seek;
        self.next += 1;
        true
    }
}

/// The prediction of `buf.len()` old bytes from `old_pos` placed at new offset `new_pos`, in
/// `segment` (old bytes outside the old file are zeros). Shared with the encoder.
pub(crate) fn predict_window(
    map: &AddressMap,
    old: &dyn ReadAt,
    (old_pos, new_pos, segment): (u64, u64, Segment),
    buf: &mut [u8],
) -> io::Result<()> {
    buf.fill(0);
    let size = old.size();
    // Old positions wrap (a seek before the start); only [0, size) holds bytes.
    let (skip, from) = if old_pos < size {
        (0, old_pos)
    } else {
        (0u64.wrapping_sub(old_pos), 0)
    };
    if skip < buf.len() as u64 && from < size {
        let skip = skip as usize;
        let n = ((size - from) as usize).min(buf.len() - skip);
        old.read_exact_at(from, &mut buf[skip..skip + n])
            .map_err(|e| read_error("old file", e))?;
    }
    if old_pos < size {
        map.predict(buf, old_pos, new_pos, segment);
    }
    Ok(())
}

fn read_error(what: &'static str, source: io::Error) -> io::Error {
    ExePatchError::Read { what, source }.into()
}

impl<P: ReadAt, O: ReadAt> Read for ExePatchReader<P, O> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.window_read < self.window.len() {
                let ready = &self.window[self.window_read..];
                let n = ready.len().min(buf.len());
                buf[..n].copy_from_slice(&ready[..n]);
                self.window_read += n;
                return Ok(n);
            }
            if self.add_left > 0 {
                self.next_window()?;
                continue;
            }
            if self.copy_left > 0 {
                let n = self.copy_left.min(buf.len() as u64) as usize;
                self.patch
                    .read_exact_at(self.extra_pos, &mut buf[..n])
                    .map_err(|e| read_error("executable patch", e))?;
                if let Some(frames) = &mut self.frames {
                    frames.observe(&buf[..n]);
                }
                self.extra_pos += n as u64;
                self.copy_left -= n as u64;
                self.new_pos += n as u64;
                return Ok(n);
            }
            if !self.next_control() {
                return Ok(0);
            }
        }
    }
}
