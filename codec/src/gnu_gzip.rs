//! Deflate as GNU gzip makes it (`gzip -4` … `gzip -9`, with `-n`), byte for byte.
//!
//! Debian and most distributions compress man pages and changelogs with `gzip -9n`. GNU gzip's
//! deflate descends from the same design as zlib's, but its output differs on files of more
//! than a few KiB: its hash table has 2^15 entries while its symbol buffer holds 32 Ki symbols
//! (no zlib memLevel gives both), and it ends a block early when a guess says that is
//! profitable (zlib has that heuristic only when built with `TRUNCATE_BLOCK`). zlib therefore
//! cannot re-create these files, and a changed man page would cost its whole compressed size
//! in a delta. This module implements GNU gzip's lazy-matching compressor (levels 4 to 9; levels
//! 1 to 3 use gzip's separate fast path and are not implemented) so that a device can re-create
//! such files from their text.
//!
//! The compressor keeps gzip's state exactly: a 64 KiB window that slides by 32 KiB, stale
//! bytes beyond the data included (gzip's match search may look at them before truncating a
//! match to the lookahead, which can decide between equally long matches), hash chains, the
//! block-end rules and the Huffman tree construction with its tie-breaking. Input is taken as
//! a regular file is read by gzip (whole reads), so the output does not depend on how the input
//! is split. Memory is fixed (about 400 KiB) whatever the input size.
//!
//! The container is gzip's as `gzip -n` writes it: no name, mtime 0, `XFL` 2 at level 9 (0
//! otherwise at these levels), OS 3 (Unix), then CRC-32 and length.

use std::io::{self, Write};

const WSIZE: usize = 0x8000;
const WMASK: usize = WSIZE - 1;
const WINDOW_SIZE: usize = 2 * WSIZE;
const HASH_BITS: u32 = 15;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: usize = HASH_SIZE - 1;
const H_SHIFT: u32 = HASH_BITS.div_ceil(MIN_MATCH as u32);
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;
const MAX_DIST: usize = WSIZE - MIN_LOOKAHEAD;
const TOO_FAR: usize = 4096;
const NIL: usize = 0;
const LIT_BUFSIZE: usize = 0x8000;
const DIST_BUFSIZE: usize = LIT_BUFSIZE;

const LENGTH_CODES: usize = 29;
const LITERALS: usize = 256;
const END_BLOCK: usize = 256;
const L_CODES: usize = LITERALS + 1 + LENGTH_CODES;
const D_CODES: usize = 30;
const BL_CODES: usize = 19;
const HEAP_SIZE: usize = 2 * L_CODES + 1;
const MAX_BITS: usize = 15;
const MAX_BL_BITS: usize = 7;
const REP_3_6: usize = 16;
const REPZ_3_10: usize = 17;
const REPZ_11_138: usize = 18;

const EXTRA_LBITS: [u8; LENGTH_CODES] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const EXTRA_DBITS: [u8; D_CODES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const EXTRA_BLBITS: [u8; BL_CODES] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER: [usize; BL_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// (good length, max lazy, nice length, max chain) of gzip's levels 4 to 9.
const CONFIG: [(usize, usize, usize, usize); 6] = [
    (4, 4, 16, 16),
    (8, 16, 32, 32),
    (8, 16, 128, 128),
    (8, 32, 128, 256),
    (32, 128, 258, 1024),
    (32, 258, 258, 4096),
];

/// Whether this module can make gzip's output at `level`.
pub fn supports_level(level: u32) -> bool {
    (4..=9).contains(&level)
}

/// Fixed tables: code of each length and distance, their bases, the static trees.
struct Tables {
    length_code: [u8; 256],
    dist_code: [u8; 512],
    base_length: [u16; LENGTH_CODES],
    base_dist: [u16; D_CODES],
    static_ltree: Vec<Code>,
    static_dtree: Vec<Code>,
}

#[derive(Clone, Copy, Default)]
struct Code {
    code: u16,
    len: u16,
}

fn bi_reverse(mut code: u32, len: usize) -> u16 {
    let mut res = 0u32;
    for _ in 0..len {
        res = (res << 1) | (code & 1);
        code >>= 1;
    }
    res as u16
}

/// Canonical codes for the lengths in `lens[..=max_code]` given the count of each length.
fn gen_codes(lens: &[u16], max_code: usize, bl_count: &[u16; MAX_BITS + 1]) -> Vec<u16> {
    let mut next_code = [0u16; MAX_BITS + 1];
    let mut code = 0u16;
    for bits in 1..=MAX_BITS {
        code = (code.wrapping_add(bl_count[bits - 1])) << 1;
        next_code[bits] = code;
    }
    let mut codes = vec![0u16; lens.len()];
    for n in 0..=max_code {
        let len = lens[n] as usize;
        if len == 0 {
            continue;
        }
        codes[n] = bi_reverse(u32::from(next_code[len]), len);
        next_code[len] = next_code[len].wrapping_add(1);
    }
    codes
}

impl Tables {
    fn new() -> Tables {
        let mut length_code = [0u8; 256];
        let mut base_length = [0u16; LENGTH_CODES];
        let mut length = 0usize;
        let mut code = 0usize;
        while code < LENGTH_CODES - 1 {
            base_length[code] = length as u16;
            for _ in 0..(1usize << EXTRA_LBITS[code]) {
                length_code[length] = code as u8;
                length += 1;
            }
            code += 1;
        }
        // Length 258 can be code 284 + 5 bits or code 285; use the shorter.
        length_code[length - 1] = code as u8;
        let mut dist_code = [0u8; 512];
        let mut base_dist = [0u16; D_CODES];
        let mut dist = 0usize;
        for code in 0..16 {
            base_dist[code] = dist as u16;
            for _ in 0..(1usize << EXTRA_DBITS[code]) {
                dist_code[dist] = code as u8;
                dist += 1;
            }
        }
        dist >>= 7;
        for code in 16..D_CODES {
            base_dist[code] = (dist << 7) as u16;
            for _ in 0..(1usize << (EXTRA_DBITS[code] - 7)) {
                dist_code[256 + dist] = code as u8;
                dist += 1;
            }
        }
        let mut lens = vec![0u16; L_CODES + 2];
        let mut bl_count = [0u16; MAX_BITS + 1];
        for (n, len) in lens.iter_mut().enumerate() {
            *len = match n {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
            bl_count[*len as usize] += 1;
        }
        let codes = gen_codes(&lens, L_CODES + 1, &bl_count);
        let static_ltree = lens
            .iter()
            .zip(codes)
            .map(|(&len, code)| Code { code, len })
            .collect();
        let static_dtree = (0..D_CODES)
            .map(|n| Code {
                code: bi_reverse(n as u32, 5),
                len: 5,
            })
            .collect();
        Tables {
            length_code,
            dist_code,
            base_length,
            base_dist,
            static_ltree,
            static_dtree,
        }
    }

    fn d_code(&self, dist: usize) -> usize {
        if dist < 256 {
            self.dist_code[dist] as usize
        } else {
            self.dist_code[256 + (dist >> 7)] as usize
        }
    }
}

/// A symbol of the code-length alphabet: a length, or a repeat with its count.
#[derive(Clone, Copy)]
enum LenSym {
    Len(u16),
    /// The previous length 3 to 6 more times.
    Repeat(u32),
    /// 3 to 10 zeros.
    Zeros(u32),
    /// 11 to 138 zeros.
    LongZeros(u32),
}

impl LenSym {
    fn code(self) -> usize {
        match self {
            LenSym::Len(l) => usize::from(l),
            LenSym::Repeat(_) => REP_3_6,
            LenSym::Zeros(_) => REPZ_3_10,
            LenSym::LongZeros(_) => REPZ_11_138,
        }
    }

    /// The extra bits after the code: (value, bit count).
    fn extra(self) -> Option<(u32, usize)> {
        match self {
            LenSym::Len(_) => None,
            LenSym::Repeat(n) => Some((n - 3, 2)),
            LenSym::Zeros(n) => Some((n - 3, 3)),
            LenSym::LongZeros(n) => Some((n - 11, 7)),
        }
    }
}

/// gzip's run-length coding of code lengths (`scan_tree`/`send_tree` in its trees.c): runs of
/// a length become the length then repeats, runs of zeros become zero codes, with gzip's
/// limits on run lengths.
fn length_symbols(lens: &[u16]) -> Vec<LenSym> {
    let mut out = Vec::new();
    let mut prevlen: Option<u16> = None;
    let mut count = 0u32;
    let (mut max_count, mut min_count) = if lens.first() == Some(&0) {
        (138, 3)
    } else {
        (7, 4)
    };
    for (n, &curlen) in lens.iter().enumerate() {
        // Past the end stands a length no code has (gzip's guard).
        let nextlen = lens.get(n + 1).copied();
        count += 1;
        if count < max_count && nextlen == Some(curlen) {
            continue;
        }
        if count < min_count {
            out.extend(std::iter::repeat_n(LenSym::Len(curlen), count as usize));
        } else if curlen != 0 {
            if prevlen != Some(curlen) {
                out.push(LenSym::Len(curlen));
                count -= 1;
            }
            out.push(LenSym::Repeat(count));
        } else if count <= 10 {
            out.push(LenSym::Zeros(count));
        } else {
            out.push(LenSym::LongZeros(count));
        }
        count = 0;
        prevlen = Some(curlen);
        (max_count, min_count) = match nextlen {
            Some(0) => (138, 3),
            Some(l) if l == curlen => (6, 3),
            _ => (7, 4),
        };
    }
    out
}

/// A dynamic tree under construction: frequencies, then lengths and codes.
struct Tree {
    freq: Vec<u32>,
    len: Vec<u16>,
    dad: Vec<u16>,
    code: Vec<u16>,
    /// Number of leaves (codes).
    elems: usize,
    max_length: usize,
    max_code: usize,
}

impl Tree {
    fn new(elems: usize, max_length: usize) -> Tree {
        let size = 2 * elems + 1;
        Tree {
            freq: vec![0; size],
            len: vec![0; size],
            dad: vec![0; size],
            code: vec![0; size],
            elems,
            max_length,
            max_code: 0,
        }
    }

    fn reset(&mut self) {
        self.freq[..self.elems].fill(0);
    }
}

/// Bits of the compressed stream, least significant first.
struct BitOut {
    out: Vec<u8>,
    buf: u32,
    valid: u32,
}

impl BitOut {
    fn send_bits(&mut self, value: u32, length: usize) {
        self.buf |= value << self.valid;
        self.valid += length as u32;
        while self.valid >= 8 {
            self.out.push(self.buf as u8);
            self.buf >>= 8;
            self.valid -= 8;
        }
    }

    fn windup(&mut self) {
        if self.valid > 0 {
            self.out.push(self.buf as u8);
        }
        self.buf = 0;
        self.valid = 0;
    }
}

/// GNU gzip's compressor state.
struct Deflate {
    tables: Tables,
    level: u32,
    good_match: usize,
    max_lazy: usize,
    nice_match: usize,
    max_chain: usize,

    window: Vec<u8>,
    prev: Vec<u16>,
    head: Vec<u16>,
    ins_h: usize,
    strstart: usize,
    block_start: isize,
    lookahead: usize,
    eofile: bool,
    match_start: usize,
    prev_length: usize,
    match_length: usize,
    match_available: bool,
    started: bool,

    // Symbols of the current block.
    l_buf: Vec<u8>,
    d_buf: Vec<u16>,
    is_match: Vec<bool>,
    last_lit: usize,
    last_dist: usize,

    ltree: Tree,
    dtree: Tree,
    bltree: Tree,
    opt_len: u64,
    static_len: u64,
    heap: Vec<usize>,
    heap_len: usize,
    heap_max: usize,
    depth: Vec<u8>,
    bl_count: [u16; MAX_BITS + 1],

    bits: BitOut,
}

impl Deflate {
    fn new(level: u32) -> Deflate {
        let (good_match, max_lazy, nice_match, max_chain) = CONFIG[(level - 4) as usize];
        let mut d = Deflate {
            tables: Tables::new(),
            level,
            good_match,
            max_lazy,
            nice_match,
            max_chain,
            window: vec![0; WINDOW_SIZE],
            prev: vec![0; WSIZE],
            head: vec![0; HASH_SIZE],
            ins_h: 0,
            strstart: 0,
            block_start: 0,
            lookahead: 0,
            eofile: false,
            match_start: 0,
            prev_length: 0,
            match_length: MIN_MATCH - 1,
            match_available: false,
            started: false,
            l_buf: vec![0; LIT_BUFSIZE],
            d_buf: vec![0; DIST_BUFSIZE],
            is_match: vec![false; LIT_BUFSIZE],
            last_lit: 0,
            last_dist: 0,
            ltree: Tree::new(L_CODES, MAX_BITS),
            dtree: Tree::new(D_CODES, MAX_BITS),
            bltree: Tree::new(BL_CODES, MAX_BL_BITS),
            opt_len: 0,
            static_len: 0,
            heap: vec![0; HEAP_SIZE],
            heap_len: 0,
            heap_max: 0,
            depth: vec![0; HEAP_SIZE],
            bl_count: [0; MAX_BITS + 1],
            bits: BitOut {
                out: Vec::new(),
                buf: 0,
                valid: 0,
            },
        };
        d.init_block();
        d
    }

    fn init_block(&mut self) {
        self.ltree.reset();
        self.dtree.reset();
        self.bltree.reset();
        self.ltree.freq[END_BLOCK] = 1;
        self.opt_len = 0;
        self.static_len = 0;
        self.last_lit = 0;
        self.last_dist = 0;
    }

    fn update_hash(&mut self, c: u8) {
        self.ins_h = ((self.ins_h << H_SHIFT) ^ c as usize) & HASH_MASK;
    }

    /// Inserts the string at `s` into the dictionary; returns the previous head of its chain.
    fn insert_string(&mut self, s: usize) -> usize {
        self.update_hash(self.window[s + MIN_MATCH - 1]);
        let head = self.head[self.ins_h] as usize;
        self.prev[s & WMASK] = head as u16;
        self.head[self.ins_h] = s as u16;
        head
    }

    /// How many bytes the next `fill_window` reads (and whether it slides first).
    fn fill_need(&self) -> (usize, bool) {
        let more = WINDOW_SIZE - self.lookahead - self.strstart;
        if self.strstart >= WSIZE + MAX_DIST {
            (more + WSIZE, true)
        } else {
            (more, false)
        }
    }

    /// gzip's `fill_window`: slides the window when due, then reads from `input` as from a
    /// regular file (a short read is the end of the input; [`Deflate::run`] calls it only
    /// when `input` holds a whole read or all that is left).
    fn fill_window(&mut self, input: &mut &[u8]) {
        let (more, slide) = self.fill_need();
        if slide {
            self.window.copy_within(WSIZE..WINDOW_SIZE, 0);
            self.match_start = self.match_start.wrapping_sub(WSIZE);
            self.strstart -= WSIZE;
            self.block_start -= WSIZE as isize;
            for h in self.head.iter_mut() {
                *h = if *h as usize >= WSIZE {
                    *h - WSIZE as u16
                } else {
                    NIL as u16
                };
            }
            for p in self.prev.iter_mut() {
                *p = if *p as usize >= WSIZE {
                    *p - WSIZE as u16
                } else {
                    NIL as u16
                };
            }
        }
        if !self.eofile {
            let n = more.min(input.len());
            let at = self.strstart + self.lookahead;
            if n == 0 {
                self.eofile = true;
                // Don't let garbage pollute the hash chains (gzip's words).
                let end = (at + MIN_MATCH - 1).min(WINDOW_SIZE);
                self.window[at..end].fill(0);
            } else {
                self.window[at..at + n].copy_from_slice(&input[..n]);
                *input = &input[n..];
                self.lookahead += n;
            }
        }
    }

    fn longest_match(&mut self, mut cur_match: usize) -> usize {
        let mut chain_length = self.max_chain;
        let scan = self.strstart;
        let mut best_len = self.prev_length;
        let limit = if self.strstart > MAX_DIST {
            self.strstart - MAX_DIST
        } else {
            NIL
        };
        let w = &self.window;
        let mut scan_end1 = w[scan + best_len - 1];
        let mut scan_end = w[scan + best_len];
        if self.prev_length >= self.good_match {
            chain_length >>= 2;
        }
        loop {
            let m = cur_match;
            if !(w[m + best_len] != scan_end
                || w[m + best_len - 1] != scan_end1
                || w[m] != w[scan]
                || w[m + 1] != w[scan + 1])
            {
                // Bytes 0 and 1 match; gzip then compares from byte 2 up to MAX_MATCH
                // (byte 2 is implied by the hash, but compared like the rest).
                let mut len = 2;
                while len < MAX_MATCH && w[scan + len] == w[m + len] {
                    len += 1;
                }
                if len > best_len {
                    self.match_start = cur_match;
                    best_len = len;
                    if len >= self.nice_match {
                        break;
                    }
                    scan_end1 = w[scan + best_len - 1];
                    scan_end = w[scan + best_len];
                }
            }
            cur_match = self.prev[cur_match & WMASK] as usize;
            if cur_match <= limit {
                break;
            }
            chain_length -= 1;
            if chain_length == 0 {
                break;
            }
        }
        best_len
    }

    /// Records a literal (`dist` 0) or a match; returns whether the block should end here.
    fn tally(&mut self, dist: usize, lc: usize) -> bool {
        self.l_buf[self.last_lit] = lc as u8;
        if dist == 0 {
            self.ltree.freq[lc] += 1;
            self.is_match[self.last_lit] = false;
        } else {
            let dist = dist - 1;
            self.ltree.freq[self.tables.length_code[lc] as usize + LITERALS + 1] += 1;
            self.dtree.freq[self.tables.d_code(dist)] += 1;
            self.d_buf[self.last_dist] = dist as u16;
            self.last_dist += 1;
            self.is_match[self.last_lit] = true;
        }
        self.last_lit += 1;
        // gzip's guess whether ending the block here pays.
        if self.level > 2 && (self.last_lit & 0xfff) == 0 {
            let mut out_length = self.last_lit as u64 * 8;
            let in_length = (self.strstart as isize - self.block_start) as u64;
            for (freq, extra) in self.dtree.freq.iter().zip(EXTRA_DBITS) {
                out_length += u64::from(*freq) * (5 + u64::from(extra));
            }
            out_length >>= 3;
            if self.last_dist < self.last_lit / 2 && out_length < in_length / 2 {
                return true;
            }
        }
        self.last_lit == LIT_BUFSIZE - 1 || self.last_dist == DIST_BUFSIZE
    }

    fn flush_block_here(&mut self, eof: bool) {
        let stored_len = (self.strstart as isize - self.block_start) as usize;
        let buf = (self.block_start >= 0).then_some(self.block_start as usize);
        self.flush_block(buf, stored_len, eof);
        self.block_start = self.strstart as isize;
    }

    /// Runs the lazy matcher over what the window holds, filling it from `input`. Returns when
    /// the input is used up; with `at_end` false it stops before a read that `input` cannot
    /// satisfy in full, to resume when more arrives.
    fn run(&mut self, input: &mut &[u8], at_end: bool) {
        loop {
            // Enough lookahead, except at the end of the input: MAX_MATCH bytes for the next
            // match plus MIN_MATCH to insert the string after it. (The first pass is gzip's
            // `lm_init`, which then seeds the hash with the first two bytes.)
            while self.lookahead < MIN_LOOKAHEAD && !self.eofile {
                let (more, _) = self.fill_need();
                if !at_end && input.len() < more {
                    return;
                }
                self.fill_window(input);
            }
            if !self.started {
                self.started = true;
                self.ins_h = 0;
                for j in 0..MIN_MATCH - 1 {
                    self.update_hash(self.window[j]);
                }
            }
            if self.lookahead == 0 {
                return;
            }
            self.step();
        }
    }

    /// One position of gzip's lazy `deflate()` loop.
    fn step(&mut self) {
        let hash_head = self.insert_string(self.strstart);
        self.prev_length = self.match_length;
        let prev_match = self.match_start;
        self.match_length = MIN_MATCH - 1;
        if hash_head != NIL
            && self.prev_length < self.max_lazy
            && self.strstart - hash_head <= MAX_DIST
            && self.strstart <= WINDOW_SIZE - MIN_LOOKAHEAD
        {
            self.match_length = self.longest_match(hash_head);
            if self.match_length > self.lookahead {
                self.match_length = self.lookahead;
            }
            if self.match_length == MIN_MATCH && self.strstart - self.match_start > TOO_FAR {
                self.match_length -= 1;
            }
        }
        if self.prev_length >= MIN_MATCH && self.match_length <= self.prev_length {
            let flush = self.tally(self.strstart - 1 - prev_match, self.prev_length - MIN_MATCH);
            self.lookahead -= self.prev_length - 1;
            self.prev_length -= 2;
            loop {
                self.strstart += 1;
                self.insert_string(self.strstart);
                self.prev_length -= 1;
                if self.prev_length == 0 {
                    break;
                }
            }
            self.match_available = false;
            self.match_length = MIN_MATCH - 1;
            self.strstart += 1;
            if flush {
                self.flush_block_here(false);
            }
        } else if self.match_available {
            if self.tally(0, self.window[self.strstart - 1] as usize) {
                self.flush_block_here(false);
            }
            self.strstart += 1;
            self.lookahead -= 1;
        } else {
            self.match_available = true;
            self.strstart += 1;
            self.lookahead -= 1;
        }
    }

    fn finish(&mut self) {
        if self.match_available {
            self.tally(0, self.window[self.strstart - 1] as usize);
            self.match_available = false;
        }
        self.flush_block_here(true);
    }

    // ---- Huffman trees (gzip's trees.c) ----

    fn smaller(tree: &Tree, depth: &[u8], n: usize, m: usize) -> bool {
        tree.freq[n] < tree.freq[m] || (tree.freq[n] == tree.freq[m] && depth[n] <= depth[m])
    }

    fn pqdownheap(&mut self, which: TreeId, mut k: usize) {
        let tree = match which {
            TreeId::L => &self.ltree,
            TreeId::D => &self.dtree,
            TreeId::Bl => &self.bltree,
        };
        let heap = &mut self.heap;
        let depth = &self.depth;
        let v = heap[k];
        let mut j = k << 1;
        while j <= self.heap_len {
            if j < self.heap_len && Self::smaller(tree, depth, heap[j + 1], heap[j]) {
                j += 1;
            }
            if Self::smaller(tree, depth, v, heap[j]) {
                break;
            }
            heap[k] = heap[j];
            k = j;
            j <<= 1;
        }
        heap[k] = v;
    }

    fn tree(&self, which: TreeId) -> &Tree {
        match which {
            TreeId::L => &self.ltree,
            TreeId::D => &self.dtree,
            TreeId::Bl => &self.bltree,
        }
    }

    fn tree_mut(&mut self, which: TreeId) -> &mut Tree {
        match which {
            TreeId::L => &mut self.ltree,
            TreeId::D => &mut self.dtree,
            TreeId::Bl => &mut self.bltree,
        }
    }

    fn build_tree(&mut self, which: TreeId) {
        let elems = self.tree(which).elems;
        let mut max_code: isize = -1;
        self.heap_len = 0;
        self.heap_max = HEAP_SIZE;
        for n in 0..elems {
            if self.tree(which).freq[n] != 0 {
                self.heap_len += 1;
                self.heap[self.heap_len] = n;
                max_code = n as isize;
                self.depth[n] = 0;
            } else {
                self.tree_mut(which).len[n] = 0;
            }
        }
        // At least two codes of non-zero frequency.
        while self.heap_len < 2 {
            let new = if max_code < 2 {
                max_code += 1;
                max_code as usize
            } else {
                0
            };
            self.heap_len += 1;
            self.heap[self.heap_len] = new;
            self.tree_mut(which).freq[new] = 1;
            self.depth[new] = 0;
            self.opt_len = self.opt_len.wrapping_sub(1);
            if let Some(stree) = self.static_tree(which) {
                self.static_len = self.static_len.wrapping_sub(u64::from(stree[new].len));
            }
        }
        let max_code = max_code as usize;
        self.tree_mut(which).max_code = max_code;
        for n in (1..=self.heap_len / 2).rev() {
            self.pqdownheap(which, n);
        }
        let mut node = elems;
        loop {
            // pqremove
            let n = self.heap[1];
            self.heap[1] = self.heap[self.heap_len];
            self.heap_len -= 1;
            self.pqdownheap(which, 1);
            let m = self.heap[1];
            self.heap_max -= 1;
            self.heap[self.heap_max] = n;
            self.heap_max -= 1;
            self.heap[self.heap_max] = m;
            let tree = self.tree_mut(which);
            tree.freq[node] = tree.freq[n] + tree.freq[m];
            tree.dad[n] = node as u16;
            tree.dad[m] = node as u16;
            self.depth[node] = self.depth[n].max(self.depth[m]) + 1;
            self.heap[1] = node;
            node += 1;
            self.pqdownheap(which, 1);
            if self.heap_len < 2 {
                break;
            }
        }
        self.heap_max -= 1;
        self.heap[self.heap_max] = self.heap[1];
        self.gen_bitlen(which);
        let tree = self.tree(which);
        let codes = gen_codes(&tree.len, max_code, &self.bl_count);
        let tree = self.tree_mut(which);
        tree.code[..=max_code].copy_from_slice(&codes[..=max_code]);
    }

    fn static_tree(&self, which: TreeId) -> Option<&[Code]> {
        match which {
            TreeId::L => Some(&self.tables.static_ltree),
            TreeId::D => Some(&self.tables.static_dtree),
            TreeId::Bl => None,
        }
    }

    fn extra_bits(which: TreeId) -> (&'static [u8], usize) {
        match which {
            TreeId::L => (&EXTRA_LBITS, LITERALS + 1),
            TreeId::D => (&EXTRA_DBITS, 0),
            TreeId::Bl => (&EXTRA_BLBITS, 0),
        }
    }

    fn gen_bitlen(&mut self, which: TreeId) {
        let (extra, base) = Self::extra_bits(which);
        let max_length = self.tree(which).max_length;
        let max_code = self.tree(which).max_code;
        self.bl_count = [0; MAX_BITS + 1];
        let root = self.heap[self.heap_max];
        self.tree_mut(which).len[root] = 0;
        let mut overflow = 0i32;
        let mut h = self.heap_max + 1;
        while h < HEAP_SIZE {
            let n = self.heap[h];
            let tree = self.tree(which);
            let mut bits = tree.len[tree.dad[n] as usize] as usize + 1;
            if bits > max_length {
                bits = max_length;
                overflow += 1;
            }
            self.tree_mut(which).len[n] = bits as u16;
            h += 1;
            if n > max_code {
                continue; // not a leaf
            }
            self.bl_count[bits] += 1;
            let xbits = if n >= base { extra[n - base] as u64 } else { 0 };
            let f = u64::from(self.tree(which).freq[n]);
            self.opt_len = self.opt_len.wrapping_add(f * (bits as u64 + xbits));
            if let Some(stree) = self.static_tree(which) {
                let slen = u64::from(stree[n].len);
                self.static_len = self.static_len.wrapping_add(f * (slen + xbits));
            }
        }
        if overflow == 0 {
            return;
        }
        loop {
            let mut bits = max_length - 1;
            while self.bl_count[bits] == 0 {
                bits -= 1;
            }
            self.bl_count[bits] -= 1;
            self.bl_count[bits + 1] += 2;
            self.bl_count[max_length] -= 1;
            overflow -= 2;
            if overflow <= 0 {
                break;
            }
        }
        let mut h = HEAP_SIZE;
        for bits in (1..=max_length).rev() {
            let mut n = self.bl_count[bits];
            while n != 0 {
                h -= 1;
                let m = self.heap[h];
                if m > max_code {
                    continue;
                }
                let tree = self.tree_mut(which);
                if tree.len[m] as usize != bits {
                    let delta = (bits as i64 - tree.len[m] as i64) * tree.freq[m] as i64;
                    tree.len[m] = bits as u16;
                    self.opt_len = (self.opt_len as i64).wrapping_add(delta) as u64;
                }
                n -= 1;
            }
        }
    }

    /// Counts the bit-length codes needed to send `which`'s code lengths.
    fn scan_tree(&mut self, which: TreeId) {
        let max_code = self.tree(which).max_code;
        for sym in length_symbols(&self.tree(which).len[..=max_code]) {
            self.bltree.freq[sym.code()] += 1;
        }
    }

    fn send_code(&mut self, which: TreeId, c: usize) {
        let (code, len) = {
            let t = self.tree(which);
            (t.code[c], t.len[c])
        };
        self.bits.send_bits(u32::from(code), len as usize);
    }

    /// Sends `which`'s code lengths with the bit-length tree.
    fn send_tree(&mut self, which: TreeId) {
        let max_code = self.tree(which).max_code;
        for sym in length_symbols(&self.tree(which).len[..=max_code]) {
            self.send_code(TreeId::Bl, sym.code());
            if let Some((value, bits)) = sym.extra() {
                self.bits.send_bits(value, bits);
            }
        }
    }

    fn build_bl_tree(&mut self) -> usize {
        self.scan_tree(TreeId::L);
        self.scan_tree(TreeId::D);
        self.build_tree(TreeId::Bl);
        let mut max_blindex = BL_CODES - 1;
        while max_blindex >= 3 {
            if self.bltree.len[BL_ORDER[max_blindex]] != 0 {
                break;
            }
            max_blindex -= 1;
        }
        self.opt_len = self
            .opt_len
            .wrapping_add(3 * (max_blindex as u64 + 1) + 5 + 5 + 4);
        max_blindex
    }

    fn compress_block(&mut self, use_static: bool) {
        let mut dx = 0;
        for lx in 0..self.last_lit {
            let lc = self.l_buf[lx] as usize;
            if !self.is_match[lx] {
                self.send_symbol(use_static, true, lc);
            } else {
                let code = self.tables.length_code[lc] as usize;
                self.send_symbol(use_static, true, code + LITERALS + 1);
                let extra = EXTRA_LBITS[code] as usize;
                if extra != 0 {
                    let v = lc - self.tables.base_length[code] as usize;
                    self.bits.send_bits(v as u32, extra);
                }
                let dist = self.d_buf[dx] as usize;
                dx += 1;
                let code = self.tables.d_code(dist);
                self.send_symbol(use_static, false, code);
                let extra = EXTRA_DBITS[code] as usize;
                if extra != 0 {
                    let v = dist - self.tables.base_dist[code] as usize;
                    self.bits.send_bits(v as u32, extra);
                }
            }
        }
        self.send_symbol(use_static, true, END_BLOCK);
    }

    fn send_symbol(&mut self, use_static: bool, literal_tree: bool, c: usize) {
        let (code, len) = match (use_static, literal_tree) {
            (true, true) => (
                self.tables.static_ltree[c].code,
                self.tables.static_ltree[c].len,
            ),
            (true, false) => (
                self.tables.static_dtree[c].code,
                self.tables.static_dtree[c].len,
            ),
            (false, true) => (self.ltree.code[c], self.ltree.len[c]),
            (false, false) => (self.dtree.code[c], self.dtree.len[c]),
        };
        self.bits.send_bits(u32::from(code), len as usize);
    }

    fn flush_block(&mut self, buf: Option<usize>, stored_len: usize, eof: bool) {
        self.build_tree(TreeId::L);
        self.build_tree(TreeId::D);
        let max_blindex = self.build_bl_tree();
        let mut opt_lenb = (self.opt_len.wrapping_add(3 + 7)) >> 3;
        let static_lenb = (self.static_len.wrapping_add(3 + 7)) >> 3;
        if static_lenb <= opt_lenb {
            opt_lenb = static_lenb;
        }
        let eof_bit = u32::from(eof);
        match buf {
            Some(start) if stored_len as u64 + 4 <= opt_lenb => {
                self.bits.send_bits(eof_bit, 3); // stored block
                self.bits.windup();
                self.bits
                    .out
                    .extend_from_slice(&(stored_len as u16).to_le_bytes());
                self.bits
                    .out
                    .extend_from_slice(&(!(stored_len as u16)).to_le_bytes());
                let end = start + stored_len;
                let bytes = self.window[start..end].to_vec();
                self.bits.out.extend_from_slice(&bytes);
            }
            _ if static_lenb == opt_lenb => {
                self.bits.send_bits((1 << 1) + eof_bit, 3);
                self.compress_block(true);
            }
            _ => {
                self.bits.send_bits((2 << 1) + eof_bit, 3);
                let lcodes = self.ltree.max_code + 1;
                let dcodes = self.dtree.max_code + 1;
                let blcodes = max_blindex + 1;
                self.bits.send_bits(lcodes as u32 - 257, 5);
                self.bits.send_bits(dcodes as u32 - 1, 5);
                self.bits.send_bits(blcodes as u32 - 4, 4);
                for &code in BL_ORDER.iter().take(blcodes) {
                    let len = self.bltree.len[code];
                    self.bits.send_bits(u32::from(len), 3);
                }
                self.send_tree(TreeId::L);
                self.send_tree(TreeId::D);
                self.compress_block(false);
            }
        }
        self.init_block();
        if eof {
            self.bits.windup();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TreeId {
    L,
    D,
    Bl,
}

/// A streaming compressor writing what `gzip -n -<level>` writes for the bytes given to it.
pub struct GzipWriter<W: Write> {
    deflate: Box<Deflate>,
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    size: u64,
    out: Option<W>,
    written: u64,
}

impl<W: Write> GzipWriter<W> {
    /// Starts a gzip member at `level` (4 to 9) written to `out`.
    pub fn new(level: u32, mut out: W) -> io::Result<Self> {
        if !supports_level(level) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("GNU gzip level {level} cannot be re-created (levels 4 to 9 can)"),
            ));
        }
        let xfl = if level == 9 { 2 } else { 0 };
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])?;
        Ok(GzipWriter {
            deflate: Box::new(Deflate::new(level)),
            pending: Vec::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            out: Some(out),
            written: 10,
        })
    }

    fn drain(&mut self) -> io::Result<()> {
        if !self.deflate.bits.out.is_empty() {
            let out = self.out.as_mut().expect("writer present until finish");
            out.write_all(&self.deflate.bits.out)?;
            self.written += self.deflate.bits.out.len() as u64;
            self.deflate.bits.out.clear();
        }
        Ok(())
    }

    /// Ends the member (last block, CRC-32, length) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let mut input = &self.pending[..];
        self.deflate.run(&mut input, true);
        debug_assert!(input.is_empty());
        self.pending.clear();
        self.deflate.finish();
        self.drain()?;
        let crc = std::mem::take(&mut self.crc).finalize();
        let mut out = self.out.take().expect("writer present until finish");
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&(self.size as u32).to_le_bytes())?;
        self.written += 8;
        Ok(out)
    }

    /// Bytes written so far (header included).
    pub fn bytes_out(&self) -> u64 {
        self.written
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        self.size += data.len() as u64;
        // A window at a time, so that what waits for a whole read stays below two windows
        // whatever the size of one write.
        for piece in data.chunks(WINDOW_SIZE) {
            self.pending.extend_from_slice(piece);
            let mut input = &self.pending[..];
            self.deflate.run(&mut input, false);
            let used = self.pending.len() - input.len();
            self.pending.drain(..used);
            self.drain()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `gzip -n -<level>` of `data`.
pub fn gzip_bytes(level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut w = GzipWriter::new(level, Vec::new())?;
    w.write_all(data)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// Text with repeats near and far, a stretch of noise and a long zero run: every kind of
    /// block (stored, static, dynamic) and the early block end get exercised.
    fn sample(n: usize, seed: u64) -> Vec<u8> {
        let words = [
            "gzip ", "deflate ", "window ", "the ", "and ", "man ", "page\n", ".TH ", "0x1f ",
        ];
        let mut x = seed;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match (x >> 60) as u8 {
                0 => out.extend(std::iter::repeat_n(0u8, (x >> 40) as usize % 5000)),
                1 => out.extend((0..(x >> 44) as usize % 3000).map(|i| (x >> (i % 56)) as u8)),
                _ => out.extend_from_slice(words[(x >> 32) as usize % words.len()].as_bytes()),
            }
        }
        out.truncate(n);
        out
    }

    /// What the system's GNU gzip (Debian's essential package `gzip`) writes.
    fn system_gzip(level: u32, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gzip")
            .arg("-n")
            .arg(format!("-{level}"))
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("GNU gzip runs (Debian package gzip)");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = data.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("gzip finishes");
        feeder
            .join()
            .expect("feeder thread")
            .expect("gzip reads its input");
        assert!(out.status.success(), "gzip failed");
        out.stdout
    }

    #[test]
    fn same_bytes_as_gnu_gzip() {
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"a".to_vec(),
            sample(10_000, 1),
            sample(300_000, 2),
            sample(1_500_000, 3),
            vec![0u8; 200_000],
        ];
        for data in &cases {
            for level in [4, 6, 8, 9] {
                let mine = gzip_bytes(level, data).unwrap();
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&mine[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(&back, data, "round trip at level {level}");
                assert!(
                    mine == system_gzip(level, data),
                    "level {level}, {} bytes: differs from gzip",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let data = sample(400_000, 7);
        let whole = gzip_bytes(9, &data).unwrap();
        let mut w = GzipWriter::new(9, Vec::new()).unwrap();
        let mut at = 0;
        let mut step = 1;
        while at < data.len() {
            step = step * 7 % 70_001 + 1;
            let end = (at + step).min(data.len());
            w.write_all(&data[at..end]).unwrap();
            at = end;
        }
        // Only whole reads are compressed before the end: at most a window's worth waits.
        assert!(w.bytes_out() as usize > whole.len() / 2);
        assert_eq!(w.finish().unwrap(), whole);
    }

    #[test]
    fn fast_levels_are_refused() {
        for level in [0, 1, 2, 3, 10] {
            assert!(!supports_level(level));
            assert!(gzip_bytes(level, b"x").is_err());
        }
    }
}
