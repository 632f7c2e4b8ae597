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
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .swu file to inspect.
    pub file: PathBuf,
    /// Print the report as JSON on stdout (for scripts and CI).
    #[arg(long)]
    pub json: bool,
}
