//! Deflate and inflate with the exact parameters of ADU's `zlib_compression` and
//! `zlib_decompression` recipes, so that bytes compressed here can be re-created on a device.
//!
//! Compression goes straight to zlib (`deflateInit2` with memLevel 9, windowBits 15, default
//! strategy) because flate2 fixes memLevel at 8, which gives different bytes. The gzip header is
//! set explicitly (mtime 0, no name, OS 3) so the output does not depend on the platform zlib
//! was built for. zlib is linked statically (libz-sys `static`), so every build of diffgen makes
//! the same bytes; tests compare them with the system's reference zlib.

use std::ffi::c_int;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;

use libz_sys as z;

/// The stream framing, numbered as ADU's `init_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// Raw deflate (RFC 1951), init_type 0.
    Raw,
    /// gzip (RFC 1952), init_type 1.
    Gzip,
    /// zlib (RFC 1950), init_type 2.
    Zlib,
}

impl Container {
    /// ADU's `init_type` number.
    pub fn init_type(self) -> u32 {
        match self {
            Container::Raw => 0,
            Container::Gzip => 1,
            Container::Zlib => 2,
        }
    }

    pub fn from_init_type(n: u64) -> Option<Container> {
        match n {
            0 => Some(Container::Raw),
            1 => Some(Container::Gzip),
            2 => Some(Container::Zlib),
            _ => None,
        }
    }

    /// zlib's windowBits for a 32 KiB window in this framing.
    fn window_bits(self) -> c_int {
        match self {
            Container::Raw => -15,
            Container::Gzip => 16 + 15,
            Container::Zlib => 15,
        }
    }
}

/// Deflate parameters that, with the zlib version, fully determine the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    pub container: Container,
    /// 1..=9 (0, stored blocks, is excluded: its block boundaries depend on buffer sizes, so it
    /// is not reproducible; -1 means zlib's default, 6).
    pub level: i32,
}

/// memLevel used by ADU's applier; part of what makes output reproducible.
pub const MEM_LEVEL: c_int = 9;
/// zlib is given the content in pieces of this size that start at multiples of it, as ADU's
/// applier feeds its compressor, whatever sizes the caller writes. Deflate output does not
/// depend on the piece size in practice, but zlib decides when to slide its window when it
/// runs out of input, so a piece ending one byte before the usual slide point can move a slide
/// and, with it, whether a later incompressible block may be stored (see
/// [`crate::zlib_check`]). Aligned pieces make the output a function of the content alone.
const INPUT_CHUNK: usize = 4096;

impl DeflateParams {
    /// The gzip profile of recompression: level 9, gzip framing.
    pub const GZIP_PROFILE: DeflateParams = DeflateParams {
        container: Container::Gzip,
        level: 9,
    };

    fn validate(&self) -> io::Result<()> {
        if self.level == -1 || (1..=9).contains(&self.level) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "deflate level {} is not reproducible (use 1..=9 or -1)",
                    self.level
                ),
            ))
        }
    }
}

/// Version of the zlib linked into this build, e.g. "1.3.1".
pub fn zlib_version() -> String {
    // SAFETY: zlibVersion returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(z::zlibVersion()) }
        .to_string_lossy()
        .into_owned()
}

/// A streaming deflater: bytes written to it come out compressed in the inner writer.
pub struct Deflater<W: Write> {
    // Boxed: zlib keeps pointers into the stream and the header, so they must not move.
    stream: Box<z::z_stream>,
    _header: Box<z::gz_header>,
    out: Option<W>,
    buf: Vec<u8>,
    /// Content written but not yet given to zlib: less than [`INPUT_CHUNK`] bytes.
    staged: Vec<u8>,
    bytes_in: u64,
    bytes_out: u64,
}

/// zlib's allocator callbacks (libz-sys declares them non-nullable, so they must be given).
extern "C" fn zalloc(_opaque: z::voidpf, items: z::uInt, size: z::uInt) -> z::voidpf {
    // SAFETY: calloc with any sizes is sound; zlib handles a NULL result as out of memory.
    unsafe { libc::calloc(items as libc::size_t, size as libc::size_t) }
}

extern "C" fn zfree(_opaque: z::voidpf, address: z::voidpf) {
    // SAFETY: zlib frees only what zalloc returned.
    unsafe { libc::free(address) }
}

/// A stream in the state deflateInit2_/inflateInit2_ expect.
pub(crate) fn new_stream() -> z::z_stream {
    z::z_stream {
        next_in: std::ptr::null_mut(),
        avail_in: 0,
        total_in: 0,
        next_out: std::ptr::null_mut(),
        avail_out: 0,
        total_out: 0,
        msg: std::ptr::null_mut(),
        state: std::ptr::null_mut(),
        zalloc,
        zfree,
        opaque: std::ptr::null_mut(),
        data_type: 0,
        adler: 0,
        reserved: 0,
    }
}

pub(crate) fn zlib_error(what: &str, code: c_int) -> io::Error {
    io::Error::other(format!("zlib {what} failed (code {code})"))
}

impl<W: Write> Deflater<W> {
    pub fn new(params: DeflateParams, out: W) -> io::Result<Self> {
        params.validate()?;
        let mut stream = Box::new(new_stream());
        // SAFETY: gz_header holds only integers and nullable pointers; all-zero is the
        // "no extra, no name, no comment, mtime 0" header zlib documents.
        let mut header: Box<z::gz_header> =
            Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        header.os = 3; // Unix, whatever platform compresses
        let ret = unsafe {
            z::deflateInit2_(
                stream.as_mut(),
                params.level,
                z::Z_DEFLATED,
                params.container.window_bits(),
                MEM_LEVEL,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as c_int,
            )
        };
        if ret != z::Z_OK {
            return Err(zlib_error("deflateInit2", ret));
        }
        if params.container == Container::Gzip {
            // SAFETY: stream is initialised for gzip; header outlives it (both owned here).
            let ret = unsafe { z::deflateSetHeader(stream.as_mut(), header.as_mut()) };
            if ret != z::Z_OK {
                unsafe { z::deflateEnd(stream.as_mut()) };
                return Err(zlib_error("deflateSetHeader", ret));
            }
        }
        Ok(Deflater {
            stream,
            _header: header,
            out: Some(out),
            buf: vec![0u8; 64 * 1024],
            staged: Vec::with_capacity(INPUT_CHUNK),
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    /// Runs deflate over `input` with `flush`, writing all output produced.
    fn run(&mut self, input: &[u8], flush: c_int) -> io::Result<()> {
        let out = self.out.as_mut().expect("deflater used after finish");
        self.stream.next_in = input.as_ptr() as *mut u8;
        self.stream.avail_in = input.len() as u32;
        loop {
            self.stream.next_out = self.buf.as_mut_ptr();
            self.stream.avail_out = self.buf.len() as u32;
            // SAFETY: next_in/next_out point into live buffers of the stated sizes.
            let ret = unsafe { z::deflate(self.stream.as_mut(), flush) };
            let produced = self.buf.len() - self.stream.avail_out as usize;
            out.write_all(&self.buf[..produced])?;
            self.bytes_out += produced as u64;
            match ret {
                z::Z_STREAM_END => return Ok(()),
                z::Z_OK | z::Z_BUF_ERROR => {
                    let done_input = self.stream.avail_in == 0;
                    let room_left = self.stream.avail_out != 0;
                    if flush == z::Z_NO_FLUSH && done_input && room_left {
                        return Ok(());
                    }
                    if flush == z::Z_FINISH && ret == z::Z_BUF_ERROR && room_left {
                        return Err(zlib_error("deflate (no progress)", ret));
                    }
                }
                other => return Err(zlib_error("deflate", other)),
            }
        }
    }

    /// Gives zlib the staged piece.
    fn run_staged(&mut self) -> io::Result<()> {
        let piece = std::mem::take(&mut self.staged);
        let result = self.run(&piece, z::Z_NO_FLUSH);
        self.staged = piece;
        self.staged.clear();
        result
    }

    /// Ends the stream: the remaining output goes to the inner writer, which is flushed.
    fn end_stream(&mut self) -> io::Result<()> {
        if !self.staged.is_empty() {
            self.run_staged()?;
        }
        self.run(&[], z::Z_FINISH)?;
        self.out.as_mut().expect("stream ended once").flush()
    }

    /// Completes the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_stream()?;
        Ok(self.out.take().expect("present until finish"))
    }

    /// Uncompressed bytes consumed so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Compressed bytes produced so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
}

impl<W: Write> Write for Deflater<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        if !self.staged.is_empty() {
            let take = rest.len().min(INPUT_CHUNK - self.staged.len());
            self.staged.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.staged.len() < INPUT_CHUNK {
                self.bytes_in += data.len() as u64;
                return Ok(data.len());
            }
            self.run_staged()?;
        }
        let whole = rest.len() / INPUT_CHUNK * INPUT_CHUNK;
        for piece in rest[..whole].chunks(INPUT_CHUNK) {
            self.run(piece, z::Z_NO_FLUSH)?;
        }
        self.staged.extend_from_slice(&rest[whole..]);
        self.bytes_in += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // A Z_SYNC_FLUSH would change the output; only the inner writer is flushed.
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}

impl<W: Write> Drop for Deflater<W> {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by deflateInit2_ in `new`.
        unsafe { z::deflateEnd(self.stream.as_mut()) };
    }
}

/// Compresses all of `input` into `out`; returns (bytes in, bytes out).
pub fn deflate_stream(
    params: DeflateParams,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<(u64, u64)> {
    let mut d = Deflater::new(params, out)?;
    io::copy(input, &mut d)?;
    d.end_stream()?;
    Ok((d.bytes_in(), d.bytes_out()))
}

/// Compresses a buffer (tests, small items).
pub fn deflate_bytes(params: DeflateParams, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut d = Deflater::new(params, Vec::new())?;
    d.write_all(data)?;
    d.finish()
}

/// A reader of decompressed data. For gzip, `all_members` decodes concatenated members (what
/// `gzip -d` does); otherwise decoding stops after the first member (what SWUpdate and ADU's
/// applier do).
pub fn inflater<'a, R: Read + 'a>(
    container: Container,
    input: R,
    all_members: bool,
) -> Box<dyn Read + 'a> {
    use flate2::read;
    match container {
        Container::Raw => Box::new(read::DeflateDecoder::new(input)),
        Container::Zlib => Box::new(read::ZlibDecoder::new(input)),
        Container::Gzip if all_members => Box::new(read::MultiGzDecoder::new(input)),
        Container::Gzip => Box::new(read::GzDecoder::new(input)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn gzip_header_is_fixed() {
        let out = deflate_bytes(DeflateParams::GZIP_PROFILE, b"hello").unwrap();
        assert_eq!(&out[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        let level1 = DeflateParams {
            container: Container::Gzip,
            level: 1,
        };
        assert_eq!(deflate_bytes(level1, b"hello").unwrap()[8], 4);
    }

    #[test]
    fn round_trip_all_containers() {
        let data = sample(300_000);
        for container in [Container::Raw, Container::Gzip, Container::Zlib] {
            for level in [-1, 1, 6, 9] {
                let c = deflate_bytes(DeflateParams { container, level }, &data).unwrap();
                let mut back = Vec::new();
                inflater(container, &c[..], false)
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "{container:?} {level}");
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        // Compressible data, then noise (stored blocks, whose choice depends on the window's
        // phase), then compressible data again.
        let mut x = 0x9E37_79B9u32;
        let noise = (0..300_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        });
        let data: Vec<u8> = sample(200_000)
            .into_iter()
            .chain(noise)
            .chain(sample(70_000))
            .collect();
        let whole = deflate_bytes(DeflateParams::GZIP_PROFILE, &data).unwrap();
        for size in [1, 997, 4095, 4097, 65_273, 65_274, 65_275] {
            let mut d = Deflater::new(DeflateParams::GZIP_PROFILE, Vec::new()).unwrap();
            for piece in data.chunks(size) {
                d.write_all(piece).unwrap();
            }
            assert!(d.finish().unwrap() == whole, "writes of {size} bytes");
        }
        let mut out = Vec::new();
        let (i, o) = deflate_stream(DeflateParams::GZIP_PROFILE, &mut &data[..], &mut out).unwrap();
        assert_eq!((i, o), (data.len() as u64, whole.len() as u64));
        assert_eq!(out, whole);
    }

    #[test]
    fn level_zero_is_refused() {
        let p = DeflateParams {
            container: Container::Raw,
            level: 0,
        };
        assert!(Deflater::new(p, Vec::new()).is_err());
    }
}
