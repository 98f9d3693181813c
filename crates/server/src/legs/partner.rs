//! A call handed to a partner service (15, 17): its leg rung, the caller handed over, the
//! partner dropped.

use super::*;

impl Legs {
    pub(super) fn call_partner(
        &mut self,
        call: CallId,
        to: secourir_config::Service,
        subject: &str,
    ) -> bool {
        let Some(partner) = self.plan.partner_service(to) else {
            return false;
        };
        let Some(legs) = self.calls.get(&call) else {
            return false;
        };
        let mut headers = legs.caller.call_info.clone();
        if !subject.is_empty() {
            headers.push(("Subject".into(), subject.to_owned()));
        }
        let (leg, local) = match self.media.open_leg() {
            Ok(opened) => opened,
            Err(e) => {
                warn!(?call, error = %e, "no media port to call a partner");
                return false;
            }
        };
        let uri = partner.uri.clone();
        if !self
            .signalling
            .call_partner(call, &uri, sdp::offer(local, call.0), headers)
        {
            self.close_leg(call, leg, Conversation::Partner);
            return false;
        }
        info!(?call, partner = %partner.name, "calling the partner service");
        if let Some(legs) = self.calls.get_mut(&call) {
            legs.partner = Some(leg);
        }
        true
    }

    /// The partner answered: the call-taker leaves, the caller stays with the partner.
    pub(super) fn hand_over(&mut self, call: CallId, agent: AgentId) {
        self.signalling.hang_up_agent(call, agent);
        self.close_agent_leg(call, agent);
        let Some(legs) = self.calls.get_mut(&call) else {
            return;
        };
        legs.handed_over = true;
        if let (Some(caller), Some(partner)) = (legs.caller.leg, legs.partner) {
            let path = self.recordings.join(format!("call-{}-partner.wav", call.0));
            self.media.bridge(caller, partner, Some(path));
        }
    }

    pub(super) fn drop_partner(&mut self, call: CallId) {
        self.signalling.hang_up_partner(call);
        let Some(legs) = self.calls.get_mut(&call) else {
            return;
        };
        let partner = legs.partner.take();
        let over = legs.handed_over;
        if let Some(leg) = partner {
            self.close_leg(call, leg, Conversation::Partner);
        }
        if over {
            // The conversation with the partner is over: so is the call.
            if let Some(legs) = self.calls.remove(&call)
                && let Some(leg) = legs.caller.leg
            {
                self.close_leg(call, leg, Conversation::Partner);
            }
        }
    }
}
