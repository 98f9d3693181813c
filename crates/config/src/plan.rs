//! The validated configuration, with every reference resolved to an index.

use std::collections::HashMap;

mod policy;

pub use policy::*;

/// Index of a CTA in [`Plan::ctas`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CtaId(pub u16);

/// Index of a zone (one département) in [`Plan::zones`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ZoneId(pub u16);

/// Index of an announcement in [`Plan::announcements`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AnnouncementId(pub u16);

/// Index of a rule set in [`Plan::rule_sets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleSetId(pub u16);

/// The national configuration, checked and resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Simultaneous calls the platform carries nationally (admitted, not yet ended).
    pub capacity: u32,
    /// Of it, the most calls suspected of a flood may hold (they never take a zone's share).
    pub suspected_capacity: u32,
    /// Time zone in which rule periods are read.
    pub timezone: chrono_tz::Tz,
    /// Zone used when a call's location and trunk say nothing.
    pub default_zone: ZoneId,
    /// Bound on the call-back entries each CTA keeps in memory.
    pub callback_max: u32,
    /// A text conversation with no line of either side for this long is over (its caller, if
    /// nobody answered, to call back).
    pub text_idle_s: u32,
    /// Calls the country expects in a year: the prior of every CTA's offered-load estimate,
    /// shared out by population (0: no prior, the estimate starts from nothing).
    pub expected_calls_per_year: f64,
    /// Mean time a call holds a call-taker before any is observed (ring, talk), ms.
    pub mean_handling_ms: u64,
    /// Call-handling centres.
    pub ctas: Vec<CtaPlan>,
    /// One zone per département, each served by one CTA.
    pub zones: Vec<ZonePlan>,
    /// Recorded messages the SVI can play.
    pub announcements: Vec<Announcement>,
    /// Ordered policy rule sets.
    pub rule_sets: Vec<RuleSet>,
    /// Ingress trunks and their default locations.
    pub trunks: Vec<Trunk>,
    /// Call-takers who may register a phone and log in; their index is their agent number.
    pub call_takers: Vec<CallTaker>,
    /// Partner services calls are handed to (SAMU 15, police 17), by SIP URI.
    pub partner_services: Vec<PartnerService>,
    /// Certificate and key for SIP over TLS and HTTPS; None: SIP over UDP and TCP, plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The Hub Santé connection; None: no hub, cases go to the partners by voice only.
    pub hub: Option<HubSettings>,
    /// The partner services' client ids on the hub, for those the file gives one.
    pub partner_hub_ids: Vec<(Service, String)>,
    pub(crate) cta_index: HashMap<String, CtaId>,
    pub(crate) zone_index: HashMap<String, ZoneId>,
    pub(crate) announcement_index: HashMap<String, AnnouncementId>,
    pub(crate) trunk_index: HashMap<String, usize>,
    pub(crate) call_taker_index: HashMap<String, usize>,
}

impl Plan {
    /// The CTA with this identifier.
    pub fn cta_id(&self, id: &str) -> Option<CtaId> {
        self.cta_index.get(id).copied()
    }

    /// The zone of this département code.
    pub fn zone_id(&self, departement: &str) -> Option<ZoneId> {
        self.zone_index.get(departement).copied()
    }

    /// The announcement with this identifier.
    pub fn announcement_id(&self, id: &str) -> Option<AnnouncementId> {
        self.announcement_index.get(id).copied()
    }

    /// The partner service for this service, if one is configured.
    pub fn partner_service(&self, service: Service) -> Option<&PartnerService> {
        self.partner_services.iter().find(|p| p.service == service)
    }

    /// The hub client id of this service's partner, if the file gives one.
    pub fn partner_hub_id(&self, service: Service) -> Option<&str> {
        self.partner_hub_ids
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, id)| id.as_str())
    }

    /// Adds a call-taker (the demonstration's simulated ones); false if the login is taken.
    pub fn add_call_taker(&mut self, taker: CallTaker) -> bool {
        if self.call_taker_index.contains_key(&taker.login) {
            return false;
        }
        self.call_taker_index
            .insert(taker.login.clone(), self.call_takers.len());
        self.call_takers.push(taker);
        true
    }

    /// The call-taker with this login, with their index.
    pub fn call_taker(&self, login: &str) -> Option<(usize, &CallTaker)> {
        self.call_taker_index
            .get(login)
            .map(|&i| (i, &self.call_takers[i]))
    }

    /// The trunk with this identifier.
    pub fn trunk(&self, id: &str) -> Option<&Trunk> {
        self.trunk_index.get(id).map(|&i| &self.trunks[i])
    }

    /// Whether a running platform may take `next` in place of this plan without a restart:
    /// the same CTAs with their names and sites, the same zones served by the same CTAs, the
    /// same accounts, announcements and partner services (the SIP registrar, the consoles and
    /// the media hold those). Rules, capacity and shares, mutual aid, staffing, timings and
    /// trunks may change. The error lists what differs.
    pub fn may_become(&self, next: &Plan) -> Result<(), String> {
        let mut differs = Vec::new();
        let ctas = |p: &Plan| {
            p.ctas
                .iter()
                .map(|c| (c.id.clone(), c.name.clone(), c.sites.clone()))
                .collect::<Vec<_>>()
        };
        if ctas(self) != ctas(next) {
            differs.push("the CTAs (their list, names or sites)");
        }
        let zones = |p: &Plan| {
            p.zones
                .iter()
                .map(|z| (z.code.clone(), z.cta))
                .collect::<Vec<_>>()
        };
        if zones(self) != zones(next) {
            differs.push("the départements served by each CTA");
        }
        if self.call_takers != next.call_takers {
            differs.push("the accounts");
        }
        if self.announcements != next.announcements {
            differs.push("the announcements");
        }
        if self.partner_services != next.partner_services
            || self.partner_hub_ids != next.partner_hub_ids
        {
            differs.push("the partner services");
        }
        // The hub's link and outbox are opened once, at start.
        if self.hub != next.hub {
            differs.push("the [hub] table");
        }
        match differs.as_slice() {
            [] => Ok(()),
            _ => Err(format!(
                "{} changed: that needs a restart",
                differs.join(", ")
            )),
        }
    }

    /// The CTA with this index.
    pub fn cta(&self, id: CtaId) -> &CtaPlan {
        &self.ctas[usize::from(id.0)]
    }

    /// The zone with this index.
    pub fn zone(&self, id: ZoneId) -> &ZonePlan {
        &self.zones[usize::from(id.0)]
    }

    /// The home CTA of a zone.
    pub fn home_cta(&self, zone: ZoneId) -> CtaId {
        self.zone(zone).cta
    }

    /// Sum of the guaranteed shares of all zones.
    pub fn reserved_total(&self) -> u64 {
        self.zones.iter().map(|z| u64::from(z.guaranteed)).sum()
    }
}

/// How a CTA's call-takers get calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DequeueMode {
    /// The platform offers each call to the longest-idle available call-taker.
    Acd,
    /// Call-takers pick calls from the shared queue themselves.
    Picking,
    /// Call-takers pick, and a call nobody picked within `no_answer` is offered by the ACD.
    Mixed,
}

/// One call-handling centre (possibly virtual: several sites, one queue).
#[derive(Debug, Clone)]
pub struct CtaPlan {
    /// Identifier used in the file and the API (`cta-13`).
    pub id: String,
    /// Name shown to people.
    pub name: String,
    /// Départements whose calls this CTA answers.
    pub departements: Vec<String>,
    /// Sites where its call-takers sit.
    pub sites: Vec<Site>,
    /// Mutual-aid partners, in order of preference: the first tier (neighbours).
    pub partners: Vec<CtaId>,
    /// Second tier: the CTAs of the region that are not partners, in order of preference.
    pub region: Vec<CtaId>,
    /// Whether every other CTA of the country is a third tier.
    pub national_aid: bool,
    /// Where the CTA is (latitude, longitude), which orders the national tier by distance.
    pub location: Option<(f64, f64)>,
    /// Every CTA that may lend it call-takers, tiers in order: partners, region, then the rest
    /// of the country nearest first.
    pub lenders: Vec<CtaId>,
    /// Call-takers on shift by day and by night.
    pub staffing: Staffing,
    /// Rule set evaluated for this CTA's zones.
    pub rule_set: RuleSetId,
    /// How call-takers get calls.
    pub mode: DequeueMode,
    /// A ringing call-taker who does not answer within this delay is marked unavailable.
    pub ring_timeout_ms: u64,
    /// Time a call-taker stays unavailable after a call.
    pub wrap_up_ms: u64,
    /// A call waiting this long counts as a failed route (`no-answer`) and the rules run again.
    pub no_answer_ms: u64,
    /// Delay between later re-evaluations of a call still waiting.
    pub retry_ms: u64,
    /// In `mixed` mode, a call nobody picked within this delay is offered by the ACD.
    pub acd_after_ms: u64,
    /// Waiting calls beyond which the queue is `full`.
    pub queue_max: u32,
    /// Least reserve: call-takers this CTA keeps for its own callers whatever its load.
    pub keep_idle: u32,
    /// The CTA's own service target, which sizes its reserve from its recent offered load:
    /// this share of its callers answered within `reserve_within_ms`.
    pub reserve_within_ms: u64,
    /// See `reserve_within_ms`.
    pub reserve_share: f64,
    /// Message a waiting caller hears.
    pub wait_announcement: Option<AnnouncementId>,
    /// Message (with its DTMF menu) played in crisis mode.
    pub crisis_announcement: Option<AnnouncementId>,
    /// Line of the `[[cta]]` table in the file.
    pub line: usize,
}

/// A room where call-takers of a CTA sit.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Identifier of the site.
    pub id: String,
    /// Name shown to people.
    pub name: String,
}

/// Call-takers on shift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Staffing {
    /// From 07:00 to 19:00 local time.
    pub day: u32,
    /// From 19:00 to 07:00 local time.
    pub night: u32,
}

/// A département, the unit of admission and routing.
#[derive(Debug, Clone)]
pub struct ZonePlan {
    /// INSEE code of the département (`13`, `2A`, `974`).
    pub code: String,
    /// The CTA serving it.
    pub cta: CtaId,
    /// Population, from the territory data.
    pub population: u64,
    /// Simultaneous calls reserved to this zone out of the national capacity.
    pub guaranteed: u32,
}

/// A message of the SVI.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// Identifier used by rules and CTAs.
    pub id: String,
    /// The French text spoken.
    pub text: String,
    /// Audio file, relative to the announcements directory.
    pub file: Option<String>,
    /// Whether it ends with a DTMF menu.
    pub menu: bool,
}

/// Digest realm of the platform's SIP registrar; `sip_ha1` is computed with it.
pub const SIP_REALM: &str = "secourir";

/// A call-taker (OTA) account.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTaker {
    /// Login, also the SIP user name of their phone.
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// CTA they belong to.
    pub cta: CtaId,
    /// Index of their site in the CTA.
    pub site: u16,
    /// NENA i3 DequeuePreference, 1 to 5.
    pub dequeue_preference: u8,
    /// MD5 of `login:secourir:password` (RFC 2617 HA1), so the password itself is never
    /// stored; None for an account without a phone (a room supervisor, say).
    pub sip_ha1: Option<String>,
    /// SHA-256 of `login:secourir:password` (RFC 7616 and RFC 8760 HA1), for phones that
    /// answer a SHA-256 challenge.
    pub sip_ha1_sha256: Option<String>,
    /// Argon2 hash (PHC string) of the console password; None: no console login.
    pub web_password: Option<String>,
    /// What the account may do in the console.
    pub role: Role,
    /// Secret of the console's second factor (RFC 6238 codes); required for the roles that
    /// supervise.
    pub totp_secret: Option<Vec<u8>>,
}

/// Where the platform's certificate and private key are, as the `[tls]` table names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the platform's own first; relative to the configuration file.
    pub certificate: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); relative to the configuration file.
    pub private_key: String,
    /// Line of the `[tls]` table, so that an unreadable file is reported where it is named.
    pub line: usize,
}

/// How the platform reaches the Hub Santé, as the `[hub]` table says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// `amqp://` for a local broker, `amqps://` for the hub.
    pub url: String,
    /// The platform's client id on the hub (`fr.fire.secourir.sdis13`): its `senderID`.
    pub client_id: String,
    /// The topic exchange messages are published to.
    pub exchange: String,
    /// The platform's certificate and key for mTLS; None: the URL's user and password.
    pub identity: Option<(String, String)>,
    /// The authorities that sign the hub's certificate, if not the system's.
    pub ca: Option<String>,
    /// What the call-taker may say happens, in the CISU nomenclature; the first is the default.
    pub qualifications: Vec<CaseQualification>,
    /// Line of the `[hub]` table, so that an unreadable file is reported where it is named.
    pub line: usize,
}

/// A `whatsHappen` of the CISU nomenclature a call-taker may choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseQualification {
    /// `Cnn.nn.nn`.
    pub code: String,
    /// Its label, as the nomenclature words it; shown in the console.
    pub label: String,
}

/// A partner service that takes calls handed over by a call-taker.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerService {
    /// The service.
    pub service: Service,
    /// Where its calls go.
    pub uri: String,
    /// Name shown in the console (SAMU, police…).
    pub name: String,
}

/// Roles of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Call-taker (opérateur de traitement de l'alerte): their CTA's queue and calls.
    Ota,
    /// Room supervisor: the national map, every CTA's figures, crisis mode.
    ChefDeSalle,
    /// Administrator: everything a supervisor does.
    Admin,
}

impl Role {
    /// Name used in the file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ota => "ota",
            Role::ChefDeSalle => "chef_de_salle",
            Role::Admin => "admin",
        }
    }

    /// Whether this role supervises (map, crisis mode).
    pub fn supervises(self) -> bool {
        matches!(self, Role::ChefDeSalle | Role::Admin)
    }
}

/// An operator trunk or SBC that delivers calls.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// Identifier of the trunk.
    pub id: String,
    /// Zone used when a call from this trunk carries no usable location.
    pub default_zone: ZoneId,
    /// Default point, when the trunk serves a known area.
    pub default_point: Option<(f64, f64)>,
}
