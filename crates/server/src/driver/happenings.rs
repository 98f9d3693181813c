//! What the SIP shell and the media anchor report, as the driver takes it in: a new call
//! read, judged for a flood and offered; a phone registered; a caller's key or voice.

use super::*;

impl Driver {
    pub(super) fn on_sip(&mut self, event: SipEvent) {
        match event {
            SipEvent::Invite {
                call,
                ingress,
                source,
                decide,
            } => {
                let now = self.clock.now();
                let media = &self.legs.media;
                let number = ingress.caller.clone();
                let trunk = ingress.trunk.clone();
                let arrival = arrival::from_invite(
                    call,
                    *ingress,
                    decide,
                    media,
                    self.territory,
                    &self.plan,
                    &self.instance,
                    now,
                );
                if let Some(why) = arrival.refused {
                    self.log_not_carried(call, source, why, now);
                }
                self.judge_and_arrive(arrival, source, number, trunk, now);
            }
            SipEvent::Text {
                ingress,
                read,
                source,
            } => self.on_text(*ingress, read, source),
            SipEvent::TextUndelivered { call, status } => self.text_undelivered(call, status),
            SipEvent::Registered { agent, binding } => {
                info!(login = %self.login(agent), "phone registered");
                if let Some(node) = &mut self.node {
                    node.failover.registered(agent);
                    let at = self.clock.now().0;
                    node.give(Input::Bound {
                        at,
                        agent: agent.0,
                        contact: binding.contact,
                        source: binding.source,
                        expires_at_s: binding.expires_at_s,
                    });
                }
            }
            SipEvent::Unregistered { agent } => {
                info!(login = %self.login(agent), "phone unregistered");
                if let Some(node) = &mut self.node {
                    node.failover.unregistered(agent);
                }
            }
            SipEvent::LockedOut { what } => {
                metrics::counter!("secourir_register_lockouts_total").increment(1);
                let now = self.clock.now();
                self.records.board.note(now, "plateforme", what);
            }
            other => {
                if let Some(event) = self.legs.on_sip(other) {
                    self.hung_up(event);
                }
            }
        }
    }

    pub(super) fn login(&self, agent: secourir_core::AgentId) -> &str {
        self.plan
            .call_takers
            .get(agent.0 as usize)
            .map_or("?", |t| t.login.as_str())
    }

    /// A new call: on record first, then its legs, then the core decides.
    /// A new call, `suspected` of being part of a flood or not.
    /// Judges a new call for a flood (the same for a voice call and a text conversation), then
    /// offers it; earlier calls the verdict names become suspects too.
    pub(super) fn judge_and_arrive(
        &mut self,
        arrival: Arrival,
        source: std::net::SocketAddr,
        number: Option<String>,
        trunk: Option<String>,
        now: Instant,
    ) {
        let call = arrival.call;
        let trusted = trunk
            .as_deref()
            .is_some_and(|t| self.plan.trunk(t).is_some());
        let verdict = self.suspects.arrived(
            call,
            source.ip(),
            number.as_deref(),
            trunk.as_deref(),
            trusted,
            now,
        );
        if let Some(note) = verdict.note {
            self.records.board.note(now, "plateforme", note);
        }
        let suspected = verdict.reason.is_some();
        if let Some(reason) = verdict.reason {
            let step = format!(
                "appel suspect ({}) : en attente derrière tous les autres appels",
                reason.french()
            );
            for earlier in &verdict.earlier {
                self.records.note(*earlier, now, step.clone());
            }
            self.records.note(call, now, step);
        }
        self.arrive(arrival, suspected);
        for earlier in verdict.earlier {
            self.feed(Event::Suspected { call: earlier });
        }
    }

    pub(super) fn arrive(&mut self, arrival: Arrival, suspected: bool) {
        let now = self.clock.now();
        let record = arrival.record();
        let mut offer = arrival.offer();
        offer.suspected = suspected;
        self.legs.adopt(arrival.call, arrival.side);
        match &mut self.node {
            Some(node) => {
                node.observe_log();
                // Cut from the log's quorum, the call is served here, never refused.
                let route = node
                    .failover
                    .arrive(arrival.call, (record, offer), now, &self.core);
                if let Route::Log((record, offer)) = route {
                    node.give(Input::Offered {
                        at: now.0,
                        record: Box::new(record),
                        offer: Box::new(offer),
                    });
                }
                self.act();
            }
            None => {
                self.records.offered(&record, offer.medium, now);
                self.process(Event::Offered(offer), now);
            }
        }
    }

    pub(super) fn on_media(&mut self, event: MediaEvent) {
        if let Some(event) = self.legs.caller_event(&event) {
            // Only a suspect's being heard changes anything: the others' stay off the log.
            if let Event::Heard { call } = event
                && !self.core.call(call).is_some_and(|c| c.suspected)
            {
                return;
            }
            self.feed(event);
            return;
        }
        if let MediaEvent::Recorded { path, recording } = event
            && let Some((call, kind)) = self.legs.finishing.remove(&path)
        {
            let now = self.clock.now();
            // In a cluster every recording is copied to the servers, and every other node
            // copies it from there: a site's loss loses no conversation.
            if let (Some(node), Some(r)) = (&mut self.node, &recording)
                && let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned())
            {
                node.upload(name.clone(), path.clone());
                node.give(Input::Recorded {
                    at: now.0,
                    call,
                    name,
                    sha256: r.sha256.clone(),
                    duration_ms: r.duration_ms,
                    main: matches!(kind, Conversation::CallTaker(n) if n <= 1),
                });
            }
            self.records.recorded(call, kind, &path, recording, now);
        }
    }

    /// Logs a call the platform could not carry, once per [`NOT_CARRIED_LOG_EVERY_MS`] at most:
    /// each one is on record and counted, and a flood of them must not flood the log.
    fn log_not_carried(
        &mut self,
        call: CallId,
        source: std::net::SocketAddr,
        why: secourir_core::NotCarried,
        now: Instant,
    ) {
        if self
            .not_carried_logged
            .is_some_and(|at| now.since(at) < NOT_CARRIED_LOG_EVERY_MS)
        {
            return;
        }
        self.not_carried_logged = Some(now);
        warn!(?call, %source, why = why.as_str(), "emergency call the platform cannot carry: refused, on record and on the call-back list (logged once per 10 s, counted in secourir_calls_not_carried_total)");
    }
}
