//! The records a cluster node writes from what other nodes did: recordings replicated here,
//! the records of a snapshot it started from, conversations carried on while cut off, and the
//! calls another node served alone, merged.

use super::*;

impl Records {
    /// This node serves `call` alone: kept in the store until the log takes it back, so that
    /// a node that dies first gives it back when it starts again.
    pub(crate) fn served_alone(&mut self, call: CallId) {
        self.write(Write::Alone { call: call.0 });
    }

    /// The log took back `call`, which this node served alone.
    pub(crate) fn given_back(&mut self, call: u64) {
        self.given_back.insert(call);
        self.write(Write::GivenBack { call });
    }

    /// Whether the log took back `call` in this life (entries being applied again included).
    pub(crate) fn was_given_back(&self, call: u64) -> bool {
        self.given_back.contains(&call)
    }

    /// A call served alone in an earlier life of this node, left open by its death: closed as
    /// interrupted, its caller to call back.
    pub(crate) fn interrupted_alone(&mut self, merged: &mut MergedCall, now: Instant) {
        let call = merged.record.call;
        let at = now.0 as i64;
        self.write(Write::Trail {
            call,
            at,
            step: "appel interrompu par un arrêt du nœud qui le servait seul : à rappeler".into(),
        });
        self.write(Write::Ended {
            call,
            at,
            outcome: "abandoned".into(),
            reason: crate::recovery::INTERRUPTED.into(),
        });
        merged.record.ended_at = Some(at);
        merged.record.outcome = Some("abandoned".into());
        merged.record.reason = Some(crate::recovery::INTERRUPTED.into());
        merged.call_back = true;
    }

    /// A recording of another node, copied here and checked against its SHA-256.
    pub(crate) fn replicated(
        &mut self,
        call: CallId,
        main: bool,
        path: &std::path::Path,
        sha256: String,
        duration_ms: u64,
    ) {
        if main {
            self.write(Write::Recording {
                call: call.0,
                path: path.display().to_string(),
                sha256,
                duration_ms,
            });
        }
    }

    /// The store of a node starting from another node's snapshot at entry `seq`: the records
    /// of the calls still of use then (live, or to call back) and the call-back lists, as the
    /// snapshot has them. Their earlier steps stay in the stores of the nodes that applied them.
    pub(crate) fn seed(&mut self, records: &[(u64, OfferedRecord)], core: &Core, seq: u64) {
        let mut written = std::collections::HashSet::new();
        for (at, record) in records {
            self.write(offered_write(record, Instant(*at)));
            self.trail(
                record.call,
                Instant(*at),
                format!(
                    "fiche reprise de l'instantané du cluster (entrée {seq}) : les étapes antérieures sont dans les registres des autres nœuds"
                ),
            );
            written.insert(record.call);
        }
        for (index, cta) in self.plan.ctas.clone().iter().enumerate() {
            for (call, entry) in core.callbacks(secourir_config::CtaId(index as u16)) {
                let (state, by) = match entry.state {
                    CallbackState::Pending => ("pending", None),
                    CallbackState::Taken(agent) => ("taken", Some(self.login(agent))),
                    CallbackState::Done(_) => continue,
                };
                if written.insert(call) {
                    // A caller merged from a node's time alone: the list needs its number.
                    let departement = self.plan.zone(entry.zone).code.clone();
                    self.write(Write::Offered {
                        call: call.0,
                        emergency_call_id: String::new(),
                        caller: entry.caller.as_deref().map(|c| Personal::new(c.to_owned())),
                        service: String::new(),
                        at: entry.at.0 as i64,
                        lat: None,
                        lon: None,
                        radius_m: None,
                        location_source: "unknown".into(),
                        departement,
                        commune: None,
                        insee: None,
                        trunk: None,
                    });
                }
                self.write(Write::Callback {
                    call: call.0,
                    cta: cta.id.clone(),
                    state: state.to_owned(),
                    by,
                    at: entry.at.0 as i64,
                });
            }
        }
    }

    /// A conversation carried on after the log ended its call (its node declared lost while
    /// cut off) ended at `at`: the record gets its real end.
    pub(crate) fn continued(&mut self, call: CallId, at: Instant, caller_left: bool) {
        let reason = match caller_left {
            true => secourir_core::EndReason::CallerHungUp,
            false => secourir_core::EndReason::AgentHungUp,
        };
        self.write(Write::Ended {
            call: call.0,
            at: at.0 as i64,
            outcome: Outcome::Completed.as_str().to_owned(),
            reason: reason.french(),
        });
        self.trail(
            call,
            at,
            format!("fin de la conversation poursuivie : {}", reason.french()),
        );
    }

    /// A call another node served alone while it was cut from the cluster: its rows, as that
    /// node's store has them.
    pub(crate) fn merged(&mut self, merged: &MergedCall) {
        let r = &merged.record;
        self.write(Write::Offered {
            call: r.call,
            emergency_call_id: r.emergency_call_id.clone(),
            caller: r.caller.clone().map(Personal::new),
            service: r.service.clone(),
            at: r.offered_at,
            lat: r.lat.map(Personal::new),
            lon: r.lon.map(Personal::new),
            radius_m: r.radius_m,
            location_source: r.location_source.clone(),
            departement: r.departement.clone(),
            commune: r.commune.clone(),
            insee: r.insee.clone(),
            trunk: r.trunk.clone(),
        });
        if let (Some(at), Some(cta)) = (r.queued_at, &r.cta) {
            self.write(Write::Queued {
                call: r.call,
                cta: cta.clone(),
                at,
            });
        }
        if let (Some(at), Some(cta), Some(login)) = (r.answered_at, &r.cta, &r.call_taker) {
            self.write(Write::Answered {
                call: r.call,
                cta: cta.clone(),
                call_taker: login.clone(),
                at,
            });
        }
        for step in &merged.trail {
            self.write(Write::Trail {
                call: r.call,
                at: step.at,
                step: step.step.clone(),
            });
        }
        if let (Some(path), Some(sha256)) = (&r.recording_path, &r.recording_sha256) {
            self.write(Write::Recording {
                call: r.call,
                path: path.clone(),
                sha256: sha256.clone(),
                duration_ms: r.recording_ms.unwrap_or(0),
            });
        }
        if let Some(at) = r.ended_at {
            self.write(Write::Ended {
                call: r.call,
                at,
                outcome: r.outcome.clone().unwrap_or_default(),
                reason: r.reason.clone().unwrap_or_default(),
            });
        }
        if merged.call_back {
            let zone = self
                .plan
                .zone_id(&r.departement)
                .unwrap_or(self.plan.default_zone);
            let cta = self.plan.cta(self.plan.home_cta(zone)).id.clone();
            self.write(Write::Callback {
                call: r.call,
                cta,
                state: "pending".into(),
                by: None,
                at: r.ended_at.unwrap_or(r.offered_at),
            });
        }
    }
}
