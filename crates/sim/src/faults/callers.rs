//! What callers and their handsets send: offers (some refused by a rule, some for an unknown
//! zone, some from a caller calling again) and AML positions, for live numbers and others.

use std::sync::Arc;

use rand::RngExt;
use secourir_config::ZoneId;
use secourir_core::{CallId, Event, NotCarried, Offer, Service, Whereabouts};

use super::Violation;
use super::driver::Driver;

/// The national form of the number a call comes from.
pub(super) fn number(call: u64) -> String {
    format!("06{:08}", call % 100_000_000)
}

impl Driver<'_, '_> {
    pub(super) fn offer(&mut self, zone: Option<ZoneId>) -> Result<(), Violation> {
        let call = self.next_call;
        self.next_call += 1;
        let zone = match zone {
            Some(zone) => zone,
            None if self.rng.random_bool(0.02) => ZoneId(u16::MAX),
            None => self.zone(),
        };
        let service = match self.rng.random_range(0..20) {
            0..14 => Service::Fire,
            14..19 => Service::Sos,
            _ => Service::Other,
        };
        let resource_priority = match self.rng.random_range(0..20) {
            0..16 => None,
            16 => Some(0),
            17 => Some(1),
            _ => Some(self.rng.random_range(2..5)),
        };
        let caller: Option<Box<str>> = match self.rng.random_range(0..100) {
            0..85 => Some(number(call).into()),
            85..92 => {
                // A caller who calls again while their first call is still live.
                let again = self.live_call().and_then(|c| self.core.call(c)?.caller);
                again.or_else(|| Some(number(call).into()))
            }
            92..95 => Some(format!("+33999{call:06}").into()),
            _ => None,
        };
        let departement = self
            .plan
            .zones
            .get(usize::from(zone.0))
            .map_or("??", |z| z.code.as_str());
        let place = self.rng.random_bool(0.5).then(|| {
            Arc::new(Whereabouts {
                departement: departement.into(),
                source: "pidf".into(),
                point: Some((43.3, 5.4)),
                radius_m: Some(50.0),
                ..Whereabouts::default()
            })
        });
        let source = self.rng.random_bool(0.5).then(|| "trunk-orange".into());
        // Some callers come suspected of a flood: they must be served, never lost, all the same.
        let suspected = self.rng.random_bool(0.15);
        // Some the shell cannot carry (no common codec, no media port…): refused, and still on
        // record and on the call-back list.
        let refused = self.rng.random_bool(0.03).then(|| {
            [
                NotCarried::NoAudioOffer,
                NotCarried::NoCommonCodec,
                NotCarried::UnusableSrtpKey,
                NotCarried::NoMediaPort,
            ][self.rng.random_range(0..4)]
        });
        let medium = if self.rng.random_bool(0.05) {
            secourir_core::Medium::Text
        } else {
            secourir_core::Medium::Voice
        };
        self.feed(Event::Offered(Offer {
            call: CallId(call),
            zone,
            service,
            resource_priority,
            caller,
            source,
            place,
            suspected,
            refused,
            medium,
        }))
    }

    /// An AML position for a live caller, written another way, or for a number with no call.
    pub(super) fn located(&mut self) -> Result<(), Violation> {
        let live = self
            .live_call()
            .and_then(|c| self.core.call(c)?.caller)
            .filter(|_| self.rng.random_bool(0.6));
        let caller: Box<str> = match live {
            Some(n) => {
                let rest = n.strip_prefix('0').unwrap_or(&n).to_owned();
                match self.rng.random_range(0..3) {
                    0 => format!("+33{rest}").into(),
                    1 => format!("33{rest}").into(),
                    _ => n,
                }
            }
            None => format!("07{:08}", self.rng.random_range(0..100_000_000u64)).into(),
        };
        let id = self.request_id();
        self.feed(Event::Located {
            id,
            caller,
            place: Arc::new(Whereabouts {
                departement: "13".into(),
                point: Some((43.29, 5.37)),
                radius_m: Some(12.0),
                source: "aml".into(),
                ..Whereabouts::default()
            }),
        })
    }
}
