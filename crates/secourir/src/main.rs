//! `secourir`: the command line of the platform.

mod audit;
mod cisu;
mod locate;
mod national;
mod replay;
mod serve;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secourir_config::Plan;
use secourir_territory::Territory;

/// Secourir: emergency-call collection and routing for the 18 and 112.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find the commune and département of a position (or of a PIDF-LO document, or an AML SMS).
    Locate(locate::Args),
    /// Check a national configuration file; prints each problem with its line.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print the national configuration generated from the territory (the shipped
    /// `config/france.toml`).
    GenerateConfig,
    /// Simulate national traffic, surges and outages through the real core in virtual time.
    Sim(sim::Args),
    /// Run the platform: SIP (emergency calls in, call-takers' phones), media, recording, API.
    Serve(serve::ServeArgs),
    /// Feed a journal of the core's inputs (written by `serve` and `demo` in
    /// DATA/journal/) through the core again, exactly, or with another configuration.
    Replay(replay::Args),
    /// List recent calls from the platform's store.
    Calls(serve::CallsArgs),
    /// Print the CISU message (EDXL-DE envelope, createCase) the platform would send the
    /// partner for a recorded call, sent or not.
    Cisu(cisu::Args),
    /// The signed, chained audit trail of a data directory: `secourir audit verify`.
    Audit(audit::Args),
    /// The platform with simulated callers across France and simulated call-takers, so that
    /// the console and the national map come alive at once.
    Demo(serve::DemoArgs),
    /// Print the console's one-time code of now for an account with a `totp_secret` (what an
    /// authenticator application shows): for the demonstration accounts.
    Totp {
        /// The account's login.
        login: String,
        /// The configuration holding it.
        #[arg(long, default_value = "config/france.toml")]
        config: PathBuf,
    },
}

/// The national configuration shipped in the repository, built into the binary.
pub const FRANCE_TOML: &str = include_str!("../../../config/france.toml");

/// Loads and checks a configuration file; the shipped one is built in, so it needs no file.
pub fn load_plan(path: &std::path::Path) -> Result<Plan, String> {
    let text = read_config(path)?;
    plan_from_text(&text, &path.display().to_string())
}

/// The text of a configuration file; the shipped one is built in, so it needs no file.
pub fn read_config(path: &std::path::Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(_) if path == std::path::Path::new("config/france.toml") => Ok(FRANCE_TOML.to_owned()),
        Err(error) => Err(format!("{}: cannot read: {error}", path.display())),
    }
}

/// Checks a configuration's text; problems are given as `NAME:LINE:COLUMN: reason`.
pub fn plan_from_text(text: &str, name: &str) -> Result<Plan, String> {
    Plan::from_toml(text, &national::zone_facts(Territory::france())).map_err(|error| {
        error
            .problems
            .iter()
            .map(|p| format!("{name}:{}:{}: {}", p.line, p.column, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Locate(args) => locate::run(&args),
        Command::CheckConfig { file } => check_config(&file),
        Command::Sim(args) => sim::run(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Calls(args) => serve::calls(&args),
        Command::Cisu(args) => cisu::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Demo(args) => serve::demo(&args),
        Command::Totp { login, config } => totp(&login, &config),
        Command::GenerateConfig => {
            print!("{}", national::generate(Territory::france()));
            ExitCode::SUCCESS
        }
    }
}

fn totp(login: &str, config: &std::path::Path) -> ExitCode {
    let plan = match load_plan(config) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let secret = plan
        .call_taker(login)
        .and_then(|(_, t)| t.totp_secret.clone());
    let Some(secret) = secret else {
        eprintln!(
            "{login}: no such account with a totp_secret in {}",
            config.display()
        );
        return ExitCode::from(2);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("{}", secourir_server::totp_code(&secret, now));
    ExitCode::SUCCESS
}

fn check_config(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}: cannot read: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    let territory = Territory::france();
    match Plan::from_toml(&text, &national::zone_facts(territory)) {
        Ok(plan) => {
            let agents_day: u32 = plan.ctas.iter().map(|c| c.staffing.day).sum();
            println!(
                "{}: ok — {} CTA, {} zones, capacity {} calls ({} reserved to zones), {} rule sets, {} call-takers by day",
                file.display(),
                plan.ctas.len(),
                plan.zones.len(),
                plan.capacity,
                plan.reserved_total(),
                plan.rule_sets.len(),
                agents_day
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            for problem in &error.problems {
                eprintln!(
                    "{}:{}:{}: {}",
                    file.display(),
                    problem.line,
                    problem.column,
                    problem.message
                );
            }
            eprintln!(
                "{}: refused ({} problem{})",
                file.display(),
                error.problems.len(),
                if error.problems.len() > 1 { "s" } else { "" }
            );
            ExitCode::from(1)
        }
    }
}
