//! `diffgen`: binary deltas between SWUpdate archives, a drop-in replacement for Azure Device
//! Update's DiffGenTool. This binary is a thin layer over the library crates: it parses the
//! command line, runs one command, and turns every failure into one `Error: ...` line on stderr
//! with exit code 1.

mod apply_cmd;
mod check_with;
mod cli;
mod create;
mod failure;
mod inspect;
mod legacy;
mod manifest_cmd;
mod progress;
mod recompress;
mod report_html;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    // Interrupted runs remove their temp files and exit 130/143; without the handler they
    // would still stop, only less tidily, so a failure to install it is not fatal.
    if let Err(e) = cleanup::install() {
        eprintln!("Warning: cannot watch for interruption signals: {e}");
    }
    // Past a file-size limit (ulimit -f) the kernel would kill the process with SIGXFSZ;
    // ignored, the write fails with EFBIG instead and is reported like any full disk.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let args: Vec<OsString> = std::env::args_os().collect();
    let result = if legacy::is_legacy_invocation(&args, &Cli::command()) {
        legacy::run(&args)
    } else {
        match Cli::try_parse_from(&args) {
            Ok(cli) => run(cli),
            Err(e) => {
                // Help and version go to stdout with success; usage errors are failures
                // (exit 1, not clap's 2: every failure of diffgen exits 1).
                let code = if e.use_stderr() { 1 } else { 0 };
                let _ = e.print();
                return ExitCode::from(code);
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("Error: {failure}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Create(args) => create::run(&args),
        Command::Apply(args) => apply_cmd::run(&args),
        Command::Recompress(args) => recompress::run(&args),
        Command::Manifest(args) => manifest_cmd::run(&args),
        Command::CachePath(args) => manifest_cmd::cache_path(&args),
    }
}
