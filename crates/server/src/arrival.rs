//! A new emergency call as the driver takes it in, whoever placed it: an INVITE read, its
//! audio anchored and its caller located, or a simulated caller of the demonstration.

use std::sync::Arc;

use secourir_cluster::OfferedRecord;
use secourir_config::{Plan, Service};
use secourir_core::{CallId, Instant, Medium, NotCarried, Offer, Whereabouts};
use secourir_media::{LegId, Media, MediaError, sdp};
use secourir_sip::{Decision, Ingress};
use secourir_territory::Territory;
use tokio::sync::oneshot;
use tracing::info;

use crate::locating::{CallPlace, locate_call};

/// The caller's media anchored here, and the answer its INVITE waits for.
pub(crate) struct CallerSide {
    /// Media leg of the caller; None when its media is not anchored on this node (a simulated
    /// caller).
    pub(crate) leg: Option<LegId>,
    /// Where the 200 OK goes.
    pub(crate) decide: Option<oneshot::Sender<Decision>>,
    /// SDP of the 200 OK.
    pub(crate) answer_sdp: String,
    /// Call-Info headers (emergency CallId and IncidentId) sent on every leg of the call.
    pub(crate) call_info: Vec<(String, String)>,
}

/// A new call, before the core has seen it.
pub struct Arrival {
    /// Its number.
    pub(crate) call: CallId,
    /// The emergency CallId (RFC 7852), the upstream one or ours.
    pub(crate) emergency_call_id: String,
    /// Caller's number.
    pub(crate) caller: Option<String>,
    /// Service dialled.
    pub(crate) service: Service,
    /// RFC 4412 `esnet` level, when sent.
    pub(crate) resource_priority: Option<u8>,
    /// Ingress trunk.
    pub(crate) trunk: Option<String>,
    /// Where the caller is.
    pub(crate) place: CallPlace,
    /// Header lines rebuilt from bytes that were not UTF-8.
    pub(crate) repaired_headers: Option<String>,
    /// Why the platform cannot carry the call, if it cannot.
    pub(crate) refused: Option<NotCarried>,
    /// Spoken, or written.
    pub(crate) medium: Medium,
    /// The caller's side of the call.
    pub(crate) side: CallerSide,
}

impl Arrival {
    /// A simulated caller's call to 18 from `caller` at `place` (the demonstration): its audio
    /// is not anchored, nothing to hear and nothing to record.
    pub fn simulated(call: CallId, caller: String, place: CallPlace) -> Arrival {
        let now = Instant(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        );
        Arrival {
            call,
            emergency_call_id: emergency_id("callid", call, now, "simulation"),
            caller: Some(caller),
            service: Service::Fire,
            resource_priority: None,
            trunk: Some("simulation".into()),
            place,
            repaired_headers: None,
            refused: None,
            medium: Default::default(),
            side: CallerSide {
                leg: None,
                decide: None,
                answer_sdp: String::new(),
                call_info: Vec::new(),
            },
        }
    }

    /// What the call's record says, on every node.
    pub(crate) fn record(&self) -> OfferedRecord {
        let place = &self.place;
        OfferedRecord {
            call: self.call,
            emergency_call_id: self.emergency_call_id.clone(),
            caller: self.caller.clone(),
            service: self.service.urn().to_owned(),
            zone: place.zone,
            departement: place.departement.clone(),
            commune: place.commune.clone(),
            insee: place.insee.clone(),
            point: place.point,
            radius_m: place.radius_m,
            location_source: place.source.to_owned(),
            location_problem: place.problem.clone(),
            trunk: self.trunk.clone(),
            repaired_headers: self.repaired_headers.clone(),
        }
    }

    /// The core's view of the call.
    pub(crate) fn offer(&self) -> Offer {
        let place = &self.place;
        Offer {
            call: self.call,
            zone: place.zone,
            service: self.service,
            resource_priority: self.resource_priority,
            caller: self.caller.as_deref().map(Into::into),
            source: self.trunk.as_deref().map(Into::into),
            place: Some(Arc::new(whereabouts(place))),
            suspected: false,
            refused: self.refused,
            medium: self.medium,
        }
    }
}

/// A located place as the core keeps it.
pub(crate) fn whereabouts(place: &CallPlace) -> Whereabouts {
    Whereabouts {
        departement: place.departement.as_str().into(),
        commune: place.commune.as_deref().map(Into::into),
        insee: place.insee.as_deref().map(Into::into),
        point: place.point,
        radius_m: place.radius_m,
        source: place.source.into(),
    }
}

/// The identifiers of RFC 7852 for a call that came without them.
pub(crate) fn emergency_id(kind: &str, call: CallId, now: Instant, instance: &str) -> String {
    format!(
        "urn:emergency:uid:{kind}:{:016x}{:08x}:{instance}",
        call.0, now.0 as u32
    )
}

/// What an emergency INVITE brings, read, located and anchored. A call that cannot be carried
/// (no audio it could use, no media port left) is an arrival all the same: the core refuses it,
/// so that it is on record and its caller on the call-back list.
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_invite(
    call: CallId,
    ingress: Ingress,
    decide: oneshot::Sender<Decision>,
    media: &Media,
    territory: &Territory,
    plan: &Plan,
    instance: &str,
    now: Instant,
) -> Arrival {
    let place = locate_call(
        territory,
        plan,
        &ingress.locations,
        ingress.trunk.as_deref(),
        ingress.location_problem.clone(),
    );
    let emergency_call_id = ingress
        .upstream_call_id
        .clone()
        .unwrap_or_else(|| emergency_id("callid", call, now, instance));
    let incident_id = ingress
        .upstream_incident_id
        .clone()
        .unwrap_or_else(|| emergency_id("incidentid", call, now, instance));
    let call_info = vec![(
        "Call-Info".to_owned(),
        format!(
            "<{emergency_call_id}>;purpose=emergency-CallId, <{incident_id}>;purpose=emergency-IncidentId"
        ),
    )];
    let (leg, answer_sdp, refused) = match anchor(call, &ingress.sdp, media) {
        Ok((leg, answer_sdp)) => (Some(leg), answer_sdp, None),
        Err(why) => {
            metrics::counter!("secourir_calls_not_carried_total", "why" => why.as_str())
                .increment(1);
            (None, String::new(), Some(why))
        }
    };
    Arrival {
        call,
        emergency_call_id,
        caller: ingress.caller,
        service: ingress.service,
        resource_priority: ingress.resource_priority,
        trunk: ingress.trunk,
        place,
        repaired_headers: ingress.repaired_headers,
        refused,
        medium: Medium::Voice,
        side: CallerSide {
            leg,
            decide: Some(decide),
            answer_sdp,
            call_info,
        },
    }
}

/// A conversation written to the platform (SIP MESSAGE), located by the position its first
/// message carries, else as a voice call from the same trunk would be. Nothing to anchor: the
/// caller's side is where replies go.
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_text(
    call: CallId,
    ingress: &secourir_sip::TextIngress,
    locations: &[secourir_location::PidfLocation],
    location_problem: Option<String>,
    territory: &Territory,
    plan: &Plan,
    instance: &str,
    now: Instant,
) -> Arrival {
    let place = locate_call(
        territory,
        plan,
        locations,
        ingress.trunk.as_deref(),
        location_problem,
    );
    let emergency_call_id = emergency_id("callid", call, now, instance);
    Arrival {
        call,
        emergency_call_id,
        caller: ingress.caller.clone(),
        service: ingress.service,
        resource_priority: ingress.resource_priority,
        trunk: ingress.trunk.clone(),
        place,
        repaired_headers: None,
        refused: None,
        medium: Medium::Text,
        side: CallerSide {
            leg: None,
            decide: None,
            answer_sdp: String::new(),
            call_info: Vec::new(),
        },
    }
}

/// The caller's audio anchored on a media leg, and the SDP answer; or why it cannot be.
fn anchor(call: CallId, sdp_offer: &[u8], media: &Media) -> Result<(LegId, String), NotCarried> {
    let offer = sdp::parse(sdp_offer).map_err(|e| {
        info!(?call, error = %e, "INVITE without usable audio");
        match e {
            MediaError::SrtpKey(_) => NotCarried::UnusableSrtpKey,
            _ => NotCarried::NoAudioOffer,
        }
    })?;
    let codec = sdp::choose(&offer).ok_or(NotCarried::NoCommonCodec)?;
    let (leg, local) = media.open_leg().map_err(|_| NotCarried::NoMediaPort)?;
    media.set_remote(leg, offer.addr, codec, offer.dtmf_pt);
    // A peer that offers SRTP (SDES) gets it: our own key for what we send, theirs read.
    let our_key = offer.crypto.as_ref().map(|theirs| {
        let mut key_salt = [0u8; 30];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut key_salt);
        sdp::SdesKey {
            tag: theirs.tag,
            suite: theirs.suite,
            key_salt,
        }
    });
    if let (Some(theirs), Some(ours)) = (&offer.crypto, &our_key) {
        let keys = secourir_media::SrtpKeys {
            suite: theirs.suite,
            theirs: theirs.key_salt,
            ours: ours.key_salt,
        };
        if let Err(e) = media.set_srtp(leg, &keys) {
            info!(?call, error = %e, "SRTP could not be set up for a new call");
            media.close(leg);
            return Err(NotCarried::UnusableSrtpKey);
        }
    }
    let protection = match &our_key {
        Some(key) => sdp::Protection::Srtp {
            key,
            secure: offer.secure,
        },
        None => sdp::Protection::Clear,
    };
    let answer = sdp::answer(local, call.0, codec, offer.dtmf_pt.map(|_| 101), protection);
    Ok((leg, answer))
}
