//! A raw deflate stream of the bundled zlib (the library codec::zlib links), set up to
//! continue a serial compression from the middle: its window is loaded with the serial
//! compressor's history at the same window offsets, and its first output bits are shifted to
//! the serial stream's bit alignment.

use std::ffi::c_int;
use std::io;

use libz_sys as z;

use crate::zlib::MEM_LEVEL;

/// zlib's `w_size` for windowBits 15.
const WSIZE: usize = 32 * 1024;

pub(super) use crate::zlib::new_stream as blank;
use crate::zlib::zlib_error as failed;

/// What one call of [`RawDeflate::run`] did.
pub(super) struct Step {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Output bytes written to the buffer.
    pub produced: usize,
    /// zlib said the stream is complete (after `Z_FINISH`).
    pub ended: bool,
}

/// A raw deflate stream (windowBits -15, memLevel 9, default strategy).
pub(super) struct RawDeflate {
    // Boxed: zlib keeps a pointer back to the stream in its state.
    strm: Box<z::z_stream>,
}

impl RawDeflate {
    pub(super) fn new(level: i32) -> io::Result<RawDeflate> {
        let mut strm = Box::new(blank());
        // SAFETY: the stream is in the state deflateInit2_ expects; version and size are ours.
        let ret = unsafe {
            z::deflateInit2_(
                strm.as_mut(),
                level,
                z::Z_DEFLATED,
                -15,
                MEM_LEVEL,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as c_int,
            )
        };
        if ret != z::Z_OK {
            return Err(failed("deflateInit2", ret));
        }
        Ok(RawDeflate { strm })
    }

    /// Loads `history` into the window at offsets 0.. and into the hash chains, so that the
    /// next input byte sits at window offset `history.len()` (at most 2·WSIZE - 263).
    ///
    /// deflateSetDictionary keeps only the last WSIZE bytes of one dictionary and then puts
    /// them at offset 0, so a longer history is given in two parts, each shorter than WSIZE:
    /// the second call appends to the window of the first (a raw stream accepts it because
    /// nothing was compressed yet), and inserts the first part's last two strings then.
    pub(super) fn set_history(&mut self, history: &[u8]) -> io::Result<()> {
        assert!(
            history.len() < 2 * WSIZE - 262,
            "history beyond the sliding point"
        );
        let split = if history.len() < WSIZE {
            history.len()
        } else {
            history.len() / 2
        };
        for part in [&history[..split], &history[split..]] {
            if part.is_empty() {
                continue;
            }
            // SAFETY: `part` is live for the call; zlib copies it into its window.
            let ret = unsafe {
                z::deflateSetDictionary(self.strm.as_mut(), part.as_ptr(), part.len() as z::uInt)
            };
            if ret != z::Z_OK {
                return Err(failed("deflateSetDictionary", ret));
            }
        }
        Ok(())
    }

    /// Starts the output with `bits` (< 8) zero bits, so that its blocks have the bit
    /// alignment they have in a stream where they start at that bit of a byte.
    pub(super) fn prime(&mut self, bits: u32) -> io::Result<()> {
        debug_assert!(bits < 8);
        // SAFETY: the stream is initialised and nothing was compressed yet.
        let ret = unsafe { z::deflatePrime(self.strm.as_mut(), bits as c_int, 0) };
        if ret != z::Z_OK {
            return Err(failed("deflatePrime", ret));
        }
        Ok(())
    }

    /// One call of deflate over `input` with `flush`, writing into `out`.
    pub(super) fn run(&mut self, input: &[u8], flush: c_int, out: &mut [u8]) -> io::Result<Step> {
        let avail_in = u32::try_from(input.len()).map_err(io::Error::other)?;
        let avail_out = u32::try_from(out.len()).map_err(io::Error::other)?;
        self.strm.next_in = input.as_ptr() as *mut u8;
        self.strm.avail_in = avail_in;
        self.strm.next_out = out.as_mut_ptr();
        self.strm.avail_out = avail_out;
        // SAFETY: next_in/next_out point into live buffers of the stated sizes.
        let ret = unsafe { z::deflate(self.strm.as_mut(), flush) };
        let step = Step {
            consumed: (avail_in - self.strm.avail_in) as usize,
            produced: (avail_out - self.strm.avail_out) as usize,
            ended: ret == z::Z_STREAM_END,
        };
        // Pointers into the caller's buffers must not outlive the call.
        self.strm.next_in = std::ptr::null_mut();
        self.strm.avail_in = 0;
        match ret {
            z::Z_OK | z::Z_STREAM_END | z::Z_BUF_ERROR => Ok(step),
            other => Err(failed("deflate", other)),
        }
    }
}

impl Drop for RawDeflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by deflateInit2_ in `new`.
        unsafe { z::deflateEnd(self.strm.as_mut()) };
    }
}
