//! Fault injection: one core driven, seed by seed, with every event it accepts and the faults
//! of real telephony (phones that never answer or cannot be reached, partner services that
//! refuse, call-takers who vanish mid-call, bursts, duplicated and late events), checked after
//! every event by its own recount and by rules read off the command stream, then drained to
//! show that every call still ends once faults stop.
//!
//! A seed fixes the whole run, so a failing seed replays exactly, event for event.

mod callers;
mod chaos;
mod checker;
pub mod cluster;
mod drain;
mod driver;
mod plan;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use secourir_config::Plan;
use secourir_core::{Command, Event};

pub use checker::{Checker, Violation};
pub use plan::{Cast, FAULT_PLAN, Seat, fault_plan, prepare};

/// How long each seed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Random actions of the chaos phase (each one event, or a burst of offers).
    pub steps: u32,
    /// Rounds of five simulated seconds the liveness phase may take to end every call.
    pub drain_rounds: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            steps: 1000,
            drain_rounds: 400,
        }
    }
}

/// A kind of fault the chaos phase injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A call-taker's phone rang until the core's timeout.
    RingNoAnswer,
    /// A call-taker's phone could not be reached.
    RingUnreachable,
    /// A call-taker's phone refused the call.
    RingRefused,
    /// A phone answered a ring the core had already cancelled or moved on.
    LateAnswer,
    /// A partner service could not be reached (status 0).
    PartnerUnreachable,
    /// A partner service refused the call (busy, declined).
    PartnerRefused,
    /// A partner service hung up before answering.
    PartnerHungUpEarly,
    /// A partner service never answered at all.
    PartnerSilent,
    /// A call-taker logged out while their phone rang.
    VanishMidRing,
    /// A call-taker logged out during a conversation.
    VanishMidCall,
    /// Many offers at one instant in one zone.
    Burst,
    /// The same event fed twice (a request twice under two ids).
    Duplicate,
    /// Two picks of the same call at the same instant.
    DoublePick,
    /// An event naming a call or call-taker it does not concern.
    Stray,
    /// A CTA's queue taken out of service.
    QueueDisabled,
}

impl Fault {
    /// Every kind, in report order.
    pub const ALL: [Fault; 15] = [
        Fault::RingNoAnswer,
        Fault::RingUnreachable,
        Fault::RingRefused,
        Fault::LateAnswer,
        Fault::PartnerUnreachable,
        Fault::PartnerRefused,
        Fault::PartnerHungUpEarly,
        Fault::PartnerSilent,
        Fault::VanishMidRing,
        Fault::VanishMidCall,
        Fault::Burst,
        Fault::Duplicate,
        Fault::DoublePick,
        Fault::Stray,
        Fault::QueueDisabled,
    ];

    /// Name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RingNoAnswer => "ring without answer",
            Fault::RingUnreachable => "phone unreachable",
            Fault::RingRefused => "phone refused",
            Fault::LateAnswer => "late answer",
            Fault::PartnerUnreachable => "partner unreachable",
            Fault::PartnerRefused => "partner refused",
            Fault::PartnerHungUpEarly => "partner hung up early",
            Fault::PartnerSilent => "partner silent",
            Fault::VanishMidRing => "logout mid-ring",
            Fault::VanishMidCall => "logout mid-call",
            Fault::Burst => "burst",
            Fault::Duplicate => "duplicated event",
            Fault::DoublePick => "double pick",
            Fault::Stray => "stray event",
            Fault::QueueDisabled => "queue disabled",
        }
    }
}

/// Faults injected, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults([u64; Fault::ALL.len()]);

impl Faults {
    /// Counts one fault.
    pub fn add(&mut self, fault: Fault) {
        self.0[fault as usize] += 1;
    }

    /// Faults of this kind.
    pub fn get(&self, fault: Fault) -> u64 {
        self.0[fault as usize]
    }

    /// Faults of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn merge(&mut self, other: &Faults) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// The phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Random events and faults.
    #[default]
    Chaos,
    /// Faults stopped, everybody answers: every call must end.
    Liveness,
}

/// What one seed did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Events fed to the core, both phases.
    pub events: u64,
    /// Events of the liveness phase.
    pub liveness_events: u64,
    /// Rounds the liveness phase took.
    pub liveness_rounds: u32,
    /// Commands the core gave.
    pub commands: u64,
    /// Calls offered.
    pub calls: u64,
    /// Invariant checks: the core's recount after each event plus each stream rule evaluated.
    pub checks: u64,
    /// Faults injected.
    pub faults: Faults,
    /// FNV-1a of every event and command, as printed: equal for equal runs.
    pub hash: u64,
    /// Simulated time of the run, ms.
    pub simulated_ms: u64,
}

/// A seed that broke a rule, with where: replay it with the same seed and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The phase it failed in.
    pub phase: Phase,
    /// Index of the event after which the rule broke (from 0).
    pub index: u64,
    /// That event, as printed.
    pub event: String,
    /// The rule broken.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at event #{} ({:?} phase): {}\n  event: {}",
            self.seed, self.index, self.phase, self.message, self.event
        )
    }
}

/// One event fed and the commands it caused, for a trace.
#[derive(Debug)]
pub struct TraceLine<'a> {
    /// Index of the event in the run.
    pub index: u64,
    /// Simulated milliseconds since the run started.
    pub at_ms: u64,
    /// The instant the event was fed with.
    pub at: secourir_core::Instant,
    /// The phase.
    pub phase: Phase,
    /// The event.
    pub event: &'a Event,
    /// What it caused.
    pub commands: &'a [Command],
}

/// Where a run is, kept outside it so that a panic inside the core can still be located.
#[derive(Debug, Default)]
struct Position {
    index: u64,
    phase: Phase,
    event: String,
}

thread_local! {
    /// Where the last panic of this thread happened, when [`quiet_panics`] is on.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that prints nothing and remembers where a panic happened,
/// so that a batch names the failing seed once instead of printing a backtrace per seed.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|cell| *cell.borrow_mut() = at);
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    match PANIC_AT.with(|cell| cell.borrow_mut().take()) {
        Some(at) => format!("panic: {text} (at {at})"),
        None => format!("panic: {text}"),
    }
}

/// Runs one seed: the chaos phase then the liveness phase, checking after every event; a
/// trace, if given, sees every event and its commands.
pub fn run_seed(
    seed: u64,
    settings: Settings,
    plan: &Arc<Plan>,
    cast: &Cast,
    trace: Option<&mut dyn FnMut(&TraceLine<'_>)>,
) -> Result<SeedRun, Failure> {
    let mut position = Position::default();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        driver::Driver::new(seed, settings, plan, cast, &mut position, trace).run()
    }));
    let message = match outcome {
        Ok(Ok(run)) => return Ok(run),
        Ok(Err(violation)) => violation.0,
        Err(payload) => panic_message(payload.as_ref()),
    };
    Err(Failure {
        seed,
        phase: position.phase,
        index: position.index,
        event: position.event,
        message,
    })
}

/// What a batch of seeds did.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Seeds run.
    pub seeds: u64,
    /// Events fed, over every seed (up to the failure for a failing one).
    pub events: u64,
    /// Events of the liveness phases.
    pub liveness_events: u64,
    /// Longest liveness phase, in rounds.
    pub most_liveness_rounds: u32,
    /// Commands out.
    pub commands: u64,
    /// Calls offered.
    pub calls: u64,
    /// Invariant checks.
    pub checks: u64,
    /// Faults injected, by kind.
    pub faults: Faults,
    /// Simulated time, ms, over every seed.
    pub simulated_ms: u64,
    /// The seeds that failed, in seed order.
    pub failures: Vec<Failure>,
    /// Wall time of the batch, seconds.
    pub wall_seconds: f64,
}

impl Batch {
    fn add(&mut self, outcome: Result<SeedRun, Failure>) {
        self.seeds += 1;
        match outcome {
            Ok(run) => {
                self.events += run.events;
                self.liveness_events += run.liveness_events;
                self.most_liveness_rounds = self.most_liveness_rounds.max(run.liveness_rounds);
                self.commands += run.commands;
                self.calls += run.calls;
                self.checks += run.checks;
                self.simulated_ms += run.simulated_ms;
                self.faults.merge(&run.faults);
            }
            Err(failure) => {
                self.events += failure.index + 1;
                self.failures.push(failure);
            }
        }
    }
}

/// Runs these seeds on `jobs` threads; the outcome of each seed does not depend on `jobs`.
pub fn run_batch(
    seeds: Range<u64>,
    settings: Settings,
    plan: &Arc<Plan>,
    cast: &Cast,
    jobs: usize,
) -> Batch {
    let started = std::time::Instant::now();
    let jobs = jobs.max(1) as u64;
    let outcomes: Vec<Vec<Result<SeedRun, Failure>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|job| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    seeds
                        .filter(|s| s % jobs == job)
                        .map(|s| run_seed(s, settings, plan, cast, None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut batch = Batch::default();
    for outcome in outcomes.into_iter().flatten() {
        batch.add(outcome);
    }
    batch.failures.sort_by_key(|f| f.seed);
    batch.wall_seconds = started.elapsed().as_secs_f64();
    batch
}

/// The batch as a few readable lines.
pub fn summary(batch: &Batch) -> String {
    let mut out = String::new();
    let passed = batch.seeds - batch.failures.len() as u64;
    let _ = writeln!(
        out,
        "{} seeds run: {} passed, {} failed",
        batch.seeds,
        passed,
        batch.failures.len()
    );
    let _ = writeln!(
        out,
        "{} events fed ({} in the liveness phases, at most {} rounds), {} commands, {} calls \
         offered, {:.1} h simulated",
        batch.events,
        batch.liveness_events,
        batch.most_liveness_rounds,
        batch.commands,
        batch.calls,
        batch.simulated_ms as f64 / 3_600_000.0
    );
    let _ = writeln!(
        out,
        "{} invariant checks (the core's recount after every event, and the stream rules)",
        batch.checks
    );
    let _ = write!(out, "{} faults injected:", batch.faults.total());
    for (i, fault) in Fault::ALL.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(out, "{sep}{} {}", fault.name(), batch.faults.get(*fault));
    }
    let _ = writeln!(out);
    let rate = batch.events as f64 / batch.wall_seconds.max(1e-9);
    let _ = writeln!(
        out,
        "wall time {:.2} s ({:.0} events/s)",
        batch.wall_seconds, rate
    );
    for (rule, (count, first)) in failures_by_rule(&batch.failures) {
        let _ = writeln!(out, "{count} seeds broke: {rule}\n  first: {first}");
    }
    out
}

/// Failures grouped by the rule they broke (numbers left out), each with its first seed.
fn failures_by_rule(failures: &[Failure]) -> Vec<(String, (usize, &Failure))> {
    let mut rules: Vec<(String, (usize, &Failure))> = Vec::new();
    for failure in failures {
        let rule: String = failure
            .message
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        let rule = rule
            .split('#')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("N");
        match rules.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, (count, _))) => *count += 1,
            None => rules.push((rule, (1, failure))),
        }
    }
    rules.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
    rules
}

/// FNV-1a, written to by `Debug` output so that hashing a command needs no allocation.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}
