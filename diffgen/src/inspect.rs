//! `diffgen inspect <file.swu>`: a report of members, sw-description artifacts, signature and
//! hash checks, as text for people or JSON for scripts. Exit code 1 when SWUpdate would reject
//! the archive.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use swu::swdesc::Section;
use swu::{ArtifactCheck, MemberStatus, Swu};

use crate::cli::InspectArgs;
use crate::failure::Failure;

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    size: u64,
    signed: bool,
    sw_description: SwDescriptionInfo,
    members: Vec<MemberInfo>,
    trailer_offset: u64,
    bytes_after_trailer: usize,
    artifacts: Vec<ArtifactInfo>,
    bootenv: Vec<BootenvInfo>,
    warnings: Vec<String>,
    problems: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct SwDescriptionInfo {
    syntax: String,
    size: u64,
}

#[derive(Debug, Serialize)]
struct MemberInfo {
    index: usize,
    name: String,
    format: &'static str,
    header_offset: u64,
    data_offset: u64,
    size: u64,
    /// "ok", "bad" or "none" (newc has no checksum).
    checksum: &'static str,
    sha256: String,
}

#[derive(Debug, Serialize)]
struct ArtifactInfo {
    section: &'static str,
    filename: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    compressed: String,
    encrypted: bool,
    installed_directly: bool,
    device: Option<String>,
    path: Option<String>,
    size: Option<i64>,
    sha256: Option<String>,
    /// "present" or "missing" (null when the entry names no file).
    member: Option<&'static str>,
    /// "ok", "mismatch", "malformed", "absent" or null when there is nothing to check.
    hash: Option<&'static str>,
    selections: Vec<String>,
    line: usize,
    column: usize,
}

#[derive(Debug, Serialize)]
struct BootenvInfo {
    name: String,
    value: String,
    selections: Vec<String>,
}

/// What a file is, from its first bytes.
enum FileType {
    Swu,
    Delta,
    Ext,
}

fn file_type(path: &Path) -> Result<FileType, Failure> {
    let mut f = File::open(path)
        .map_err(|e| Failure::new(format!("cannot read: {e} ({})", path.display())))?;
    let mut head = vec![0u8; 1082];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot read: {e} ({})",
                    path.display()
                )))
            }
        }
    }
    let head = &head[..n];
    if head.starts_with(b"070701") || head.starts_with(b"070702") {
        Ok(FileType::Swu)
    } else if head.starts_with(delta::archive::MAGIC) {
        Ok(FileType::Delta)
    } else if head.len() >= 1082 && head[1080..1082] == [0x53, 0xEF] {
        Ok(FileType::Ext)
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("swu"))
    {
        // Named like an archive: let the cpio reader say precisely what is wrong.
        Ok(FileType::Swu)
    } else {
        Err(Failure::new(format!(
            "not a .swu (cpio newc/crc), an ADU delta (PAMZ) or an ext2/3/4 image ({})",
            path.display()
        )))
    }
}

pub fn run(args: &InspectArgs) -> Result<ExitCode, Failure> {
    let kind = file_type(&args.file)?;
    if args.html.is_some() && !matches!(kind, FileType::Delta) {
        return Err(Failure::new(format!(
            "--html is for deltas; {} is not one (diffgen create writes report.html for the deltas it makes)",
            args.file.display()
        )));
    }
    match kind {
        FileType::Delta => return inspect_delta(args),
        FileType::Ext => {
            let f = File::open(&args.file)
                .map_err(|e| Failure::new(format!("cannot read: {e} ({})", args.file.display())))?;
            return inspect_ext(f, None, args);
        }
        FileType::Swu => {}
    }
    let swu = Swu::open(&args.file)?;
    if let Some(name) = &args.member {
        return inspect_member(&swu, name, args);
    }
    let report = build(&swu);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print_text(&mut out, &report)
    };
    written.map_err(|e| Failure::new(format!("cannot write the report: {e} (stdout)")))?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn build(swu: &Swu) -> Report {
    let members = swu
        .archive
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| MemberInfo {
            index: i + 1,
            name: m.name.clone(),
            format: m.header.format.name(),
            header_offset: m.header_offset,
            data_offset: m.data_offset(),
            size: m.data_len(),
            checksum: match Swu::member_status(m) {
                MemberStatus::ChecksumOk => "ok",
                MemberStatus::NoChecksum => "none",
                MemberStatus::ChecksumBad { .. } => "bad",
            },
            sha256: m.sha256.map(|h| swu::hex::encode(&h)).unwrap_or_default(),
        })
        .collect();
    let artifacts = swu
        .inventory
        .artifacts
        .iter()
        .map(|a| {
            let check = swu.check_artifact(a);
            let member = match check {
                ArtifactCheck::NoFilename => None,
                ArtifactCheck::MissingMember => Some("missing"),
                _ => Some("present"),
            };
            let hash = match check {
                ArtifactCheck::Ok => Some("ok"),
                ArtifactCheck::HashMismatch { .. } => Some("mismatch"),
                ArtifactCheck::MalformedHash => Some("malformed"),
                ArtifactCheck::NoHash => Some("absent"),
                ArtifactCheck::NoFilename | ArtifactCheck::MissingMember => None,
            };
            ArtifactInfo {
                section: a.section.name(),
                filename: a.filename.clone(),
                kind: a.effective_kind.clone(),
                compressed: a.compressed.label().to_string(),
                encrypted: a.encrypted,
                installed_directly: a.installed_directly,
                device: a.device.clone(),
                path: a.path.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
                member,
                hash,
                selections: a.selections.clone(),
                line: a.line,
                column: a.column,
            }
        })
        .collect();
    let problems = swu.problems();
    Report {
        file: swu.path.display().to_string(),
        size: swu.archive.len,
        signed: swu.is_signed(),
        sw_description: SwDescriptionInfo {
            syntax: swu.swdesc.syntax().to_string(),
            size: swu.swdesc_bytes.len() as u64,
        },
        members,
        trailer_offset: swu.archive.trailer.header_offset,
        bytes_after_trailer: swu.archive.trailing.len(),
        artifacts,
        bootenv: swu
            .inventory
            .bootenv
            .iter()
            .map(|b| BootenvInfo {
                name: b.name.clone(),
                value: b.value.clone(),
                selections: b.selections.clone(),
            })
            .collect(),
        warnings: swu.warnings(),
        ok: problems.is_empty(),
        problems,
    }
}

fn print_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(out, "{} ({} bytes)", r.file, r.size)?;
    writeln!(
        out,
        "  sw-description: {} syntax, {} bytes",
        r.sw_description.syntax, r.sw_description.size
    )?;
    writeln!(
        out,
        "  signed: {}",
        if r.signed {
            "yes (sw-description.sig is member 2)"
        } else {
            "no"
        }
    )?;
    writeln!(
        out,
        "  trailer at byte {}, {} bytes after it",
        r.trailer_offset, r.bytes_after_trailer
    )?;
    writeln!(out, "\nMembers:")?;
    writeln!(
        out,
        "  {:>3}  {:<28} {:<6} {:>12} {:>12}  {:<8} sha256",
        "#", "name", "format", "data at", "size", "checksum"
    )?;
    for m in &r.members {
        writeln!(
            out,
            "  {:>3}  {:<28} {:<6} {:>12} {:>12}  {:<8} {}",
            m.index, m.name, m.format, m.data_offset, m.size, m.checksum, m.sha256
        )?;
    }
    writeln!(out, "\nArtifacts:")?;
    if r.artifacts.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for a in &r.artifacts {
        let mut attrs = vec![
            format!("type {}", a.kind.as_deref().unwrap_or("-")),
            format!("compressed {}", a.compressed),
        ];
        if a.encrypted {
            attrs.push("encrypted".into());
        }
        if a.installed_directly {
            attrs.push("installed-directly".into());
        }
        if let Some(d) = &a.device {
            attrs.push(format!("device {d}"));
        }
        if let Some(p) = &a.path {
            attrs.push(format!("path {p}"));
        }
        if let Some(s) = a.size {
            attrs.push(format!("size {s}"));
        }
        let status = match (a.member, a.hash) {
            (None, _) => "no filename, skipped".to_string(),
            (Some("missing"), _) => "MISSING MEMBER".to_string(),
            (_, Some("ok")) => "sha256 ok".to_string(),
            (_, Some("absent")) => "no sha256".to_string(),
            (_, Some("mismatch")) => "SHA256 MISMATCH".to_string(),
            (_, Some("malformed")) => "MALFORMED SHA256".to_string(),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {:<8} {:<28} {}  [{}]",
            a.section,
            a.filename.as_deref().unwrap_or("-"),
            attrs.join(", "),
            status
        )?;
        writeln!(
            out,
            "           line {}: {}",
            a.line,
            a.selections.join(", ")
        )?;
    }
    if !r.bootenv.is_empty() {
        writeln!(out, "\n{}:", Section::Bootenv.name())?;
        for b in &r.bootenv {
            writeln!(
                out,
                "  {} = {}  ({})",
                b.name,
                b.value,
                b.selections.join(", ")
            )?;
        }
    }
    if !r.warnings.is_empty() {
        writeln!(out, "\nWarnings:")?;
        for w in &r.warnings {
            writeln!(out, "  - {w}")?;
        }
    }
    if r.problems.is_empty() {
        writeln!(out, "\nResult: OK")?;
    } else {
        writeln!(out, "\nProblems (SWUpdate would reject this archive):")?;
        for p in &r.problems {
            writeln!(out, "  - {p}")?;
        }
        writeln!(out, "\nResult: FAILED ({} problems)", r.problems.len())?;
    }
    Ok(())
}

/// Prints a report as JSON or text.
fn emit(
    args: &InspectArgs,
    json: impl FnOnce() -> String,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", json())
    } else {
        text(&mut out)
    };
    written.map_err(|e| Failure::new(format!("cannot write the report: {e} (stdout)")))
}

fn inspect_delta(args: &InspectArgs) -> Result<ExitCode, Failure> {
    let (archive, _) = delta::read_path(&args.file, &delta::ReadLimits::default())
        .map_err(|e| Failure::new(format!("{e} ({})", args.file.display())))?;
    let inspection = delta::inspect::inspect(&archive);
    if let Some(page) = &args.html {
        let len = std::fs::metadata(&args.file)
            .map_err(|e| Failure::new(format!("cannot read: {e} ({})", args.file.display())))?
            .len();
        let html = crate::report_html::delta_page(&archive, &args.file, len);
        crate::report_html::write(page, &html)?;
    }
    emit(
        args,
        || serde_json::to_string_pretty(&inspection).expect("plain data"),
        |out| out.write_all(delta::inspect::render_text(&inspection, args.graph).as_bytes()),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The ext image at `offset`/`len` of `file` (the whole file if `None`).
fn inspect_ext(
    file: File,
    range: Option<(u64, u64)>,
    args: &InspectArgs,
) -> Result<ExitCode, Failure> {
    let what = args.member.as_deref().map_or_else(
        || args.file.display().to_string(),
        |m| format!("{}: member {m}", args.file.display()),
    );
    let fail = |e: ext4::Error| Failure::new(format!("{e} ({what})"));
    let fs = match range {
        Some((offset, len)) => ext4::Filesystem::open_at(file, offset, len),
        None => ext4::Filesystem::open(file),
    }
    .map_err(fail)?;
    let report = fs.report().map_err(fail)?;
    emit(
        args,
        || serde_json::to_string_pretty(&report).expect("plain data"),
        |out| {
            let mut buf = Vec::new();
            report.write_text(&mut buf)?;
            out.write_all(&buf)
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The ext image in a member: read in place, or decompressed into a temp file first.
fn inspect_member(swu: &Swu, name: &str, args: &InspectArgs) -> Result<ExitCode, Failure> {
    let entry = swu
        .archive
        .member(name)
        .ok_or_else(|| Failure::new(format!("no member \"{name}\" ({})", args.file.display())))?;
    let io_fail =
        |e: std::io::Error| Failure::new(format!("cannot read: {e} ({})", args.file.display()));
    let mut file = File::open(&args.file).map_err(io_fail)?;
    let mut head = [0u8; 4];
    let n = swu::cpio::member_reader(&mut file, entry)
        .and_then(|mut r| r.read(&mut head))
        .map_err(io_fail)?;
    let raw = || -> Result<_, Failure> {
        swu::cpio::member_reader(File::open(&args.file).map_err(io_fail)?, entry).map_err(io_fail)
    };
    let compressed: Option<Box<dyn Read>> = match codec::sniff(&head[..n]) {
        Some(codec::Sniffed::Gzip) => Some(codec::zlib::inflater(
            codec::zlib::Container::Gzip,
            std::io::BufReader::new(raw()?),
            true,
        )),
        Some(codec::Sniffed::Zstd) => {
            Some(codec::zstd::decoder(raw()?, None, 31).map_err(io_fail)?)
        }
        None => None,
    };
    match compressed {
        None => inspect_ext(file, Some((entry.data_offset(), entry.data_len())), args),
        Some(mut reader) => {
            let dir = cleanup::TempDir::new_in(&std::env::temp_dir(), "diffgen-inspect-")
                .map_err(io_fail)?;
            let path = dir.path().join("image");
            let mut out = File::create(&path).map_err(io_fail)?;
            std::io::copy(&mut reader, &mut out).map_err(|e| {
                Failure::new(format!(
                    "cannot decompress member \"{name}\": {e} ({})",
                    args.file.display()
                ))
            })?;
            inspect_ext(File::open(&path).map_err(io_fail)?, None, args)
        }
    }
}
