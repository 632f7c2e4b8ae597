//! `gnu_gzip LEVEL < in > out`: compresses stdin as `gzip -n -LEVEL` would (for checking the
//! codec against the real gzip on many files).
use std::io::{Read, Write};

fn main() {
    let level: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).expect("read stdin");
    match codec::gnu_gzip::gzip_bytes(level, &data) {
        Ok(out) => std::io::stdout().write_all(&out).expect("write stdout"),
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    }
}
