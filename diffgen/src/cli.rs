//! Command-line definitions of the subcommand form (`diffgen <command> ...`). The
//! DiffGenTool-compatible positional form is handled in `legacy`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Binary deltas between SWUpdate archives (.swu), compatible with Azure Device Update's DiffGenTool";

const LONG_ABOUT: &str = "\
diffgen takes the .swu a device runs (source) and a new .swu (target) and produces a small delta \
that rebuilds the target byte for byte on the device, in Azure Device Update's diff format.

It accepts DiffGenTool's positional command lines unchanged, so existing release scripts keep \
working, and adds subcommands for looking inside archives.";

const AFTER_HELP: &str = "\
DiffGenTool-compatible form (also used when the binary is installed as 'DiffGenTool'):
  diffgen <source.swu> <target.swu> <output delta> <log folder> <working folder> [<recompressed target.swu> [\"<signing command>\"]]
  diffgen <source.swu> <target.swu> <output delta> <working folder>
    (logs then go to <working folder>/logs/<n>, the first n not yet used)

Examples:
  diffgen inspect release-2.0.swu
  diffgen inspect --json release-2.0.swu | jq '.artifacts[].filename'
  diffgen v1.swu v2.swu v1-to-v2.diff logs/ work/ v2-recompressed.swu \"./scripts/sign-cms.sh\"

Every failure prints one line 'Error: <what> (<where>)' on stderr and exits with code 1.";

#[derive(Debug, Parser)]
#[command(name = "diffgen", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what is inside a .swu: members, sw-description artifacts, signature, hash checks.
    ///
    /// Lists every cpio member (offsets, sizes, crc checksum status), the artifacts that
    /// sw-description declares in every layout (images, files, scripts, bootenv; board and
    /// collection sections; links), whether the archive is signed, and whether every
    /// referenced member exists and matches its sha256. Exits 1 if SWUpdate would reject
    /// the archive for any of these reasons.
    Inspect(InspectArgs),

    /// Recompress a target .swu deterministically and re-sign it.
    ///
    /// Every member sw-description declares compressed ("zlib", true or "zstd") is
    /// decompressed and compressed again with fixed, recorded parameters, so that a device can
    /// rebuild it byte for byte from its content. The sw-description is edited in place
    /// (sha256, compressed, filename; every other byte kept) and re-signed with --sign.
    /// Import the output into your update service: deltas are built against it.
    ///
    /// Profiles: zstd (default; needs diffgen's applier on the device) or gzip (zlib level 9,
    /// memLevel 9: what ADU's stock delta processor can rebuild).
    #[command(after_help = RECOMPRESS_EXAMPLES)]
    Recompress(RecompressArgs),
}

const RECOMPRESS_EXAMPLES: &str = "\
Examples:
  diffgen recompress v2.swu v2-recompressed.swu --sign ./scripts/sign-cms.sh
  diffgen recompress v2.swu v2-adu.swu --compression gzip --sign \"./scripts/sign-rsa.sh\"
  diffgen recompress unsigned.swu out.swu --zstd-level 9

The signing command runs as `sh -c '<command> <path>'` and must create <path>.sig.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    /// zstd with recorded parameters (default)
    Zstd,
    /// gzip by zlib level 9, memLevel 9 (ADU's stock applier)
    Gzip,
}

#[derive(Debug, Args)]
pub struct RecompressArgs {
    /// The target .swu to recompress (never modified).
    pub target: PathBuf,
    /// Where to write the recompressed .swu (written atomically).
    pub output: PathBuf,
    /// Signing command; gets the new sw-description's path as last argument and must write
    /// <path>.sig (e.g. "openssl cms ...", "./scripts/sign-cms.sh").
    #[arg(long, value_name = "COMMAND")]
    pub sign: Option<String>,
    /// Compressor for the images.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: CompressionArg,
    /// zstd level (zstd profile only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: Option<i32>,
    /// Write a signed input unsigned when no --sign is given (its old signature would be
    /// invalid).
    #[arg(long)]
    pub drop_signature: bool,
    /// Keep member and file names (no .gz -> .zst renaming).
    #[arg(long)]
    pub keep_names: bool,
    /// Seconds the signing command may take before it is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub sign_timeout: u64,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .swu file to inspect.
    pub file: PathBuf,
    /// Print the report as JSON on stdout (for scripts and CI).
    #[arg(long)]
    pub json: bool,
}
