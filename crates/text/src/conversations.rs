//! Which conversation a message belongs to.

use std::collections::HashMap;

use secourir_core::CallId;

use crate::Kind;

/// An open conversation.
#[derive(Debug, Clone)]
struct Open {
    call: CallId,
    /// Last message of either side, ms.
    last_ms: u64,
}

/// What a message that arrives means for its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It opens a new conversation: the shell numbers it and offers it to the core.
    New,
    /// It belongs to this open conversation.
    Continues(CallId),
    /// It belongs to this conversation, and the caller's app ends it (DEC112 stop).
    Ends(CallId),
}

/// The open conversations, by the caller's address (or the conversation id their app gives).
#[derive(Debug, Clone)]
pub struct Conversations {
    idle_ms: u64,
    open: HashMap<String, Open>,
    peers: HashMap<CallId, String>,
}

impl Conversations {
    /// No conversation open; one with no message of either side for `idle_ms` is over.
    pub fn new(idle_ms: u64) -> Conversations {
        Conversations {
            idle_ms,
            open: HashMap::new(),
            peers: HashMap::new(),
        }
    }

    /// From now on, a conversation with no message for `idle_ms` is over.
    pub fn set_idle(&mut self, idle_ms: u64) {
        self.idle_ms = idle_ms;
    }

    /// A message of `kind` came from `peer` at `now_ms`.
    pub fn arrive(&mut self, peer: &str, kind: Kind, now_ms: u64) -> Arrival {
        match self.open.get_mut(peer) {
            Some(open) => {
                open.last_ms = now_ms;
                if kind.stop {
                    Arrival::Ends(open.call)
                } else {
                    Arrival::Continues(open.call)
                }
            }
            None => Arrival::New,
        }
    }

    /// The shell opened conversation `call` with `peer`.
    pub fn opened(&mut self, peer: &str, call: CallId, now_ms: u64) {
        if let Some(earlier) = self.open.insert(
            peer.to_owned(),
            Open {
                call,
                last_ms: now_ms,
            },
        ) {
            self.peers.remove(&earlier.call);
        }
        self.peers.insert(call, peer.to_owned());
    }

    /// The call-taker wrote in conversation `call`: it is not idle.
    pub fn touched(&mut self, call: CallId, now_ms: u64) {
        if let Some(open) = self.peers.get(&call).and_then(|p| self.open.get_mut(p)) {
            open.last_ms = now_ms;
        }
    }

    /// The conversations with no message of either side for the idle time at `now_ms`: over,
    /// and no longer open.
    pub fn idle(&mut self, now_ms: u64) -> Vec<CallId> {
        let mut over: Vec<CallId> = self
            .open
            .values()
            .filter(|o| now_ms.saturating_sub(o.last_ms) >= self.idle_ms)
            .map(|o| o.call)
            .collect();
        over.sort();
        for call in &over {
            self.closed(*call);
        }
        over
    }

    /// Conversation `call` is over (ended by either side, or refused): a message from its
    /// peer after this opens a new one.
    pub fn closed(&mut self, call: CallId) {
        if let Some(peer) = self.peers.remove(&call) {
            self.open.remove(&peer);
        }
    }

    /// Where replies in conversation `call` go.
    pub fn peer_of(&self, call: CallId) -> Option<&str> {
        self.peers.get(&call).map(String::as_str)
    }

    /// When the next conversation falls idle, if one is open.
    pub fn next_idle_at(&self) -> Option<u64> {
        self.open.values().map(|o| o.last_ms + self.idle_ms).min()
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IDLE: u64 = 600_000;

    fn text() -> Kind {
        Kind::default()
    }

    #[test]
    fn one_callers_messages_within_the_idle_time_are_one_conversation() {
        let mut c = Conversations::new(IDLE);
        assert_eq!(c.arrive("sip:+33612345678@op", text(), 0), Arrival::New);
        c.opened("sip:+33612345678@op", CallId(1), 0);
        assert_eq!(
            c.arrive("sip:+33612345678@op", text(), 30_000),
            Arrival::Continues(CallId(1))
        );
        assert_eq!(
            c.arrive("sip:+33698765432@op", text(), 30_000),
            Arrival::New
        );
        assert_eq!(c.peer_of(CallId(1)), Some("sip:+33612345678@op"));
    }

    #[test]
    fn a_silent_conversation_ends_and_the_next_message_opens_another() {
        let mut c = Conversations::new(IDLE);
        c.opened("a", CallId(1), 0);
        c.touched(CallId(1), 500_000);
        assert_eq!(c.idle(IDLE), vec![], "the call-taker wrote at 500 s");
        assert_eq!(c.next_idle_at(), Some(500_000 + IDLE));
        assert_eq!(c.idle(500_000 + IDLE), vec![CallId(1)]);
        assert!(c.is_empty());
        assert_eq!(c.arrive("a", text(), 2_000_000), Arrival::New);
    }

    #[test]
    fn the_apps_stop_ends_its_conversation() {
        let mut c = Conversations::new(IDLE);
        c.opened("a", CallId(1), 0);
        let stop = Kind {
            stop: true,
            ..Kind::default()
        };
        assert_eq!(c.arrive("a", stop, 10), Arrival::Ends(CallId(1)));
        c.closed(CallId(1));
        assert_eq!(c.arrive("a", text(), 20), Arrival::New);
        assert_eq!(c.peer_of(CallId(1)), None);
    }

    proptest! {
        /// Whatever the messages and their times, every conversation opened is open or was
        /// ended exactly once, and no peer has two open at once.
        #[test]
        fn every_conversation_is_open_or_ended_once(
            steps in proptest::collection::vec((0u8..4, 0u64..900_000, any::<bool>()), 1..200)
        ) {
            let mut c = Conversations::new(IDLE);
            let (mut now, mut next) = (0u64, 1u64);
            let mut opened = Vec::new();
            let mut ended = Vec::new();
            for (peer, wait, stop) in steps {
                now += wait;
                ended.extend(c.idle(now));
                let peer = format!("p{peer}");
                let kind = Kind { stop, ..Kind::default() };
                match c.arrive(&peer, kind, now) {
                    Arrival::New => {
                        c.opened(&peer, CallId(next), now);
                        opened.push(CallId(next));
                        next += 1;
                    }
                    Arrival::Continues(_) => {}
                    Arrival::Ends(call) => {
                        c.closed(call);
                        ended.push(call);
                    }
                }
            }
            let mut all = ended.clone();
            all.extend(c.peers.keys().copied());
            all.sort();
            prop_assert_eq!(all, opened);
            prop_assert_eq!(c.open.len(), c.peers.len());
        }
    }
}
