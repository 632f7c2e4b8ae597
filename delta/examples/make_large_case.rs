//! Writes a synthetic large apply case for memory measurements:
//!
//! ```text
//! make_large_case <folder> <image MiB>
//! ```
//!
//! `source` is a gzip (level 9, memLevel 9) of an image; `target` the gzip of a changed image;
//! `delta.diff` rebuilds the target as: inflate the source; the new image as a chain of
//! unchanged slices, bspatch'ed regions, a zstd delta against a 8 MiB basis and an all-zero run;
//! deflate it again. `old.img` is the uncompressed source image (a "known item").

use std::fs;
use std::path::Path;
use std::sync::Arc;

use codec::zlib::{deflate_bytes, Container, DeflateParams};
use delta::writer::{DeltaBuilder, Profile};
use delta::{Item, Recipe};

fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 & 0x3f | 0x20
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).ok_or("folder")?);
    let mib: usize = args.get(2).ok_or("size")?.parse()?;
    fs::create_dir_all(dir)?;
    let n = mib << 20;
    let mut old = Vec::with_capacity(n);
    let mut seed = 1;
    while old.len() < n {
        // "files": 64 KiB of low-entropy bytes, with zero gaps
        old.extend(noise(seed, 64 << 10));
        old.extend(vec![0u8; 4096]);
        seed += 1;
    }
    old.truncate(n);
    let mut new = old.clone();
    let region = 1 << 20;
    let patched: Vec<usize> = (1..8).map(|k| k * n / 9).collect();
    for &at in &patched {
        for b in new[at..at + region].iter_mut().step_by(997) {
            *b = b.wrapping_add(1);
        }
        new[at + 5000..at + 5016].copy_from_slice(b"changed content!");
    }
    let zstd_at = n / 2 + region * 2;
    let zstd_len = 8 << 20;
    new[zstd_at + 100_000..zstd_at + 100_100].fill(b'#');
    let zero_at = n - 3 * region;
    new[zero_at..zero_at + 2 * region].fill(0);

    let gz = DeflateParams::GZIP_PROFILE;
    let source = deflate_bytes(gz, &old)?;
    let target = deflate_bytes(gz, &new)?;
    let item = Item::of_bytes;

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    b.add_recipe(
        item(&old),
        Recipe::ZlibDecompression {
            container: Container::Gzip,
            compressed: item(&source),
        },
    )?;
    let mut assets = Vec::new();
    let mut parts = Vec::new();
    let mut pos = 0usize;
    let slice_old = |b: &mut DeltaBuilder,
                     from: usize,
                     to: usize|
     -> Result<Item, Box<dyn std::error::Error>> {
        let part = item(&old[from..to]);
        b.add_recipe(
            part,
            Recipe::Slice {
                offset: from as u64,
                whole: item(&old),
            },
        )?;
        Ok(part)
    };
    let mut cuts: Vec<(usize, &str)> = patched.iter().map(|&p| (p, "bsdiff")).collect();
    cuts.push((zstd_at, "zstd"));
    cuts.push((zero_at, "zeros"));
    cuts.sort();
    for (at, kind) in cuts {
        let len = match kind {
            "zstd" => zstd_len,
            "zeros" => 2 * region,
            _ => region,
        };
        if at > pos {
            parts.push(slice_old(&mut b, pos, at)?);
        }
        let piece = item(&new[at..at + len]);
        match kind {
            "bsdiff" => {
                let patch = codec::bsdiff::diff(&old[at..at + len], &new[at..at + len])?;
                let old_part = slice_old(&mut b, at, at + len)?;
                let patch_item = item(&patch);
                assets.push((patch_item, patch));
                b.add_recipe(
                    piece,
                    Recipe::BspatchDecompression {
                        patch: patch_item,
                        old: old_part,
                    },
                )?;
            }
            "zstd" => {
                use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};
                let basis = &old[at..at + len];
                let mut enc = Encoder::with_ref_prefix(19, basis)?;
                let mut frame = vec![0u8; len + 4096];
                let mut input = InBuffer::around(&new[at..at + len]);
                let mut output = OutBuffer::around(&mut frame);
                enc.run(&mut input, &mut output)?;
                enc.finish(&mut output, true)?;
                let written = output.pos();
                frame.truncate(written);
                let basis_part = slice_old(&mut b, at, at + len)?;
                let frame_item = item(&frame);
                assets.push((frame_item, frame));
                b.add_recipe(
                    piece,
                    Recipe::ZstdDecompression {
                        compressed: frame_item,
                        basis: Some(basis_part),
                    },
                )?;
            }
            _ => {
                b.add_recipe(piece, Recipe::AllZeros)?;
            }
        }
        parts.push(piece);
        pos = at + len;
    }
    if pos < n {
        parts.push(slice_old(&mut b, pos, n)?);
    }
    let blob: Vec<u8> = assets.iter().flat_map(|(_, p)| p.clone()).collect();
    let blob_item = b.set_inline_assets(Arc::new(blob.clone()))?;
    let mut offset = 0u64;
    for (patch_item, patch) in &assets {
        b.add_recipe(
            *patch_item,
            Recipe::Slice {
                offset,
                whole: blob_item,
            },
        )?;
        offset += patch.len() as u64;
    }
    b.add_recipe(item(&new), Recipe::Chain(parts))?;
    b.add_recipe(
        item(&target),
        Recipe::ZlibCompression {
            container: Container::Gzip,
            level: 9,
            uncompressed: item(&new),
        },
    )?;
    fs::write(dir.join("source"), &source)?;
    fs::write(dir.join("old.img"), &old)?;
    fs::write(dir.join("delta.diff"), b.to_bytes()?)?;
    fs::write(
        dir.join("target.sha256"),
        format!(
            "{} {}\n",
            item(&target).hash().map(|h| h.hex()).unwrap_or_default(),
            target.len()
        ),
    )?;
    println!(
        "image {} bytes, source {} bytes, target {} bytes, inline assets {} bytes",
        n,
        source.len(),
        target.len(),
        blob.len()
    );
    Ok(())
}
