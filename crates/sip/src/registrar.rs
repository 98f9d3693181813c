//! Where each call-taker's phone can be reached: the registrar's bindings, with their expiry.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Shortest registration accepted, in seconds (RFC 3261 §10.3 Min-Expires).
pub const MIN_EXPIRES_S: u64 = 30;
/// Longest registration granted, in seconds.
pub const MAX_EXPIRES_S: u64 = 3600;

/// The transport a phone registered over. Over TLS, requests go back on the phone's own
/// connection (the platform dials no TLS connection to a phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Datagrams.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS.
    Tls,
}

/// A registered phone.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Contact URI as the phone gave it.
    pub contact: String,
    /// Address the REGISTER came from: where to send requests when the phone is behind NAT.
    pub source: SocketAddr,
    /// The transport its REGISTER came over.
    pub over: Over,
    /// Seconds since the epoch at which the binding lapses.
    pub expires_at_s: u64,
}

/// Bindings by call-taker index.
#[derive(Debug, Default)]
pub struct Registrar {
    bindings: HashMap<usize, Binding>,
}

impl Registrar {
    /// Records or refreshes a binding; an expiry of zero removes it. Returns the granted expiry.
    pub fn register(
        &mut self,
        call_taker: usize,
        contact: String,
        source: SocketAddr,
        over: Over,
        expires_s: u64,
        now_s: u64,
    ) -> u64 {
        if expires_s == 0 {
            self.bindings.remove(&call_taker);
            return 0;
        }
        let granted = expires_s.clamp(MIN_EXPIRES_S, MAX_EXPIRES_S);
        self.bindings.insert(
            call_taker,
            Binding {
                contact,
                source,
                over,
                expires_at_s: now_s + granted,
            },
        );
        granted
    }

    /// The live binding of a call-taker.
    pub fn lookup(&self, call_taker: usize, now_s: u64) -> Option<&Binding> {
        self.bindings
            .get(&call_taker)
            .filter(|b| b.expires_at_s > now_s)
    }

    /// Number of live bindings.
    pub fn live(&self, now_s: u64) -> usize {
        self.bindings
            .values()
            .filter(|b| b.expires_at_s > now_s)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_lapse_and_clamp() {
        let mut r = Registrar::default();
        let source: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        assert_eq!(
            r.register(3, "sip:a@x".into(), source, Over::Udp, 5, 100),
            MIN_EXPIRES_S
        );
        assert!(r.lookup(3, 100 + MIN_EXPIRES_S - 1).is_some());
        assert!(r.lookup(3, 100 + MIN_EXPIRES_S).is_none());
        assert_eq!(
            r.register(3, "sip:a@x".into(), source, Over::Udp, 99_999, 100),
            MAX_EXPIRES_S
        );
        assert_eq!(r.live(101), 1);
        assert_eq!(
            r.register(3, "sip:a@x".into(), source, Over::Udp, 0, 101),
            0
        );
        assert!(r.lookup(3, 101).is_none());
    }
}
