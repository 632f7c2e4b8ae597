//! `diffgen recompress`: the CLI over the `recompress` library, with a text or JSON summary.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use recompress::{Options, Profile, Report};
use serde::Serialize;

use crate::cli::{CompressionArg, RecompressArgs};
use crate::failure::Failure;

#[derive(Serialize)]
struct Summary<'a> {
    input: String,
    output: String,
    output_size: u64,
    output_sha256: String,
    signed: bool,
    resigned: bool,
    members: Vec<MemberSummary<'a>>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct MemberSummary<'a> {
    original_name: &'a str,
    name: &'a str,
    from: &'a str,
    profile: ProfileSummary,
    original_size: u64,
    content_size: u64,
    content_sha256: String,
    size: u64,
    sha256: String,
}

/// The parameters a device needs to re-create the compressed bytes.
#[derive(Serialize)]
#[serde(tag = "compressor", rename_all = "lowercase")]
enum ProfileSummary {
    Zstd {
        level: i32,
        checksum: bool,
        zstd_version: String,
    },
    Gzip {
        level: i32,
        mem_level: i32,
        window_bits: i32,
        zlib_version: String,
    },
}

fn profile_summary(p: &Profile) -> ProfileSummary {
    match p {
        Profile::Zstd(z) => ProfileSummary::Zstd {
            level: z.level,
            checksum: z.checksum,
            zstd_version: codec::zstd::version_string(z.version),
        },
        Profile::Gzip(g) => ProfileSummary::Gzip {
            level: g.level,
            mem_level: codec::zlib::MEM_LEVEL,
            window_bits: 15,
            zlib_version: codec::zlib::zlib_version(),
        },
    }
}

pub fn options(args: &RecompressArgs) -> Result<Options, Failure> {
    let profile = match (args.compression, args.zstd_level) {
        (CompressionArg::Zstd, level) => Profile::zstd(level.unwrap_or(3)),
        (CompressionArg::Gzip, None) => Profile::gzip(),
        (CompressionArg::Gzip, Some(_)) => return Err(Failure::new(
            "--zstd-level applies to the zstd profile only (the gzip profile is always level 9)",
        )),
    };
    Ok(Options {
        profile,
        signing_command: args.sign.clone(),
        signing_timeout: Duration::from_secs(args.sign_timeout),
        drop_signature: args.drop_signature,
        keep_names: args.keep_names,
    })
}

/// Runs recompression; input and output must differ.
pub fn execute(target: &Path, output: &Path, options: &Options) -> Result<Report, Failure> {
    if let (Ok(a), Ok(b)) = (target.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(Failure::new(format!(
                "the output is the input; inputs are never overwritten ({})",
                output.display()
            )));
        }
    }
    recompress::recompress(target, output, options).map_err(|e| Failure::new(e.to_string()))
}

pub fn run(args: &RecompressArgs) -> Result<ExitCode, Failure> {
    let options = options(args)?;
    let report = execute(&args.target, &args.output, &options)?;
    for w in &report.warnings {
        eprintln!("Warning: {w}");
    }
    if args.json {
        let json = serde_json::to_string_pretty(&summary(&report))
            .map_err(|e| Failure::new(format!("cannot render JSON: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(r: &Report) -> Summary<'_> {
    Summary {
        input: r.input.display().to_string(),
        output: r.output.display().to_string(),
        output_size: r.output_len,
        output_sha256: swu::hex::encode(&r.output_sha256),
        signed: r.signed,
        resigned: r.resigned,
        members: r
            .members
            .iter()
            .map(|m| MemberSummary {
                original_name: &m.original_name,
                name: &m.name,
                from: m.from,
                profile: profile_summary(&m.profile),
                original_size: m.original_len,
                content_size: m.content_len,
                content_sha256: swu::hex::encode(&m.content_sha256),
                size: m.compressed_len,
                sha256: swu::hex::encode(&m.sha256),
            })
            .collect(),
        warnings: &r.warnings,
    }
}

/// The human summary, also written to the log folder by the DiffGenTool form.
pub fn text(r: &Report) -> String {
    let mut s = format!(
        "Recompressed {} -> {} ({} bytes, sha256 {})\n",
        r.input.display(),
        r.output.display(),
        r.output_len,
        swu::hex::encode(&r.output_sha256)
    );
    if r.members.is_empty() {
        s.push_str("  no compressed artifacts: members copied unchanged\n");
    }
    for m in &r.members {
        let how = match &m.profile {
            Profile::Zstd(z) => format!(
                "zstd -{} (zstd {})",
                z.level,
                codec::zstd::version_string(z.version)
            ),
            Profile::Gzip(g) => format!("gzip -{} (zlib {})", g.level, codec::zlib::zlib_version()),
        };
        s.push_str(&format!(
            "  {} ({}, {} bytes) -> {} ({}, {} bytes); content {} bytes\n",
            m.original_name, m.from, m.original_len, m.name, how, m.compressed_len, m.content_len
        ));
    }
    s.push_str(match (r.signed, r.resigned) {
        (true, true) => "  signed: yes (new signature)\n",
        (true, false) => "  signed: yes (sw-description unchanged, signature kept)\n",
        (false, _) => "  signed: no\n",
    });
    s
}
