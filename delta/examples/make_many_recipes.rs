//! Writes a delta with many recipes, to measure the applier's memory for large cookbooks:
//!
//! ```text
//! make_many_recipes <folder> <pieces>
//! ```
//!
//! The source is `pieces` distinct 512-byte blocks; the target is the blocks in another order,
//! made as chains (1000 parts each) of one `slice` recipe per block, chained again.

use std::fs;
use std::path::Path;

use delta::writer::{DeltaBuilder, Profile};
use delta::{Item, Recipe};

const PIECE: usize = 512;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).ok_or("folder")?);
    let pieces: usize = args.get(2).ok_or("pieces")?.parse()?;
    fs::create_dir_all(dir)?;
    let mut source = Vec::with_capacity(pieces * PIECE);
    for i in 0..pieces {
        let mut block = [0u8; PIECE];
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        block[8..].fill((i % 251) as u8);
        source.extend_from_slice(&block);
    }
    // A fixed permutation: stride through the blocks.
    let stride = 7919 % pieces.max(1);
    let order: Vec<usize> = (0..pieces)
        .map(|k| (k * stride.max(1) + k / 1000) % pieces)
        .collect();
    let mut target = Vec::with_capacity(source.len());
    for &i in &order {
        target.extend_from_slice(&source[i * PIECE..(i + 1) * PIECE]);
    }
    let item = Item::of_bytes;
    let source_item = item(&source);
    let mut b = DeltaBuilder::new(item(&target), source_item, Profile::Gzip);
    let mut groups = Vec::new();
    for (g, chunk) in order.chunks(1000).enumerate() {
        let mut parts = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let piece = item(&source[i * PIECE..(i + 1) * PIECE]);
            b.add_recipe(
                piece,
                Recipe::Slice {
                    offset: (i * PIECE) as u64,
                    whole: source_item,
                },
            )?;
            parts.push(piece);
        }
        let start = g * 1000 * PIECE;
        let group = item(&target[start..start + chunk.len() * PIECE]);
        b.add_recipe(group, Recipe::Chain(parts))?;
        groups.push(group);
    }
    b.add_recipe(item(&target), Recipe::Chain(groups))?;
    let bytes = b.to_bytes()?;
    fs::write(dir.join("source"), &source)?;
    fs::write(dir.join("delta.diff"), &bytes)?;
    println!(
        "{pieces} pieces: source {} bytes, delta {} bytes",
        source.len(),
        bytes.len()
    );
    Ok(())
}
