//! `secourir audit verify`: every event of a data directory's audit trail checked, its
//! signature and its link to the one before; the first event changed, removed or reordered is
//! named with its line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};

/// Options of `secourir audit`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check every signature and every link of the trail; exit 1 naming the first event
    /// changed, removed or reordered.
    Verify {
        /// The platform's data directory (its trail is in `audit/`).
        #[arg(long, default_value = "var")]
        data_dir: PathBuf,
    },
}

/// Runs `secourir audit …`.
pub fn run(args: &Args) -> ExitCode {
    match &args.command {
        AuditCommand::Verify { data_dir } => verify(data_dir),
    }
}

fn verify(data_dir: &std::path::Path) -> ExitCode {
    let dir = data_dir.join("audit");
    let key = match secourir_audit::trail::public_key(&dir) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let log = secourir_audit::trail::log_path(&dir);
    match secourir_audit::verify_file(&log, &key) {
        Ok(report) => {
            println!(
                "{}: {} events, every signature and link good (key {})",
                log.display(),
                report.events,
                key.thumbprint()
            );
            if let (Some(first), Some(last)) = (&report.first_timestamp, &report.last_timestamp) {
                println!("from {first} to {last}");
            }
            for (kind, count) in &report.by_type {
                println!("  {count:>8}  {kind}");
            }
            if let Some(head) = &report.head {
                println!("head: seq {} hash {}", head.seq, head.hash);
            }
            ExitCode::SUCCESS
        }
        Err(secourir_audit::VerifyFileError::Broken(broken)) => {
            println!(
                "{}: line {}{}: {:?}: {}",
                log.display(),
                broken.line,
                broken
                    .seq
                    .map_or_else(String::new, |s| format!(" (seq {s})")),
                broken.kind,
                broken.reason
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{}: {e}", log.display());
            ExitCode::from(2)
        }
    }
}
