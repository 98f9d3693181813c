//! The rule each command obeys, given what the stream said before it.

use secourir_config::ZoneId;
use secourir_core::{CallId, Command, EndReason, Outcome};

use super::{Checker, Live, Violation, committed, ensure};

impl Checker {
    /// Checks one command; `rejected` gathers the calls refused so far in this event.
    pub(super) fn command(
        &mut self,
        command: &Command,
        rejected: &mut Vec<CallId>,
    ) -> Result<(), Violation> {
        let c = &mut self.checks;
        match command {
            Command::Answer { call } => {
                let zone = self.offered.get(call).copied();
                ensure(c, zone.is_some(), || {
                    format!("call {} answered but never offered", call.0)
                })?;
                ensure(c, self.answered.insert(*call), || {
                    format!("call {} answered twice", call.0)
                })?;
                let zone = zone.unwrap_or(ZoneId(0));
                let z = usize::from(zone.0);
                let share = self.guaranteed.get(z).copied().unwrap_or(0);
                let used = self.live_in_zone.get(z).copied().unwrap_or(0);
                let suspected = self.suspected.contains(call);
                let [n, beyond] = self.live_suspected;
                let held = committed(&self.live_in_zone, &self.guaranteed) + n;
                let pool_empty = held >= self.capacity;
                if suspected {
                    let max = self.suspected_max;
                    let in_share = !pool_empty && n < max;
                    ensure(c, in_share || held + beyond < self.capacity, || {
                        format!(
                            "suspect {} admitted with no capacity free ({n} of {max} suspects \
                             in their share, {beyond} beyond)",
                            call.0
                        )
                    })?;
                    self.live_suspected[usize::from(!in_share)] += 1;
                } else {
                    ensure(c, !(used >= share && pool_empty), || {
                        format!(
                            "call {} admitted beyond its zone's share with the pool empty",
                            call.0
                        )
                    })?;
                    if let Some(n) = self.live_in_zone.get_mut(z) {
                        *n += 1;
                    }
                }
                self.live.insert(
                    *call,
                    Live {
                        zone,
                        holder: None,
                        bridged: false,
                        conversations: 0,
                        partner_rung: false,
                        suspected,
                    },
                );
                let total = self.live.len() as u64 - self.live_suspected[1];
                let capacity = self.capacity;
                ensure(&mut self.checks, total <= capacity, || {
                    format!("{total} calls admitted within shares and pool, capacity {capacity}")
                })?;
            }
            Command::Reject { call, reason } => {
                ensure(c, self.offered.contains_key(call), || {
                    format!("call {} refused but never offered", call.0)
                })?;
                ensure(c, !self.live.contains_key(call), || {
                    format!("call {} refused after it was answered", call.0)
                })?;
                if *reason == EndReason::NoCapacity {
                    let zone = self.offered[call];
                    let z = usize::from(zone.0);
                    let share = self.guaranteed.get(z).copied().unwrap_or(0);
                    let used = self.live_in_zone.get(z).copied().unwrap_or(0);
                    let [n, beyond] = self.live_suspected;
                    let held = committed(&self.live_in_zone, &self.guaranteed) + n;
                    let pool_empty = held >= self.capacity;
                    let room =
                        (!pool_empty && n < self.suspected_max) || held + beyond < self.capacity;
                    let suspected = self.suspected.contains(call);
                    ensure(c, !suspected || !room, || {
                        format!("suspect {} refused for capacity with capacity free", call.0)
                    })?;
                    ensure(c, suspected || (used >= share && pool_empty), || {
                        format!(
                            "call {} refused for capacity while zone {} used {used} of its \
                             share {share} or the pool had room",
                            call.0, zone.0
                        )
                    })?;
                }
                rejected.push(*call);
            }
            Command::Ended { call, outcome, .. } => {
                ensure(c, self.offered.contains_key(call), || {
                    format!("call {} ended without being offered", call.0)
                })?;
                ensure(c, self.ended.insert(*call), || {
                    format!("call {} ended twice", call.0)
                })?;
                let live = self.live.remove(call);
                if *outcome == Outcome::Rejected {
                    ensure(c, live.is_none() && rejected.contains(call), || {
                        format!("call {} ended as rejected without a refusal", call.0)
                    })?;
                    // A refused caller is called back as an abandoned one is.
                    self.abandoned.insert(*call);
                    return Ok(());
                }
                let Some(live) = live else {
                    return Err(Violation(format!(
                        "call {} ended ({outcome:?}) without being answered",
                        call.0
                    )));
                };
                release(
                    &mut self.live_in_zone,
                    &mut self.live_suspected,
                    &mut self.holds,
                    &live,
                );
                match outcome {
                    Outcome::Transferred => ensure(c, self.handed_over.contains(call), || {
                        format!("call {} ended as transferred without a handover", call.0)
                    })?,
                    Outcome::Abandoned => {
                        ensure(c, !live.bridged, || {
                            format!("call {} ended as abandoned while in conversation", call.0)
                        })?;
                        self.abandoned.insert(*call);
                    }
                    _ => {}
                }
            }
            Command::Withdrawn { call, .. } => {
                ensure(c, self.ended.insert(*call), || {
                    format!("call {} withdrawn after it ended", call.0)
                })?;
                let Some(live) = self.live.remove(call) else {
                    return Err(Violation(format!(
                        "call {} withdrawn without being answered",
                        call.0
                    )));
                };
                release(
                    &mut self.live_in_zone,
                    &mut self.live_suspected,
                    &mut self.holds,
                    &live,
                );
            }
            Command::Ring { call, agent } => {
                let live = self.live.get_mut(call);
                ensure(c, live.is_some(), || {
                    format!("call {} rung but not live", call.0)
                })?;
                let live = live.expect("checked");
                ensure(c, !live.bridged, || {
                    format!("ringing call {} already answered", call.0)
                })?;
                ensure(c, live.holder.is_none(), || {
                    format!(
                        "call {} rung to call-taker {} while call-taker {:?} holds it",
                        call.0,
                        agent.0,
                        live.holder.map(|a| a.0)
                    )
                })?;
                let held = self.holds.get(agent).copied();
                ensure(c, held.is_none(), || {
                    format!(
                        "call-taker {} rung for call {} while holding call {:?}",
                        agent.0,
                        call.0,
                        held.map(|h| h.0)
                    )
                })?;
                live.holder = Some(*agent);
                self.holds.insert(*agent, *call);
            }
            Command::CancelRing { call, agent } => {
                if let Some(live) = self.live.get_mut(call)
                    && live.holder == Some(*agent)
                {
                    // A repeated answer from the phone already talking with the call must not
                    // cancel its ring: the shell would hang up the conversation's leg.
                    ensure(c, !live.bridged, || {
                        format!(
                            "the ring of call {} cancelled while call-taker {} talks with \
                             the caller (the shell hangs their leg up)",
                            call.0, agent.0
                        )
                    })?;
                    live.holder = None;
                    self.holds.remove(agent);
                }
                // Otherwise a stray leg (an answer after the ring moved on): hanging it up is right.
            }
            Command::Bridge {
                call,
                agent,
                conversation,
            } => {
                let live = self.live.get_mut(call);
                ensure(c, live.is_some(), || {
                    format!("call {} bridged but not live", call.0)
                })?;
                let live = live.expect("checked");
                ensure(c, !live.bridged, || {
                    format!("call {} bridged twice", call.0)
                })?;
                ensure(c, live.holder == Some(*agent), || {
                    format!(
                        "call {} bridged to call-taker {} who was not rung for it",
                        call.0, agent.0
                    )
                })?;
                ensure(c, *conversation == live.conversations + 1, || {
                    format!(
                        "call {} bridged as conversation {conversation} after {}",
                        call.0, live.conversations
                    )
                })?;
                live.bridged = true;
                live.conversations += 1;
            }
            Command::Unbridge { call, agent } => {
                let live = self.live.get_mut(call);
                let ok = live
                    .as_ref()
                    .is_some_and(|l| l.bridged && l.holder == Some(*agent));
                ensure(c, ok, || {
                    format!(
                        "call {} unbridged from call-taker {} who did not talk with it",
                        call.0, agent.0
                    )
                })?;
                let live = live.expect("checked");
                ensure(c, !live.partner_rung, || {
                    format!("call {} unbridged while its partner service rings", call.0)
                })?;
                live.bridged = false;
                live.holder = None;
                self.holds.remove(agent);
            }
            Command::HangUp { call } => {
                let talking = self.live.get(call).is_some_and(|l| l.bridged);
                ensure(c, talking || self.handed_over.contains(call), || {
                    format!(
                        "caller of call {} hung up while not in conversation",
                        call.0
                    )
                })?;
            }
            Command::CallPartner { call, .. } => {
                let live = self.live.get_mut(call);
                let ok = live.as_ref().is_some_and(|l| l.bridged && !l.partner_rung);
                ensure(c, ok, || {
                    format!(
                        "partner rung for call {} not in conversation, or rung twice",
                        call.0
                    )
                })?;
                live.expect("checked").partner_rung = true;
            }
            Command::HandOver { call, agent } => {
                let live = self.live.get_mut(call);
                let ok = live
                    .as_ref()
                    .is_some_and(|l| l.partner_rung && l.bridged && l.holder == Some(*agent));
                ensure(c, ok, || {
                    format!(
                        "call {} handed over by call-taker {} without a partner rung or while \
                         not holding it",
                        call.0, agent.0
                    )
                })?;
                ensure(c, self.handed_over.insert(*call), || {
                    format!("partner leg of call {} handed over twice", call.0)
                })?;
                live.expect("checked").partner_rung = false;
            }
            Command::DropPartner { call } => {
                // Dropping a leg already gone is harmless: the shell finds nothing to hang up.
                if let Some(live) = self.live.get_mut(call) {
                    live.partner_rung = false;
                }
                self.handed_over.remove(call);
            }
            Command::Reply { request, .. } => {
                ensure(c, self.open.remove(request), || {
                    format!("request {} answered twice, or never asked", request.0)
                })?;
            }
            Command::AgentChanged { agent, status } => {
                use secourir_core::AgentStatus as S;
                if matches!(status, S::Available | S::Paused | S::WrapUp | S::Offline) {
                    let held = self.holds.get(agent).copied();
                    ensure(c, held.is_none(), || {
                        format!(
                            "call-taker {} became {status:?} while holding call {:?}",
                            agent.0,
                            held.map(|h| h.0)
                        )
                    })?;
                }
            }
            Command::Callback { call, state, .. } => {
                if *state == secourir_core::CallbackState::Pending {
                    ensure(c, self.abandoned.contains(call), || {
                        format!(
                            "call {} put on a call-back list but not abandoned or refused",
                            call.0
                        )
                    })?;
                }
            }
            Command::Play { call, .. } => {
                // Before its `Answer` (or for a call then refused) there is no media to play on.
                ensure(c, self.live.contains_key(call), || {
                    let why = if self.answered.contains(call) {
                        "already ended"
                    } else {
                        "never answered"
                    };
                    format!("announcement played to call {} not live ({why})", call.0)
                })?;
            }
            Command::Trail { .. } | Command::CrisisChanged { .. } => {}
        }
        Ok(())
    }
}

/// A live call gone: its zone's count and its call-taker are free again.
fn release(
    live_in_zone: &mut [u32],
    live_suspected: &mut [u64; 2],
    holds: &mut rustc_hash::FxHashMap<secourir_core::AgentId, CallId>,
    live: &Live,
) {
    if live.suspected {
        // Suspects are alike: one beyond the share takes the place freed in it.
        match live_suspected[1] {
            0 => live_suspected[0] -= 1,
            _ => live_suspected[1] -= 1,
        }
    } else if let Some(n) = live_in_zone.get_mut(usize::from(live.zone.0)) {
        *n -= 1;
    }
    if let Some(agent) = live.holder {
        holds.remove(&agent);
    }
}
