//! A new call offered: admitted, judged by the rules, answered and queued; or refused and
//! called back.

use super::*;

impl Core {
    pub(super) fn on_offered(&mut self, offer: Offer) {
        let id = offer.call;
        if self.calls.contains_key(&id) || self.handed_over.contains(&id) {
            // The shell offered the same call twice (a retransmission it should have absorbed):
            // the call is already handled, so there is nothing new to do.
            return;
        }
        let Some(zone_plan) = self.plan.zones.get(usize::from(offer.zone.0)) else {
            self.reject(id, offer.zone, EndReason::UnknownZone);
            return;
        };
        let home = zone_plan.cta;
        self.note_arrival(home);
        if let Some(why) = offer.refused {
            // A caller the shell could not carry is refused, but never lost: its CTA calls back.
            self.reject(id, offer.zone, EndReason::NotCarried(why));
            self.call_back(id, home, offer.zone, offer.caller);
            return;
        }
        let admitted = match offer.suspected {
            true => self.admission.admit_suspected(),
            false => self.admission.admit(offer.zone),
        };
        if admitted.is_err() {
            self.reject(id, offer.zone, EndReason::NoCapacity);
            self.call_back(id, home, offer.zone, offer.caller);
            return;
        }
        let priority = match offer.suspected {
            true => PRIORITY_SUSPECTED,
            false => priority_of(offer.resource_priority),
        };
        // Answer is placed before whatever the rules emit, once we know they do not refuse.
        let answer_at = self.out.len();
        self.trail(id, Step::Admitted);
        self.sequence += 1;
        let call = Call {
            zone: offer.zone,
            home,
            cta: home,
            service: offer.service,
            priority,
            caller: offer.caller,
            source: offer.source,
            place: offer.place,
            summary: None,
            transfer: None,
            conversations: 0,
            offered_at: self.now,
            queued_at: self.now,
            entered_at: self.now,
            state: CallState::Queued,
            key: (Reverse(priority), self.now, self.sequence),
            overflowed_from: None,
            mutual_aid: false,
            wants_aid: false,
            engaged_at: self.now,
            pinned: false,
            crisis_related: false,
            memory: Memory::default(),
            no_answer_at: self.now,
            generation: 0,
            suspected: offer.suspected,
            admitted_suspected: offer.suspected,
            medium: offer.medium,
        };
        self.calls.insert(id, call);
        let target = match self.evaluate(id, None) {
            Decision::Busy(reason) => {
                // Refused before any answer: nothing was admitted, nothing can be played.
                let mut position = 0;
                self.out.retain(|command| {
                    position += 1;
                    position <= answer_at
                        || !matches!(
                            command,
                            Command::Play { .. }
                                | Command::Trail {
                                    step: Step::Admitted,
                                    ..
                                }
                        )
                });
                self.end(id, Outcome::Rejected, EndReason::Busy(reason));
                return;
            }
            Decision::Queue(cta) => cta,
            // Fail-safe: a call with nowhere better to go waits in its home queue; never dropped.
            Decision::Stay | Decision::NoRoute => home,
        };
        self.out.insert(answer_at, Command::Answer { call: id });
        if target != home {
            if let Some(call) = self.calls.get_mut(&id) {
                call.overflowed_from = Some(home);
                call.wants_aid = false;
            }
            self.trail(
                id,
                Step::Overflowed {
                    from: home,
                    to: target,
                },
            );
        }
        self.enqueue(id, target);
        self.mark_overdue(id);
    }
}
