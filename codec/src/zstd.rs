//! zstd with recorded, reproducible parameters, and decoding with an optional raw-prefix basis
//! ("--patch-from" semantics).
//!
//! A zstd frame is reproducible from its content when the compressor is the same zstd version,
//! single-threaded, with the same level, the same frame flags and the same pledged source size
//! (zstd tunes its parameters to the size it is told). [`ZstdParams`] holds all of these, so a
//! delta can carry them and a device can re-create the frame byte for byte.

use std::io::{self, Read, Write};

use zstd::stream::raw::CParameter;

/// zstd library version linked into this build, as zstd numbers it (1.5.7 → 10507).
pub fn zstd_version_number() -> u32 {
    zstd::zstd_safe::version_number()
}

/// The largest window a device decoder accepts with a basis (ADU's applier sets
/// `ZSTD_d_windowLogMax = 28`).
pub const WINDOW_LOG_MAX_WITH_BASIS: u32 = 28;
/// zstd's default decoder limit without a basis.
pub const WINDOW_LOG_MAX_PLAIN: u32 = 27;

/// Everything that decides the bytes of a frame, besides its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZstdParams {
    /// Compression level (1..=22).
    pub level: i32,
    /// Whether the frame carries a content checksum (the zstd CLI's default).
    pub checksum: bool,
    /// zstd version number that produced the frame; a device must link the same version to
    /// reproduce it.
    pub version: u32,
}

impl ZstdParams {
    /// The recompression profile: level 3 (DiffGen's and the zstd CLI's default), checksum on,
    /// with this build's zstd.
    pub fn profile(level: i32) -> ZstdParams {
        ZstdParams {
            level,
            checksum: true,
            version: zstd_version_number(),
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Compresses exactly `content_size` bytes from `input` into one frame with the content size
/// recorded, single-threaded. Returns the number of compressed bytes. Fails if `input` does not
/// hold exactly `content_size` bytes, or if this build's zstd is not `params.version`.
pub fn compress_stream(
    params: ZstdParams,
    content_size: u64,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut frame = compressing_reader(params, content_size, input)?;
    io::copy(&mut frame, out)
}

/// The frame [`compress_stream`] writes, as a reader that pulls `input` as it is read (the
/// device applier streams a `zstd_compression` item this way instead of spilling it). The
/// same bytes whatever the read sizes: single-threaded zstd compresses whole blocks of its own
/// input buffer, so how the input arrives does not show in the output. Reading fails if
/// `input` does not hold exactly `content_size` bytes.
pub fn compressing_reader<'r, R: Read + 'r>(
    params: ZstdParams,
    content_size: u64,
    input: R,
) -> io::Result<impl Read + 'r> {
    if params.version != zstd_version_number() {
        return Err(invalid(format!(
            "zstd frame was made with zstd {} but this build has {}; the bytes cannot be reproduced",
            version_string(params.version),
            version_string(zstd_version_number())
        )));
    }
    if !(1..=22).contains(&params.level) {
        return Err(invalid(format!(
            "zstd level {} is out of range 1..=22",
            params.level
        )));
    }
    let announced = Announced {
        inner: input,
        announced: content_size,
        left: content_size,
    };
    let mut enc = zstd::stream::read::Encoder::new(announced, params.level)?;
    enc.set_pledged_src_size(Some(content_size))?;
    enc.include_contentsize(true)?;
    enc.include_checksum(params.checksum)?;
    enc.include_dictid(false)?;
    enc.set_parameter(CParameter::NbWorkers(0))?;
    Ok(enc)
}

/// Serves `inner` as long as it holds exactly the announced number of bytes, and fails
/// otherwise (zstd would fail on more than its pledged size with a less useful error, and
/// silently write a wrong content size on fewer).
struct Announced<R> {
    inner: R,
    announced: u64,
    left: u64,
}

impl<R: Read> Read for Announced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Make sure nothing follows.
            let mut probe = [0u8; 1];
            let more = loop {
                match self.inner.read(&mut probe) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if more != 0 {
                return Err(invalid(format!(
                    "zstd input has more than {} bytes, {} were announced",
                    self.announced, self.announced
                )));
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid(format!(
                "zstd input has {} bytes, {} were announced",
                self.announced - self.left,
                self.announced
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Compresses a buffer (tests, small items).
pub fn compress_bytes(params: ZstdParams, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    compress_stream(params, data.len() as u64, &mut &data[..], &mut out)?;
    Ok(out)
}

/// One zstd frame of `data` at `level` with `basis` as raw prefix ("patch-from"; an empty
/// basis for none): content size recorded, no checksum, long-distance matching, and a window
/// just large enough to reach back over the basis, at most 2^`max_window_log`.
pub fn compress_with_prefix(
    data: &[u8],
    basis: &[u8],
    level: i32,
    max_window_log: u32,
) -> io::Result<Vec<u8>> {
    compress_with_prefix_searching(data, basis, level, max_window_log, None)
}

/// [`compress_with_prefix`] with the match finder's search depth set to 2^`search_log`
/// compared positions (zstd's `ZSTD_c_searchLog`) instead of the level's. At levels 16-19
/// (binary-tree match finders) most of the time goes into inserting every position of the
/// basis and the data into the tree, each insertion comparing up to that many positions
/// (level 19: 2^7); a shallower search makes it several times faster on a basis of
/// megabytes. The decoder needs nothing different.
pub fn compress_with_prefix_searching(
    data: &[u8],
    basis: &[u8],
    level: i32,
    max_window_log: u32,
    search_log: Option<u32>,
) -> io::Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let zerr = |code: usize| io::Error::other(zstd::zstd_safe::get_error_name(code).to_string());
    let reach = (basis.len() + data.len()).max(1) as u64;
    let window_log = (64 - (reach - 1).leading_zeros()).clamp(10, max_window_log);
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(zerr)?;
    cctx.set_parameter(CParameter::WindowLog(window_log))
        .map_err(zerr)?;
    if let Some(search_log) = search_log {
        cctx.set_parameter(CParameter::SearchLog(search_log))
            .map_err(zerr)?;
    }
    // Long-distance matching finds the old version's long runs anywhere in a basis of
    // megabytes, which the regular match finder's tables (sized for the level) miss at low
    // levels; the decoder needs nothing more.
    cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .map_err(zerr)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(zerr)?;
    cctx.set_parameter(CParameter::ChecksumFlag(false))
        .map_err(zerr)?;
    cctx.set_pledged_src_size(Some(data.len() as u64))
        .map_err(zerr)?;
    cctx.ref_prefix(basis).map_err(zerr)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(zerr)?;
    Ok(out)
}

/// `10507` → `"1.5.7"`.
pub fn version_string(n: u32) -> String {
    format!("{}.{}.{}", n / 10000, n / 100 % 100, n % 100)
}

/// A reader of decompressed zstd data (all frames), with `basis` as raw prefix of every frame if
/// given, and refusing frames whose window exceeds `window_log_max`.
pub fn decoder<'a, R: Read + 'a>(
    input: R,
    basis: Option<&'a [u8]>,
    window_log_max: u32,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(Box::new(FrameDecoder::new(
        input,
        basis,
        move |_: &[u8]| Ok(window_log_max),
    )))
}

/// Longest zstd frame header (RFC 8878 §3.1.1): magic 4, descriptor 1, window 1, dictionary
/// id 4, content size 8. [`FrameDecoder`] shows this many bytes of each frame to its gate.
pub const MAX_FRAME_HEADER_LEN: usize = 18;

/// Decodes a zstd stream frame by frame, asking a gate before each frame.
///
/// Before decoding a frame, `admit` sees its first bytes (up to [`MAX_FRAME_HEADER_LEN`], fewer
/// only at the end of the input) and returns the largest window log the frame may use, or an
/// error that stops decoding. A caller that reserved memory from the first frame's header can so
/// refuse a later frame that would need more: one decoder context for the whole stream would
/// size itself to each frame's header unchecked.
///
/// A basis (raw prefix, `--patch-from`) applies to every frame. zstd forgets a referenced prefix
/// when a frame ends, so each frame gets a fresh context with the prefix referenced again.
pub struct FrameDecoder<'a, R: Read, F> {
    state: FrameState<'a, R>,
    basis: Option<&'a [u8]>,
    admit: F,
}

enum FrameState<'a, R: Read> {
    Between(PeekReader<R>),
    InFrame(Box<zstd::stream::read::Decoder<'a, PeekReader<R>>>),
    Done,
    Failed,
}

impl<'a, R: Read, F: FnMut(&[u8]) -> io::Result<u32>> FrameDecoder<'a, R, F> {
    pub fn new(input: R, basis: Option<&'a [u8]>, admit: F) -> Self {
        FrameDecoder {
            state: FrameState::Between(PeekReader::new(input)),
            basis,
            admit,
        }
    }

    fn start_frame(&mut self, mut input: PeekReader<R>) -> io::Result<FrameState<'a, R>> {
        let head = input.peek(MAX_FRAME_HEADER_LEN)?;
        if head.is_empty() {
            return Ok(FrameState::Done);
        }
        let window_log_max = (self.admit)(head)?;
        let decoder = match self.basis {
            Some(prefix) => zstd::stream::read::Decoder::with_ref_prefix(input, prefix)?,
            None => zstd::stream::read::Decoder::with_buffer(input)?,
        };
        let mut decoder = decoder.single_frame();
        decoder.window_log_max(window_log_max)?;
        Ok(FrameState::InFrame(Box::new(decoder)))
    }
}

impl<R: Read, F: FnMut(&[u8]) -> io::Result<u32>> Read for FrameDecoder<'_, R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // An error leaves the state `Failed`: the stream position is then unknown.
            match std::mem::replace(&mut self.state, FrameState::Failed) {
                FrameState::Between(input) => self.state = self.start_frame(input)?,
                FrameState::InFrame(mut decoder) => {
                    let n = decoder.read(buf)?;
                    if n > 0 {
                        self.state = FrameState::InFrame(decoder);
                        return Ok(n);
                    }
                    // The frame ended (a truncated frame is an error above).
                    self.state = FrameState::Between(decoder.finish());
                }
                FrameState::Done => {
                    self.state = FrameState::Done;
                    return Ok(0);
                }
                FrameState::Failed => {
                    return Err(io::Error::other("the zstd decoder failed earlier"));
                }
            }
        }
    }
}

/// A buffered reader that can look a few bytes ahead without consuming them.
struct PeekReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl<R: Read> PeekReader<R> {
    fn new(inner: R) -> Self {
        PeekReader {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// The next `n` bytes (fewer only at the end of the input), not consumed.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(got) => self.end += got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }
}

impl<R: Read> io::BufRead for PeekReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(got) => {
                        self.end = got;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

impl<R: Read> Read for PeekReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = io::BufRead::fill_buf(self)?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of the frames in `data`, each decoded with `basis` as prefix.
    fn decoded_with(data: &[u8], basis: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        decoder(data, Some(basis), WINDOW_LOG_MAX_WITH_BASIS)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 131) % 257) as u8 ^ (i >> 12) as u8)
            .collect()
    }

    #[test]
    fn frames_record_content_size_and_round_trip() {
        let data = sample(500_000);
        let c = compress_bytes(ZstdParams::profile(3), &data).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&c).unwrap(),
            Some(data.len() as u64)
        );
        let mut back = Vec::new();
        decoder(&c[..], None, WINDOW_LOG_MAX_PLAIN)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn output_does_not_depend_on_how_input_arrives() {
        let data = sample(1_000_000);
        let whole = compress_bytes(ZstdParams::profile(3), &data).unwrap();
        // A reader that hands out odd-sized pieces.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = self.1 % 5000 + 1;
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        compress_stream(
            ZstdParams::profile(3),
            data.len() as u64,
            &mut Trickle(&data, 0),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, whole);
        // Read in odd pieces too, as the applier does.
        let mut frame =
            compressing_reader(ZstdParams::profile(3), data.len() as u64, Trickle(&data, 7))
                .unwrap();
        let mut pulled = Vec::new();
        let mut buf = [0u8; 4099];
        let mut step = 1;
        loop {
            step = step % 4099 + 1;
            let n = frame.read(&mut buf[..step]).unwrap();
            if n == 0 {
                break;
            }
            pulled.extend_from_slice(&buf[..n]);
        }
        assert_eq!(pulled, whole);
    }

    /// Payloads recompressed by earlier versions were written through zstd's push API; the
    /// pull API used now must make the same frames (checked on data that has long matches,
    /// literals and incompressible stretches, over several blocks and window lengths).
    #[test]
    fn pull_and_push_make_the_same_frame() {
        let mut data = sample(3_000_000);
        let mut x = 12345u64;
        for b in data[1_000_000..1_400_000].iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        data.extend_from_within(200_000..900_000);
        for level in [1, 3, 9, 19] {
            let params = ZstdParams::profile(level);
            let mut pushed = Vec::new();
            {
                let mut enc = zstd::stream::write::Encoder::new(&mut pushed, level).unwrap();
                enc.set_pledged_src_size(Some(data.len() as u64)).unwrap();
                enc.include_contentsize(true).unwrap();
                enc.include_checksum(true).unwrap();
                enc.include_dictid(false).unwrap();
                for piece in data.chunks(8192) {
                    enc.write_all(piece).unwrap();
                }
                enc.finish().unwrap();
            }
            assert_eq!(
                compress_bytes(params, &data).unwrap(),
                pushed,
                "level {level}"
            );
        }
    }

    #[test]
    fn wrong_length_or_version_is_refused() {
        let data = sample(1000);
        let mut out = Vec::new();
        assert!(compress_stream(ZstdParams::profile(3), 999, &mut &data[..], &mut out).is_err());
        assert!(compress_stream(ZstdParams::profile(3), 1001, &mut &data[..], &mut out).is_err());
        let mut p = ZstdParams::profile(3);
        p.version += 1;
        assert!(compress_bytes(p, &data).is_err());
    }

    #[test]
    fn prefix_decoding() {
        let basis = sample(100_000);
        let mut target = basis.clone();
        target[5000..5010].copy_from_slice(b"0123456789");
        let frame = compress_with_prefix(&target, &basis, 19, 27).unwrap();
        assert!(frame.len() < 200, "delta is {} bytes", frame.len());
        assert_eq!(decoded_with(&frame, &basis), target);
    }

    #[test]
    fn a_shallow_search_makes_a_frame_the_decoder_reads_as_any() {
        let basis = sample(300_000);
        let mut target = basis.clone();
        target[7000..7010].copy_from_slice(b"0123456789");
        target.extend_from_slice(&basis[1000..50_000]);
        for search_log in [1, 3, 7] {
            let frame =
                compress_with_prefix_searching(&target, &basis, 19, 23, Some(search_log)).unwrap();
            assert!(frame.len() < 300, "delta is {} bytes", frame.len());
            assert_eq!(decoded_with(&frame, &basis), target);
        }
        // Out of zstd's range: an error, not a panic.
        assert!(compress_with_prefix_searching(&target, &basis, 19, 23, Some(40)).is_err());
    }

    /// zstd forgets a referenced prefix when a frame ends: every frame needs it again.
    #[test]
    fn every_frame_is_decoded_against_the_basis() {
        let basis = sample(100_000);
        let mut one = basis.clone();
        one[10..20].copy_from_slice(b"0123456789");
        let mut two = basis.clone();
        two[90_000..90_004].copy_from_slice(b"abcd");
        let mut stream = compress_with_prefix(&one, &basis, 19, 27).unwrap();
        stream.extend(compress_with_prefix(&two, &basis, 19, 27).unwrap());
        assert_eq!(decoded_with(&stream, &basis), [one, two].concat());
    }

    #[test]
    fn the_gate_sees_every_frame_and_can_stop_one() {
        let a = compress_bytes(ZstdParams::profile(3), b"first").unwrap();
        let b = compress_bytes(ZstdParams::profile(3), &sample(5000)).unwrap();
        let stream = [a.clone(), b.clone()].concat();
        let mut seen = Vec::new();
        let mut back = Vec::new();
        FrameDecoder::new(&stream[..], None, |head: &[u8]| {
            seen.push(head.to_vec());
            Ok(WINDOW_LOG_MAX_PLAIN)
        })
        .read_to_end(&mut back)
        .unwrap();
        assert_eq!(back, [b"first".to_vec(), sample(5000)].concat());
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], a[..MAX_FRAME_HEADER_LEN.min(a.len())]);
        assert_eq!(seen[1], b[..MAX_FRAME_HEADER_LEN]);

        let mut frames = 0;
        let mut d = FrameDecoder::new(&stream[..], None, |_: &[u8]| {
            frames += 1;
            if frames > 1 {
                Err(io::Error::other("second frame refused"))
            } else {
                Ok(WINDOW_LOG_MAX_PLAIN)
            }
        });
        let e = d.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "second frame refused");
        assert!(
            d.read(&mut [0u8; 8]).is_err(),
            "a failed decoder stays failed"
        );
    }

    #[test]
    fn empty_input_and_truncated_frames() {
        let mut out = Vec::new();
        decoder(&b""[..], None, WINDOW_LOG_MAX_PLAIN)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
        let frame = compress_bytes(ZstdParams::profile(3), &sample(20_000)).unwrap();
        for cut in [1, 5, frame.len() / 2, frame.len() - 1] {
            assert!(
                decoder(&frame[..cut], None, WINDOW_LOG_MAX_PLAIN)
                    .unwrap()
                    .read_to_end(&mut Vec::new())
                    .is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn version_strings() {
        assert_eq!(version_string(10507), "1.5.7");
    }
}
