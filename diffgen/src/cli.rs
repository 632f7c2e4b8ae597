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
  Either form may be followed by --provider P --name N --version V --compat k=v[,k=v]
  [--manifest FILE] to write the ADU import manifest next to the delta.
  DIFFGEN_CHECK_WITH=\"<applier command>\" (and DIFFGEN_CHECK_TIMEOUT=<seconds>) in the
  environment does what `create --check-with` does: e.g. DIFFGEN_CHECK_WITH=applydiff for
  ADU's own applier.

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
    /// Show what is inside a .swu, an ext2/3/4 image or a delta.
    ///
    /// .swu: every cpio member (offsets, sizes, crc checksum status), the artifacts that
    /// sw-description declares in every layout (images, files, scripts, bootenv; board and
    /// collection sections; links), whether the archive is signed, and whether every
    /// referenced member exists and matches its sha256; exit 1 if SWUpdate would reject it.
    /// With --member NAME, the ext image inside that member (decompressed if needed).
    ///
    /// ext2/3/4 image: the filesystem summary, every file with its physical block runs, and
    /// the owner of every block (metadata, files, free): what the delta planner sees.
    ///
    /// Delta: header, source and target identity, recipe counts and bytes by type, inline
    /// assets and remainder, and the recipe graph (--graph); --html FILE also writes a page
    /// of where its bytes go.
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

    /// Create a delta that rebuilds the target SWU from the source SWU.
    ///
    /// Optionally recompresses the target first (--recompressed, --sign), then plans the
    /// delta, writes it in ADU's diff format, applies it to the source to verify that it
    /// rebuilds the target exactly (with --check-with also with the applier your devices run,
    /// e.g. ADU's applydiff), and only then moves it into place. The zstd profile needs
    /// diffgen's applier on the device; the gzip profile uses only what ADU's stock applier
    /// accepts. "auto" picks zstd if the target holds zstd payloads, gzip otherwise.
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),

    /// Rebuild a target SWU from its source SWU and a delta (the device side).
    ///
    /// Reads ADU diff files (standard v2) and diffgen's extension. The result is checked
    /// against the delta's target SHA-256 before it is moved into place; on any error there
    /// is no output. Memory stays bounded (items that must be read out of order go to temp
    /// files in --temp-dir).
    Apply(ApplyArgs),

    /// Write the Azure Device Update import manifest (v5) for a target and its deltas.
    ///
    /// The recompressed target SWU becomes the update's file; each delta becomes a related
    /// file with the Base64 SHA-256 of its source SWU (microsoft.sourceFileHash) and the
    /// microsoft/delta:1 download handler. Validated against the rules of ADU's schema before
    /// anything is written. Give --delta and --source in pairs, in the same order.
    #[command(after_help = MANIFEST_EXAMPLES)]
    Manifest(ManifestArgs),

    /// Print where ADU's agent expects a cached source SWU on a device.
    ///
    /// The agent looks for the source of a delta at
    /// /var/lib/adu/sdc/<provider>/sha256-<Base64 SHA-256 with + / = encoded as _2B _2F _3D>.
    /// Use it to pre-seed devices whose current release was not installed through ADU.
    CachePath(CachePathArgs),
}

const CREATE_EXAMPLES: &str = "\
Examples:
  diffgen create --source v1.swu --target v2-recompressed.swu -o v1-to-v2.diff
  diffgen create --source v1.swu --target v2.swu --recompressed v2-rec.swu --sign ./sign.sh -o d.diff
  diffgen create --source v1.swu --target v2-adu.swu --profile gzip -o d.diff --json
  diffgen create --source v1.swu --target v2-adu.swu --profile gzip -o d.diff \\
      --check-with /opt/adu/bin/applydiff --logs logs/
  diffgen create --source v1.0.swu --source v1.1.swu --target v2.swu -o deltas/ \\
      --provider Contoso --name Toaster --version 2.0 --compat model=toaster";

const MANIFEST_EXAMPLES: &str = "\
Examples:
  diffgen manifest --target toaster-2.0.swu \\
      --delta toaster-1.0-to-2.0.diff --source toaster-1.0.swu \\
      --provider Contoso --name Toaster --version 2.0 \\
      --compat manufacturer=contoso,model=toaster -o toaster-2.0.importmanifest.json";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// zstd if the target holds zstd payloads, gzip otherwise
    Auto,
    /// diffgen's applier (may re-create zstd payloads)
    Zstd,
    /// ADU's stock applier (never uses the zstd_compression extension)
    Gzip,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The source SWU, exactly as devices hold it. Repeat for several old releases: one
    /// delta each (the target is recompressed and decompressed once).
    #[arg(long, value_name = "FILE", required = true)]
    pub source: Vec<PathBuf>,
    /// The target SWU (recompressed already, or see --recompressed).
    #[arg(long, value_name = "FILE")]
    pub target: PathBuf,
    /// Where to write the delta (written atomically, after verification). With several
    /// sources: a folder, where each delta is named <source>-to-<target>.diff.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// Also write the import manifest (needs --provider, --name, --version, --compat);
    /// default name <target>.importmanifest.json next to the deltas.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Recompress the target into this file first and build the delta against it.
    #[arg(long, value_name = "FILE")]
    pub recompressed: Option<PathBuf>,
    /// Signing command for the recompressed target (see `diffgen recompress --help`).
    #[arg(long, value_name = "COMMAND", requires = "recompressed")]
    pub sign: Option<String>,
    /// Recompression profile when --recompressed is given.
    #[arg(long, value_enum, default_value = "zstd", requires = "recompressed")]
    pub compression: CompressionArg,
    /// Which applier the delta is for.
    #[arg(long, value_enum, default_value = "auto")]
    pub profile: ProfileArg,
    /// Working folder (decompressed contents are cached here by hash; safe to reuse).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Folder for the log, report.json, report.html (where the delta's bytes go: open it in
    /// a browser) and diff.json (and check-with.log).
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// Skip applying the delta before publishing it (not recommended).
    #[arg(long)]
    pub no_verify: bool,
    /// After diffgen's own verification, rebuild the target with the applier your devices run
    /// and write the delta only if the result equals the target byte for byte. Runs
    /// `sh -c '<COMMAND> "$@"' diffgen-check <source> <delta> <out>`: the three paths are
    /// passed as arguments (spaces are safe), the delta still at its temp path. A non-zero
    /// exit, a timeout or other bytes fail the run (exit 1, no delta). Its output goes to
    /// <logs>/check-with.log. Example, ADU's own applier for gzip-profile deltas:
    /// --check-with /opt/adu/bin/applydiff. Default: $DIFFGEN_CHECK_WITH.
    #[arg(long, value_name = "COMMAND")]
    pub check_with: Option<String>,
    /// Seconds the --check-with command may take per delta before its process group is
    /// killed [default: $DIFFGEN_CHECK_TIMEOUT, else 3600].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub check_timeout: Option<u64>,
    /// Working memory the planner may use for work it can size (parallel bsdiff evaluations
    /// and their suffix arrays); the input images are memory-mapped and not counted. Sizes
    /// like 512M or 4G.
    #[arg(long, value_name = "SIZE", value_parser = delta::size::parse_size,
          default_value = "2G")]
    pub memory_limit: u64,
    /// No progress display and no summary (errors are still printed). Progress is drawn only
    /// when stderr is a terminal anyway.
    #[arg(short, long)]
    pub quiet: bool,
    /// Worker threads (default: one per CPU). The delta is the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The source SWU the delta was made from.
    pub source: PathBuf,
    /// The delta.
    pub delta: PathBuf,
    /// Where to write the rebuilt target SWU.
    pub target: PathBuf,
    /// Folder for temp files (default: the system's temp folder).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// A file or block device that may hold an item of the delta (e.g. the running rootfs
    /// partition instead of decompressing the source image); used only if its hash matches.
    #[arg(long = "known-item", value_name = "FILE")]
    pub known_items: Vec<PathBuf>,
    /// Memory the applier may give to its recipe book and decoder state (zstd windows and
    /// bases, bspatch blocks); a delta that needs more is refused before anything is written.
    /// Takes sizes like 64M or 1G [default: 48M].
    #[arg(long, value_name = "SIZE", value_parser = delta::size::parse_size)]
    pub memory_budget: Option<u64>,
    /// Refuse a delta whose target is larger than this (e.g. the size of the partition that
    /// will receive it). The free space of the output's filesystem is always checked.
    #[arg(long, value_name = "SIZE", value_parser = delta::size::parse_size)]
    pub max_target_size: Option<u64>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

impl CreateArgs {
    pub fn sources(&self) -> impl Iterator<Item = &PathBuf> {
        self.source.iter()
    }
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The (recompressed) target SWU, as you import it.
    #[arg(long, value_name = "FILE")]
    pub target: PathBuf,
    /// A delta file (repeat, paired in order with --source).
    #[arg(long, value_name = "FILE")]
    pub delta: Vec<PathBuf>,
    /// The source SWU of the delta at the same position, exactly as devices hold it.
    #[arg(long, value_name = "FILE")]
    pub source: Vec<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Where to write the manifest (written atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// The update's identity and installation step, for import manifests.
#[derive(Debug, Args, Clone)]
pub struct IdentityArgs {
    /// Update provider (1-64 of a-z A-Z 0-9 . -); devices look cached sources up under it.
    #[arg(long)]
    pub provider: Option<String>,
    /// Update name (1-64 of a-z A-Z 0-9 . -).
    #[arg(long)]
    pub name: Option<String>,
    /// Update version: 2 to 4 numbers, e.g. 2.0 or 2024.11.8.
    #[arg(long)]
    pub version: Option<String>,
    /// A compatibility set, key=value[,key=value] (1-5 properties); repeat for up to 10 sets.
    #[arg(long = "compat", value_name = "KEY=VALUE,...")]
    pub compat: Vec<String>,
    /// Installation step handler.
    #[arg(long, default_value = manifest::DEFAULT_STEP_HANDLER)]
    pub handler: String,
    /// Extra handler property (repeatable); installedCriteria defaults to the version and
    /// swuFileName to the target's file name.
    #[arg(long = "handler-property", value_name = "KEY=VALUE")]
    pub handler_property: Vec<String>,
    /// Update description (1-512 characters).
    #[arg(long)]
    pub description: Option<String>,
    /// createdDateTime (ISO 8601); default: now, or SOURCE_DATE_EPOCH when set.
    #[arg(long, value_name = "ISO8601")]
    pub created: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["source", "hash"])))]
pub struct CachePathArgs {
    /// The source SWU as the device holds it.
    pub source: Option<PathBuf>,
    /// The source's Base64 SHA-256 instead of the file (as in microsoft.sourceFileHash).
    #[arg(long, value_name = "BASE64")]
    pub hash: Option<String>,
    /// The update provider of the NEW update (the agent looks sources up under it).
    #[arg(long)]
    pub provider: String,
    /// Cache root instead of /var/lib/adu/sdc (e.g. a device image being prepared).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .swu, ext2/3/4 image or delta to inspect.
    pub file: PathBuf,
    /// Inspect the ext image in this member of the .swu.
    #[arg(long, value_name = "NAME")]
    pub member: Option<String>,
    /// For deltas: list every recipe (the recipe graph).
    #[arg(long)]
    pub graph: bool,
    /// Print the report as JSON on stdout (for scripts and CI).
    #[arg(long)]
    pub json: bool,
    /// For deltas: also write a self-contained HTML page of where the delta's bytes go
    /// (treemap and table by blob and recipe; a delta holds no file paths).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}
