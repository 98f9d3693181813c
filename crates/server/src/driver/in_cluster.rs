//! The driver's side of the cluster: applying the log's entries, saying the node is alive,
//! and serving calls alone while the log does not answer, then merging them back.

use std::collections::HashSet;
use std::time::Duration;

use secourir_cluster::{
    Action as FailoverAction, Carrier, Input, MergedCall, NodeSnapshot, OfferedRecord, Step,
};
use secourir_cluster_log::Batch;
use secourir_config::CtaId;
use secourir_core::{AgentId, CallId, CallbackState, Event, Instant, Offer};
use secourir_sip::Binding;
use tracing::{error, info, warn};

use super::{Driver, STOP_LOG_WAIT_S};
use crate::snapshot;

impl Driver {
    /// Carries out what the failover machine decided, in its order.
    pub(super) fn act(&mut self) {
        while let Some(action) = self.node.as_mut().and_then(|n| n.failover.poll()) {
            let now = self.clock.now();
            match action {
                FailoverAction::Give(input) => {
                    if let Some(node) = &mut self.node {
                        node.give(input);
                    }
                }
                FailoverAction::ServeAlone {
                    call: (record, offer),
                    arrived,
                } => self.serve_alone(record, offer, arrived, now),
                FailoverAction::ToIsland(event) => self.process_on(true, event, now),
                FailoverAction::CarryOn(call) => self.carry_on(call, now),
                FailoverAction::Release(call) => self.legs.release(call),
                FailoverAction::Continued { call, caller_left } => {
                    self.carried_on_ended(call, caller_left);
                }
                FailoverAction::Merge(calls) => self.merge_island(&calls),
                FailoverAction::DeclaredLost { node, after } => {
                    warn!(%node, after, "node silent: its calls are declared over");
                }
            }
        }
    }

    /// The island's calls have all ended and the log is back: their records and the callers
    /// to call back go to the log, and the node serves from the shared core alone.
    fn merge_island(&mut self, calls: &[CallId]) {
        let calls: Vec<u64> = calls.iter().map(|c| c.0).collect();
        let merged = match secourir_cluster::read_back(&self.data_dir, &calls) {
            Ok(merged) => merged,
            Err(e) => {
                // Kept, and asked again at the next turn.
                error!(error = %e, "the local calls' records could not be read back yet");
                return;
            }
        };
        if let Some(node) = &mut self.node {
            node.failover.merged();
        }
        self.give_back(merged);
    }

    /// Calls this node served alone in an earlier life and the log never took back (the node
    /// died first): closed as interrupted if the death left them open, and given back now.
    pub(super) fn give_back_earlier_life(&mut self) {
        let alone = secourir_store::Store::open_read_only(&self.data_dir).and_then(|s| s.alone());
        let calls: Vec<u64> = match alone {
            Ok(calls) => calls
                .into_iter()
                .filter(|c| !self.records.was_given_back(*c))
                .collect(),
            Err(e) => {
                error!(error = %e, "the calls served alone in an earlier life could not be read");
                return;
            }
        };
        if calls.is_empty() {
            return;
        }
        let mut merged = match secourir_cluster::read_back(&self.data_dir, &calls) {
            Ok(merged) => merged,
            Err(e) => {
                error!(error = %e, "the calls served alone in an earlier life could not be read");
                return;
            }
        };
        let now = self.clock.now();
        for call in &mut merged {
            if call.record.ended_at.is_none() {
                self.records.interrupted_alone(call, now);
            }
        }
        warn!(
            calls = merged.len(),
            "calls served alone before this node stopped, never given to the cluster log: given now"
        );
        self.give_back(merged);
    }

    /// Gives the records of calls served alone, and their callers to call back, to the log.
    fn give_back(&mut self, merged: Vec<MergedCall>) {
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

    /// The island merges once its calls are over and the log is back.
    pub(super) fn merge_when_over(&mut self) {
        let now = self.clock.now();
        if let Some(node) = &mut self.node {
            node.observe_log();
            node.failover.merge(now);
        }
        self.act();
    }

    /// The cluster's heartbeat: this node is alive, and says which others have gone silent.
    pub(super) fn beat(&mut self) {
        let now = self.clock.now();
        if let Some(node) = &mut self.node {
            if let Some(kept) = node.kept_input(now.0) {
                node.give(kept);
            }
            node.observe_log();
            node.failover.beat(now, &node.members);
        }
        self.act();
    }

    /// A hang-up heard on this node's legs, which the failover machine sees first (a
    /// conversation carried on, a call-taker freed while cut off).
    pub(super) fn hung_up(&mut self, event: Event) {
        let feed = match &mut self.node {
            Some(node) => {
                node.observe_log();
                node.failover.hung_up(&event, &self.core)
            }
            None => true,
        };
        if feed {
            self.feed(event);
        }
        self.act();
    }

    /// Applies one entry of the cluster log: every node applies every entry, in the log's
    /// order, and so holds the same core; only the node holding a call's legs acts on them.
    pub(crate) fn apply(&mut self, seq: u64, batch: Batch<Input>, live: bool) {
        let Some(node) = &mut self.node else {
            return;
        };
        let from = batch.node;
        if !node.failover.entry(&from, seq, self.clock.now()) {
            return;
        }
        node.members.seen(&from, seq);
        node.members.reads(&from, batch.reads);
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
                        let talking = match &event {
                            Event::Stopped { call } => self.legs.talking(*call).is_some(),
                            _ => false,
                        };
                        let Some(node) = &mut self.node else {
                            return;
                        };
                        if let (Event::Stopped { call }, true) = (&event, about_me) {
                            node.failover.ended_by_log(*call, talking);
                        }
                        if let (Event::Offered(offer), true) = (&event, mine) {
                            node.failover.offer_back(offer.call);
                        }
                        if let Some(record) = record {
                            if node.failover.carrier(Some(record.call)) != Carrier::Island {
                                let medium = match &event {
                                    Event::Offered(offer) => offer.medium,
                                    _ => secourir_core::Medium::Voice,
                                };
                                self.records.offered(&record, medium, now);
                            }
                            node.records.insert(record.call, (now.0, *record));
                        }
                        self.act();
                        self.process(event, now);
                    }
                    Step::Local(input) if !mine => self.carry_out_local(input),
                    // The log has this node's calls served alone: no longer its own to give.
                    Step::Local(Input::Merged { calls, .. }) => {
                        for call in &calls {
                            self.records.given_back(call.record.call);
                        }
                    }
                    Step::Local(_) => {}
                    Step::Config(text) => self.apply_config(seq, &text, now),
                }
            }
        }
        if let Some(node) = &self.node {
            // A member that stopped for its upgrade, or came back upgraded, changes what the
            // others may write.
            node.write_for_members();
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
            seq: node.applied_seq(),
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
        self.records.note(
            call,
            now,
            "conversation poursuivie : le nœud, coupé du cluster, a été déclaré perdu".into(),
        );
    }

    /// A conversation carried on ended: its legs are released here, and its real end goes to
    /// the log for every node's record.
    fn carried_on_ended(&mut self, call: CallId, caller_left: bool) {
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

    /// A call taken in at `arrived`, served on the island: on record here, and in the
    /// island's core.
    fn serve_alone(&mut self, record: OfferedRecord, offer: Offer, arrived: Instant, now: Instant) {
        self.records.offered(&record, offer.medium, arrived);
        self.records.served_alone(record.call);
        self.records.note(
            record.call,
            now,
            "servi localement : nœud coupé du cluster".into(),
        );
        self.process_on(true, Event::Offered(offer), now);
    }

    /// Cut off with new calls whose offers have not come back from the log: rather than wait
    /// for the log (a stream leader's election takes 4 to 9 s), the failover machine has them
    /// served here alone, when call-takers are here to take them.
    pub(super) fn serve_pending_alone(&mut self) {
        let now = self.clock.now();
        if let Some(node) = &mut self.node
            && node.failover.pending() > 0
        {
            node.observe_log();
            node.failover.serve_pending(now, &self.core);
        }
        self.act();
    }
}
