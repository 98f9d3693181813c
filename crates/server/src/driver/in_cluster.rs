//! The driver's side of the cluster: applying the log's entries, saying the node is alive,
//! and serving calls alone while the log does not answer, then merging them back.

use std::collections::HashSet;
use std::time::Duration;

use secourir_cluster::{Input, Island, NodeSnapshot, OfferedRecord, Step};
use secourir_cluster_log::Batch;
use secourir_config::CtaId;
use secourir_core::{AgentId, AgentStatus, CallId, CallbackState, Event, Instant, Offer};
use secourir_sip::Binding;
use tracing::{error, info, warn};

use super::{Driver, ISLAND_MERGE_AFTER_MS, OFFER_PATIENCE_MS, STOP_LOG_WAIT_S};
use crate::node::Node;
use crate::snapshot;

impl Driver {
    /// Once the log is back and the island's calls have all ended, their records and the
    /// callers to call back go to the log, and the node serves from the shared core alone.
    pub(super) fn merge_island(&mut self) {
        let (Some(island), Some(node)) = (&self.island, &self.node) else {
            return;
        };
        if !island.over() || node.cut_off() {
            self.island_over_at = None;
            return;
        }
        // The island's last writes reach the store within the writer's group commit.
        let over_at = *self
            .island_over_at
            .get_or_insert_with(tokio::time::Instant::now);
        if over_at.elapsed() < Duration::from_millis(ISLAND_MERGE_AFTER_MS) {
            return;
        }
        let calls: Vec<u64> = island.calls.iter().map(|c| c.0).collect();
        let merged = match secourir_cluster::read_back(&self.data_dir, &calls) {
            Ok(merged) => merged,
            Err(e) => {
                // Kept, and tried again at the next turn.
                error!(error = %e, "the local calls' records could not be read back yet");
                return;
            }
        };
        self.island = None;
        self.island_over_at = None;
        let now = self.clock.now();
        let callbacks: Vec<Event> = merged
            .iter()
            .filter(|m| m.call_back)
            .map(|m| Event::CallbackRestored {
                call: CallId(m.record.call),
                zone: self
                    .plan
                    .zone_id(&m.record.departement)
                    .unwrap_or(self.plan.default_zone),
                caller: m.record.caller.clone().map(String::into_boxed_str),
                at: Instant(m.record.ended_at.unwrap_or(m.record.offered_at).max(0) as u64),
                taken_by: None,
            })
            .collect();
        info!(
            calls = merged.len(),
            call_backs = callbacks.len(),
            "calls served alone given to the cluster log"
        );
        if let Some(node) = &mut self.node {
            node.give(Input::Merged {
                at: now.0,
                calls: merged,
            });
            for event in callbacks {
                node.give(Input::Core { at: now.0, event });
            }
        }
    }

    /// The cluster's heartbeat: this node is alive, and says which others have gone silent.
    pub(super) fn beat(&mut self) {
        let now = self.clock.now();
        if let Some(node) = &mut self.node {
            for input in node.beat(now.0) {
                node.give(input);
            }
            if !node.cut_off() {
                // Back on the log: the shared core follows them again.
                self.freed_while_cut.clear();
            }
        }
    }

    /// The call of the shared core that `event` (a hang-up on this node's legs) ends while
    /// the node is cut off, and the call-taker of this node it frees.
    pub(super) fn freed_by(&self, event: &Event) -> Option<(CallId, AgentId)> {
        if !self.node.as_ref().is_some_and(Node::cut_off)
            || self.island.as_ref().is_some_and(|i| i.holds(event))
        {
            return None;
        }
        let call = match event {
            Event::AgentHungUp { call, .. } | Event::CallerHungUp { call } => *call,
            _ => return None,
        };
        let secourir_core::CallStatus::Talking(agent) = self.core.call(call)?.status else {
            return None;
        };
        self.local_phones.contains(&agent).then_some((call, agent))
    }

    /// A conversation of the shared core ended here while the node is cut off: the other
    /// side is hung up now rather than when the log is back (the log has the hang-up, and
    /// its core ends the call then), and the call-taker, free, is seated on the island now
    /// or when it starts.
    pub(super) fn freed_while_cut(&mut self, call: CallId, agent: AgentId) {
        self.legs.release(call);
        let now = self.clock.now();
        match &mut self.island {
            Some(island) => {
                info!(?agent, "call-taker free again while cut off: seated here");
                let seat = island.seat(agent);
                self.process_on(true, seat, now);
            }
            None => {
                self.freed_while_cut.insert(agent);
            }
        }
    }

    /// Applies one entry of the cluster log: every node applies every entry, in the log's
    /// order, and so holds the same core; only the node holding a call's legs acts on them.
    pub(crate) fn apply(&mut self, seq: u64, batch: Batch<Input>, live: bool) {
        let Some(node) = &mut self.node else {
            return;
        };
        let from = batch.node;
        node.applied_seq = seq;
        node.members.seen(&from, seq);
        node.heard(&from, batch.items.len(), live);
        let mine = from == node.name;
        let mut kept = false;
        self.records.muted = seq <= node.mark;
        for input in batch.items {
            let Some(node) = &mut self.node else {
                return;
            };
            let now = node.advance(input.at());
            kept |= matches!(input, Input::Kept { .. });
            let about_me = matches!(&input, Input::Lost { node: lost, .. } if *lost == node.name);
            for step in node.members.steps(&from, input) {
                match step {
                    Step::Core(event, record) => {
                        if let (Event::Stopped { call }, true) = (&event, about_me)
                            && self.legs.talking(*call).is_some()
                        {
                            self.carry_on(*call, now);
                        }
                        if let (Event::Offered(offer), true) = (&event, mine) {
                            self.pending.remove(&offer.call);
                        }
                        if let Some(record) = record {
                            if !self.served_alone.contains(&record.call) {
                                self.records.offered(&record, now);
                            }
                            if let Some(node) = &mut self.node {
                                node.records.insert(record.call, (now.0, *record));
                            }
                        }
                        self.process(event, now);
                    }
                    Step::Local(input) if !mine => self.carry_out_local(input),
                    Step::Local(_) => {}
                    Step::Config(text) => self.apply_config(seq, &text, now),
                }
            }
        }
        if !self.records.muted {
            self.records.log_applied(seq);
        }
        if let (true, true, Some(node)) = (kept, mine, &mut self.node) {
            // This node's snapshot may be the last every node had to keep.
            node.trim();
        }
        self.records.muted = false;
        if self
            .node
            .as_ref()
            .is_some_and(|n| seq >= n.snapshot_taken + n.snapshot_every)
        {
            self.take_snapshot(false);
        }
    }

    /// Keeps this node's state at the last entry applied in its data directory, for a fast
    /// restart: written off the driver's task (`wait`: on it, at a stop), one at a time.
    pub(super) fn take_snapshot(&mut self, wait: bool) {
        let Some(node) = &mut self.node else {
            return;
        };
        if self
            .snapshot_writing
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        // A record is of use to a node starting from this snapshot while its call is live or
        // its caller is still to be called back.
        let core = &self.core;
        let mut useful: HashSet<CallId> = core.live_call_ids().collect();
        for cta in 0..self.plan.ctas.len() {
            useful.extend(
                core.callbacks(CtaId(cta as u16))
                    .filter(|(_, e)| !matches!(e.state, CallbackState::Done(_)))
                    .map(|(call, _)| call),
            );
        }
        node.records.retain(|call, _| useful.contains(call));
        let mut records: Vec<(u64, OfferedRecord)> = node.records.values().cloned().collect();
        records.sort_by_key(|(_, r)| r.call);
        let snapshot = NodeSnapshot {
            seq: node.applied_seq,
            clock: node.applied.0,
            config: self.config.text.clone(),
            core: core.snapshot(),
            members: node.members.clone(),
            records,
        };
        let seq = snapshot.seq;
        node.snapshot_taken = seq;
        let dir = self.data_dir.clone();
        let writing = self.snapshot_writing.clone();
        writing.store(true, std::sync::atomic::Ordering::Release);
        let write = move || {
            let written = secourir_cluster::encode(&snapshot).and_then(|bytes| {
                snapshot::write(&dir, &bytes)?;
                Ok(bytes)
            });
            writing.store(false, std::sync::atomic::Ordering::Release);
            match written {
                Ok(bytes) => {
                    info!(seq, "cluster snapshot written");
                    Some(bytes)
                }
                Err(e) => {
                    error!(error = %e, "cluster snapshot not written");
                    None
                }
            }
        };
        if wait {
            write();
        } else {
            let share = node.sharer();
            let dir = self.data_dir.clone();
            tokio::spawn(async move {
                if let Ok(Some(bytes)) = tokio::task::spawn_blocking(write).await {
                    share.share(seq, bytes, dir);
                }
            });
        }
    }

    /// What another node's entry asks of this one alone: ring its phone from here, copy its
    /// recording, keep the rows of the calls it served alone.
    pub(super) fn carry_out_local(&mut self, input: Input) {
        match input {
            Input::Bound {
                agent,
                contact,
                source,
                expires_at_s,
                ..
            } => {
                let binding = Binding {
                    contact,
                    source,
                    over: secourir_sip::Over::Udp,
                    expires_at_s,
                };
                self.sip.bind(AgentId(agent), binding);
            }
            Input::Recorded {
                call,
                name,
                sha256,
                duration_ms,
                main,
                ..
            } => {
                if let Some(node) = &self.node {
                    node.fetch(call, name, sha256, duration_ms, main);
                }
            }
            Input::Merged { calls, .. } => {
                for call in &calls {
                    self.records.merged(call);
                }
            }
            Input::Continued {
                at,
                call,
                caller_left,
            } => self.records.continued(call, Instant(at), caller_left),
            _ => {}
        }
    }

    /// The others declared this node lost while it was cut off, and the log ends its calls:
    /// a caller still talking with a call-taker here is not cut; the conversation goes on
    /// outside the shared core until one of them hangs up.
    fn carry_on(&mut self, call: CallId, now: Instant) {
        warn!(
            ?call,
            "this node was declared lost while cut off: the conversation goes on until it ends"
        );
        self.carried_on.insert(call);
        self.records.note(
            call,
            now,
            "conversation poursuivie : le nœud, coupé du cluster, a été déclaré perdu".into(),
        );
    }

    /// A conversation carried on ended: its legs are released here, and its real end goes to
    /// the log for every node's record.
    pub(super) fn carried_on_ended(&mut self, call: CallId, caller_left: bool) {
        self.carried_on.remove(&call);
        self.legs.release(call);
        let now = self.clock.now();
        info!(
            ?call,
            caller_left, "conversation carried on after the log ended its call: over"
        );
        self.records.continued(call, now, caller_left);
        if let Some(node) = &mut self.node {
            node.give(Input::Continued {
                at: now.0,
                call,
                caller_left,
            });
        }
    }

    /// Waits, a few seconds at most, until what this node gave has come back from the log.
    pub(super) async fn drain_to_log(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(STOP_LOG_WAIT_S);
        loop {
            let Some(node) = &mut self.node else {
                return;
            };
            if node.drained() {
                return;
            }
            let Some(entries) = node.entries.as_mut() else {
                return;
            };
            match tokio::time::timeout_at(deadline, entries.recv()).await {
                Ok(Some((seq, batch))) => self.apply(seq, batch, true),
                Ok(None) | Err(_) => {
                    error!(
                        "the cluster log did not take this node's last inputs before it stopped"
                    );
                    return;
                }
            }
        }
    }

    /// Starts serving alone, if not yet, with the call-takers whose phones registered here
    /// and who are free (available in the shared core, or freed here since the cut).
    pub(super) fn start_island(&mut self, now: Instant) {
        if self.island.is_some() {
            return;
        }
        let freed = std::mem::take(&mut self.freed_while_cut);
        let agents: Vec<AgentId> = self
            .local_phones
            .iter()
            .copied()
            .filter(|a| self.core.agent(*a) == AgentStatus::Available || freed.contains(a))
            .collect();
        warn!(
            call_takers = agents.len(),
            "the cluster log does not answer: calls served here alone"
        );
        self.island = Some(Island::start(self.plan.clone(), &agents, now));
    }

    /// A call taken in at `arrived`, served on the island: on record here, and in the
    /// island's core.
    pub(super) fn serve_alone(
        &mut self,
        record: OfferedRecord,
        offer: Offer,
        arrived: Instant,
        now: Instant,
    ) {
        if let Some(island) = &mut self.island {
            island.calls.insert(record.call);
        }
        self.records.offered(&record, arrived);
        self.records.note(
            record.call,
            now,
            "servi localement : nœud coupé du cluster".into(),
        );
        self.process_on(true, Event::Offered(offer), now);
    }

    /// Cut off with new calls whose offers have not come back from the log: rather than wait
    /// for the log (a stream leader's election takes 4 to 9 s), they are served here alone,
    /// when call-takers are here to take them, and the log is told so after their offers.
    pub(super) fn serve_pending_alone(&mut self) {
        let now = self.clock.now();
        let Some(oldest) = self.pending.values().map(|(at, _, _)| *at).min() else {
            return;
        };
        // Appended but not read back (the server the node read from died) is as long a wait.
        let stalled = now.since(oldest) >= OFFER_PATIENCE_MS;
        if !stalled && !self.node.as_ref().is_some_and(Node::cut_off) {
            return;
        }
        self.start_island(now);
        if self.island.as_ref().is_none_or(|i| i.seated == 0) {
            // No call-taker here: the log, where every node's call-takers are, serves them.
            return;
        }
        for (call, (arrived, record, offer)) in std::mem::take(&mut self.pending) {
            info!(
                ?call,
                "offer not back from the cluster log: served here alone"
            );
            self.served_alone.insert(call);
            self.serve_alone(record, offer, arrived, now);
            if let Some(node) = &mut self.node {
                node.give(Input::Core {
                    at: now.0,
                    event: Event::Withdrawn { call },
                });
            }
        }
    }
}
