//! What the legs ask of the signalling side, so that the SIP shell and the demonstration's
//! simulated phones in front of it are driven alike.

use secourir_core::{AgentId, CallId};

/// The signalling side the legs talk to: the SIP shell, or the demonstration's simulated
/// phones in front of it.
pub trait Signalling: Send {
    /// Rings a call-taker's phone; false when it is not registered.
    fn ring(
        &mut self,
        call: CallId,
        agent: AgentId,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool;
    /// Stops ringing, or hangs up the call-taker's leg.
    fn hang_up_agent(&mut self, call: CallId, agent: AgentId);
    /// Hangs up the caller's leg.
    fn hang_up_caller(&mut self, call: CallId);
    /// Calls a partner service; false when the INVITE is refused at once.
    fn call_partner(
        &mut self,
        call: CallId,
        uri: &str,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool;
    /// Hangs up the partner service's leg.
    fn hang_up_partner(&mut self, call: CallId);
    /// The caller now talks with a call-taker (a simulated caller stops counting its patience).
    fn connected(&mut self, _call: CallId) {}
    /// Whether this call-taker's phone can be rung.
    fn is_registered(&self, agent: AgentId) -> bool;
    /// Phones that can be rung now.
    fn registered(&self) -> usize;
}

impl Signalling for secourir_sip::Sip {
    fn ring(
        &mut self,
        call: CallId,
        agent: AgentId,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        secourir_sip::Sip::ring(self, call, agent, offer, headers)
    }
    fn hang_up_agent(&mut self, call: CallId, agent: AgentId) {
        secourir_sip::Sip::hang_up_agent(self, call, agent);
    }
    fn hang_up_caller(&mut self, call: CallId) {
        secourir_sip::Sip::hang_up_caller(self, call);
    }
    fn call_partner(
        &mut self,
        call: CallId,
        uri: &str,
        offer: String,
        headers: Vec<(String, String)>,
    ) -> bool {
        secourir_sip::Sip::call_partner(self, call, uri, offer, headers)
    }
    fn hang_up_partner(&mut self, call: CallId) {
        secourir_sip::Sip::hang_up_partner(self, call);
    }
    fn is_registered(&self, agent: AgentId) -> bool {
        secourir_sip::Sip::is_registered(self, agent)
    }
    fn registered(&self) -> usize {
        secourir_sip::Sip::registered(self)
    }
}
