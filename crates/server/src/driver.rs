//! The imperative shell around the routing core: a short loop that stamps every input with the
//! wall clock, feeds the core, and hands each command to the legs (SIP and media), the records
//! and the API's waiting requests. One task owns the core, so no lock guards the routing state.

mod api;
mod cases;
mod happenings;
mod in_cluster;
mod reconfigure;
mod texting;

pub(crate) use reconfigure::Config;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secourir_cluster::{Carrier, Input, Route};
use secourir_config::Plan;
use secourir_core::{CallId, Command, Core, Event, Instant};
use secourir_http::Snapshot;
use secourir_http::{ApiCall, ApiError, ClusterStatus, PlatformStatus};
use secourir_media::MediaEvent;
use secourir_sip::{Sip, SipEvent};
use secourir_territory::Territory;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::arrival::{self, Arrival};
use crate::legs::Conversation;
use crate::legs::Legs;
use crate::limits::{HEARTBEAT_CHECK_MS, PAGES_EVERY_MS, STOP_LOG_WAIT_S, STOP_RECORDINGS_WAIT_S};
use crate::node::{Entry, Fetched, JoinError, Node};
use crate::records::Records;
use crate::requests::{Action, Requests};

/// Milliseconds since the epoch, never going backwards even if the system clock does.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: u64,
}

impl Clock {
    pub(crate) fn now(&mut self) -> Instant {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last = self.last.max(wall);
        Instant(self.last)
    }
}

/// Every input the driver takes.
pub(crate) struct Inputs {
    /// From the SIP shell.
    pub(crate) sip: mpsc::Receiver<SipEvent>,
    /// From simulated phones (the demonstration), in the same words.
    pub(crate) peers: mpsc::Receiver<SipEvent>,
    /// New calls that do not come through SIP (simulated callers).
    pub(crate) arrivals: mpsc::Receiver<Arrival>,
    /// From the media anchor.
    pub(crate) media: mpsc::Receiver<MediaEvent>,
    /// From the HTTP handlers.
    pub(crate) api: mpsc::Receiver<ApiCall>,
    /// Calls whose records reached the disk.
    pub(crate) settled: crate::writer::Settled,
    /// What the Hub Santé says of the cases handed to it, and the partners' cases.
    pub(crate) hub: mpsc::Receiver<crate::cases::HubReport>,
    /// Fires once, to stop.
    pub(crate) stop: oneshot::Receiver<()>,
}

/// Calls the platform could not carry are logged at most once per this interval (each one is
/// on record, and counted).
const NOT_CARRIED_LOG_EVERY_MS: u64 = 10_000;

/// Everything the driver task owns.
pub(crate) struct Driver {
    pub(crate) core: Core,
    pub(crate) plan: Arc<Plan>,
    pub(crate) territory: &'static Territory,
    pub(crate) instance: String,
    /// For the counters of its input screen.
    pub(crate) sip: Sip,
    pub(crate) legs: Legs,
    pub(crate) records: Records,
    pub(crate) requests: Requests,
    pub(crate) snapshots: watch::Sender<Arc<Snapshot>>,
    /// Where every input of the core is written, for replays.
    pub(crate) journal: Option<secourir_journal::JournalSender>,
    /// In a cluster: the inputs go to the log, and the core is fed from it.
    pub(crate) node: Option<Node>,
    /// A cluster snapshot is being written.
    snapshot_writing: Arc<std::sync::atomic::AtomicBool>,
    /// The calls followed to tell a flood from real callers.
    suspects: crate::suspects::Suspects,
    /// Where the store is, to read back the island's records.
    pub(crate) data_dir: PathBuf,
    /// The configuration in force, and how a new one is read.
    pub(crate) config: Config,
    clock: Clock,
    follow_ups: VecDeque<Event>,
    dirty: bool,
    /// When a call the platform could not carry was last logged.
    not_carried_logged: Option<Instant>,
    /// The conversations written, not spoken, whose callers this node holds.
    pub(crate) texts: crate::texts::Texts,
    /// The cases this node handed to the partners through the hub.
    pub(crate) cases: crate::cases::Cases,
}

impl Driver {
    /// A driver around a fresh core.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: Arc<Plan>,
        territory: &'static Territory,
        instance: String,
        sip: Sip,
        legs: Legs,
        records: Records,
        snapshots: watch::Sender<Arc<Snapshot>>,
    ) -> Driver {
        Driver {
            texts: crate::texts::Texts::new(sip.clone(), plan.clone()),
            cases: crate::cases::Cases::new(None),
            core: Core::new(plan.clone()),
            requests: Requests::new(plan.clone(), territory),
            plan,
            territory,
            instance,
            sip,
            legs,
            records,
            snapshots,
            journal: None,
            node: None,
            snapshot_writing: Arc::default(),
            suspects: crate::suspects::Suspects::new(),
            data_dir: PathBuf::new(),
            config: Config::default(),
            clock: Clock::default(),
            follow_ups: VecDeque::new(),
            dirty: true,
            not_carried_logged: None,
        }
    }

    /// Gives the core what the store kept across a restart, before the first call; numbering
    /// goes on above `last_call`.
    pub(crate) fn restore(&mut self, last_call: u64, events: Vec<Event>) {
        self.records.restored(last_call);
        for event in events {
            let now = self.clock.now();
            self.process(event, now);
        }
    }

    /// Takes its seat in the cluster: applies what the log already holds (writing to the
    /// store only what it lacks), then says the node has started.
    pub(crate) fn join(&mut self, node: Node, earlier: Vec<Entry>) -> Result<(), JoinError> {
        self.records.reserves_numbers = false;
        self.requests
            .numbered(secourir_cluster::SLOTS + node.slot, secourir_cluster::SLOTS);
        let (incarnation, slot) = (node.incarnation, node.slot);
        self.node = Some(node);
        let new_log = self.node.as_ref().is_some_and(|n| n.new_log);
        for (seq, batch) in earlier {
            self.apply(seq, batch, false);
        }
        if let Some((seq, reason)) = self.config.refused.take() {
            return Err(JoinError::Config { seq, reason });
        }
        let now = self.clock.now();
        if let Some(node) = &mut self.node {
            if new_log {
                // The log begins with this node's configuration: every node applies it from
                // there, whatever file it starts from.
                node.give(Input::Config {
                    at: now.0,
                    text: self.config.text.clone(),
                });
            }
            if let Some(other) = node.members.slot_taken(&node.name, slot) {
                return Err(JoinError::Slot {
                    node: node.name.clone(),
                    other,
                    slot,
                });
            }
            node.give(Input::Hello {
                at: now.0,
                incarnation,
                slot,
            });
        }
        self.give_back_earlier_life();
        Ok(())
    }

    /// Runs until `stop` fires, then ends every call on record and hangs up what is left.
    pub(crate) async fn run(mut self, mut inputs: Inputs) {
        let mut pages = tokio::time::interval(Duration::from_millis(PAGES_EVERY_MS));
        pages.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats = tokio::time::interval(Duration::from_millis(HEARTBEAT_CHECK_MS));
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The log's entries, when in a cluster (a channel that never yields, when not).
        let (_no_log, no_entries) = mpsc::channel::<Entry>(1);
        let mut entries = self
            .node
            .as_mut()
            .and_then(|n| n.entries.take())
            .unwrap_or(no_entries);
        let (_no_copies, no_fetched) = mpsc::channel::<Fetched>(1);
        let mut fetched = self
            .node
            .as_mut()
            .and_then(|n| n.fetched.take())
            .unwrap_or(no_fetched);
        loop {
            let deadline = self.core.next_deadline();
            let mut wait =
                deadline.map(|at| Duration::from_millis(at.0.saturating_sub(self.clock.now().0)));
            // In a cluster a tick is asked of the log; asked again only if it does not come.
            if let (Some(node), Some(at)) = (&self.node, deadline)
                && let Some(again) = node.tick_wait(at)
            {
                wait = wait.map(|w| w.max(again));
            }
            let sleep = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let island_deadline = self
                .node
                .as_ref()
                .and_then(|n| n.failover.island())
                .and_then(|i| i.core.next_deadline());
            let island_wait = island_deadline
                .map(|at| Duration::from_millis(at.0.saturating_sub(self.clock.now().0)));
            let island_sleep = async {
                match island_wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some((seq, batch)) = entries.recv() => self.apply(seq, batch, true),
                Some(copy) = fetched.recv() => {
                    info!(call = ?copy.call, path = %copy.path.display(), "recording of another node copied");
                    self.records.replicated(copy.call, copy.main, &copy.path, copy.sha256, copy.duration_ms);
                }
                _ = beats.tick(), if self.node.is_some() => self.beat(),
                Some(event) = inputs.sip.recv() => self.on_sip(event),
                Some(event) = inputs.peers.recv() => self.on_sip(event),
                Some(arrival) = inputs.arrivals.recv() => self.arrive(arrival, false),
                Some(event) = inputs.media.recv() => self.on_media(event),
                Some(call) = inputs.api.recv() => self.on_api(call),
                Some(calls) = inputs.settled.recv() => self.legs.settled(&calls),
                Some(report) = inputs.hub.recv() => self.on_hub(report),
                () = sleep => self.tick(deadline),
                () = island_sleep => {
                    let now = self.clock.now();
                    self.process_on(true, Event::Tick, now);
                }
                _ = pages.tick() => {
                    let now = self.clock.now();
                    self.legs.release_overdue_answers(now);
                    self.end_idle_texts(now);
                    self.publish();
                    self.merge_when_over();
                }
                _ = &mut inputs.stop => break,
            }
            self.serve_pending_alone();
            self.records.store.flush();
            if let Some(journal) = &mut self.journal {
                journal.flush();
            }
        }
        if let Some(node) = &mut self.node {
            node.entries = Some(entries);
        }
        self.stop(&mut inputs.media).await;
    }

    /// Every call the core holds ends on record (a waiting caller goes to the call-back list),
    /// then the last recordings are waited for. In a cluster, only the calls this node holds.
    async fn stop(&mut self, media: &mut mpsc::Receiver<MediaEvent>) {
        let calls: Vec<CallId> = match &self.node {
            Some(node) => node.members.calls_of(&node.name, |_| true),
            None => self
                .core
                .live_call_ids()
                .chain(self.core.handed_over())
                .collect(),
        };
        for call in calls {
            self.feed(Event::Stopped { call });
        }
        let alone: Vec<CallId> = self
            .node
            .as_ref()
            .and_then(|n| n.failover.island())
            .map(|i| i.core.live_call_ids().collect())
            .unwrap_or_default();
        let now = self.clock.now();
        for call in alone {
            self.process_on(true, Event::Stopped { call }, now);
        }
        self.drain_to_log().await;
        // After a clean stop, the next start applies only the entries since.
        self.take_snapshot(true);
        for call in self.legs.held() {
            self.legs.release(call);
        }
        // A recording not in the store is a conversation lost: wait for the last ones.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(STOP_RECORDINGS_WAIT_S);
        while !self.legs.finishing.is_empty() {
            match tokio::time::timeout_at(deadline, media.recv()).await {
                Ok(Some(event)) => self.on_media(event),
                Ok(None) | Err(_) => break,
            }
        }
        for (path, (call, _)) in self.legs.finishing.drain() {
            error!(?call, path = %path.display(), "recording not finished before shutdown");
        }
        self.records.store.finish();
        if let Some(journal) = &mut self.journal
            && let Err(e) = journal.finish()
        {
            error!(error = %e, "journal could not be closed: its last inputs may be missing");
        }
    }

    /// Feeds one event: to the core at once, or in a cluster to the log, from which every
    /// node's core takes it.
    fn feed(&mut self, event: Event) {
        let now = self.clock.now();
        let failover = self.node.as_ref().map(|n| &n.failover);
        if failover.is_some_and(|f| f.on_island(&event)) {
            return self.process_on(true, event, now);
        }
        // A call-taker of the island who pauses or logs out does so there at once, and in
        // the shared core once the log takes it (whose reply then finds nobody waiting).
        if let Event::Request {
            agent,
            ask: secourir_core::Ask::State(_),
            ..
        } = &event
            && failover.is_some_and(|f| f.island().is_some() && f.has_phone(*agent))
        {
            self.process_on(true, event.clone(), now);
        }
        match &mut self.node {
            Some(node) => node.give(Input::Core { at: now.0, event }),
            None => self.process(event, now),
        }
    }

    /// Gives an event to the core, then everything it leads to; each command goes to the legs,
    /// the records and the waiting requests, in the order the core gave them.
    fn process(&mut self, event: Event, now: Instant) {
        self.process_on(false, event, now);
    }

    /// Gives an event to the shared core, or to the island's (a node cut off serving alone).
    fn process_on(&mut self, island: bool, event: Event, now: Instant) {
        self.dirty = true;
        self.follow_ups.push_back(event);
        while let Some(event) = self.follow_ups.pop_front() {
            let core = match island {
                true => match self.node.as_mut().and_then(|n| n.failover.island_core()) {
                    Some(core) => core,
                    None => return,
                },
                false => &mut self.core,
            };
            if let (Some(journal), false) = (&mut self.journal, island) {
                journal.record(now, &event);
            }
            let commands: Vec<Command> = core.handle(event, now).collect();
            self.carry_out(island, &commands, now);
            // What this node's legs reported (a phone that cannot be rung) is an input like
            // any other: in a cluster it goes to the log, for every node to apply.
            if let (Some(node), false) = (&mut self.node, island) {
                for event in self.follow_ups.drain(..) {
                    node.give(Input::Core { at: now.0, event });
                }
            }
        }
    }

    /// Carries out commands the shared core gave outside an event (a plan taken live), then
    /// what they lead to.
    fn carry_out_all(&mut self, commands: Vec<Command>, now: Instant) {
        self.dirty = true;
        self.carry_out(false, &commands, now);
        match &mut self.node {
            Some(node) => {
                for event in self.follow_ups.drain(..) {
                    node.give(Input::Core { at: now.0, event });
                }
            }
            None => {
                if let Some(event) = self.follow_ups.pop_front() {
                    self.process(event, now);
                }
            }
        }
    }

    /// Hands each command of the shared core (or the island's) to the legs, the records and
    /// the waiting requests, in order; what the legs report back waits in `follow_ups`.
    fn carry_out(&mut self, island: bool, commands: &[Command], now: Instant) {
        for command in commands {
            let carrier = match (&self.node, island) {
                (Some(node), false) => node.failover.carrier(command.call()),
                _ => Carrier::Legs,
            };
            if let (Command::Withdrawn { call, .. }, false, Some(node)) =
                (command, island, &mut self.node)
            {
                node.failover.withdrawn(*call);
                node.members.ended(*call);
            }
            match carrier {
                // The island carries this call out, and keeps its records.
                Carrier::Island => continue,
                // The conversation goes on here: only the records follow the shared core.
                Carrier::RecordsOnly => {}
                Carrier::Legs => match command.call() {
                    Some(call) if self.texts.carries(call) => self.carry_out_text(command, now),
                    _ => self.legs.execute(command, now, &mut self.follow_ups),
                },
            }
            let core = match (self.node.as_ref().and_then(|n| n.failover.island()), island) {
                (Some(island), true) => &island.core,
                _ => &self.core,
            };
            self.records.command(command, core, now);
            match command {
                Command::Bridge { call, .. } => self.suspects.reached(*call),
                Command::Ended { call, .. } | Command::Withdrawn { call, .. } => {
                    self.suspects.ended(*call, now);
                }
                _ => {}
            }
            match command {
                Command::Reply { request, result } => self.requests.reply(*request, *result),
                Command::Ended { call, .. } if !island => {
                    self.cases.ended(call.0);
                    if let Some(node) = &mut self.node {
                        node.members.ended(*call);
                    }
                }
                _ => {}
            }
        }
    }

    /// The core's next deadline has come.
    fn tick(&mut self, deadline: Option<Instant>) {
        match (&mut self.node, deadline) {
            (Some(node), Some(at)) => {
                if node.ask_tick(at) {
                    let now = self.clock.now();
                    node.give(Input::Core {
                        at: now.0,
                        event: Event::Tick,
                    });
                }
            }
            _ => self.feed(Event::Tick),
        }
    }
}
