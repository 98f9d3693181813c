//! What the HTTP side asks of the driver, and the picture of the platform it is sent.

use super::*;

impl Driver {
    /// Rebuilds what the pages show, if anything changed since the last time.
    pub(super) fn publish(&mut self) {
        // How full the platform is goes to the peers that bring calls (RFC 7339), at the
        // pages' pace: often enough for a peer that keeps a share for 5 s.
        self.sip
            .carrying(self.core.live_calls(), self.plan.capacity);
        metrics::gauge!("secourir_overload_loss_percent").set(f64::from(self.sip.overload_loss()));
        // Wait-time figures move with the clock even when nothing happens.
        if !self.dirty && self.core.live_calls() == 0 {
            return;
        }
        self.dirty = false;
        let now = self.clock.now();
        let snapshot = self.records.board.snapshot(&self.core, &self.plan, now);
        for cta in &snapshot.ctas {
            metrics::gauge!("secourir_queue_waiting", "cta" => cta.id.clone())
                .set(f64::from(cta.waiting));
            metrics::gauge!("secourir_call_takers_available", "cta" => cta.id.clone())
                .set(f64::from(cta.available));
        }
        metrics::gauge!("secourir_live_calls").set(self.core.live_calls() as f64);
        if let Some(journal) = &self.journal {
            metrics::gauge!("secourir_journal_batches_lost").set(journal.lost() as f64);
        }
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    pub(super) fn on_api(&mut self, call: ApiCall) {
        match self.requests.take(call) {
            Action::Feed(event) => self.feed(event),
            Action::Done => {}
            Action::Read(call) => self.read(call),
        }
    }

    /// API calls answered from the state, or changing what no call-taker asks.
    pub(super) fn read(&mut self, call: ApiCall) {
        match call {
            ApiCall::CallTakers { reply } => {
                let signalling = &self.legs.signalling;
                let views = self
                    .requests
                    .call_takers(&self.core, |agent| signalling.is_registered(agent));
                let _ = reply.send(views);
            }
            ApiCall::Status { reply } => {
                let _ = reply.send(PlatformStatus {
                    live_calls: self.core.live_calls(),
                    registered_phones: self.legs.signalling.registered(),
                    open_media_legs: self.legs.media.open_legs(),
                    malformed_refused: self
                        .sip
                        .screen_stats()
                        .replied
                        .load(std::sync::atomic::Ordering::Relaxed),
                    datagrams_dropped: self
                        .sip
                        .screen_stats()
                        .dropped
                        .load(std::sync::atomic::Ordering::Relaxed),
                    config: self.config.status(),
                    cluster: self.node.as_ref().map(|node| ClusterStatus {
                        node: node.name.clone(),
                        site: node.site.clone(),
                        cut_off: node.failover.cut_off(),
                        calls_alone: node.failover.island().map_or(0, |i| i.calls.len()),
                        applied_seq: node.applied_seq(),
                        unreadable_seq: node.failover.unreadable_at(),
                        snapshot_from: node.snapshot_from,
                        snapshot_shared: node.shared_from,
                        kept_by_all: node.members.trim_floor(node.applied.0),
                        writes_format: node.writes_format(),
                        reads_format: secourir_cluster_log::Format::NEWEST_NUMBER,
                    }),
                });
            }
            ApiCall::Crisis {
                login,
                cta,
                departement,
                on,
                reply,
            } => {
                // Checked against the configuration in force, which decides whose zone it is.
                let result = match self.plan.zone_id(&departement) {
                    None => Err(ApiError::NotFound("département inconnu")),
                    Some(zone)
                        if cta.as_deref().is_some_and(|own| {
                            self.plan.cta(self.plan.home_cta(zone)).id != own
                        }) =>
                    {
                        warn!(%login, %departement, "crisis mode asked for another CTA's zone");
                        Err(ApiError::Forbidden(
                            "ce département n'est pas servi par votre CTA",
                        ))
                    }
                    Some(zone) => {
                        self.feed(Event::SetCrisis { zone, on });
                        let state = if on { "activé" } else { "désactivé" };
                        info!(%login, %departement, on, "crisis mode changed");
                        let now = self.clock.now();
                        self.records.board.note(
                            now,
                            &login,
                            format!("mode crise {state} pour le {departement}"),
                        );
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            ApiCall::Note { what } => {
                let now = self.clock.now();
                self.records.board.note(now, "plateforme", what);
            }
            ApiCall::Reconfigure { text, reply } => self.reconfigure(text, reply),
            ApiCall::Write {
                login,
                call,
                text,
                reply,
            } => {
                let _ = reply.send(self.write_to_caller(&login, CallId(call), &text));
            }
            ApiCall::Case {
                login,
                call,
                to,
                qualification,
                note,
                reply,
            } => {
                let _ = reply.send(self.hand_case(&login, CallId(call), to, qualification, note));
            }
            ApiCall::Ask { .. } | ApiCall::Aml { .. } => {}
        }
    }
}
