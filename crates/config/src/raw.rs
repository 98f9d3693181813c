//! The TOML file as written by people: loose shapes with source spans, checked in `validate`.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub national: Spanned<RawNational>,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default, rename = "announcement")]
    pub announcements: Vec<Spanned<RawAnnouncement>>,
    #[serde(default, rename = "cta")]
    pub ctas: Vec<Spanned<RawCta>>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<Spanned<RawZone>>,
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<Spanned<RawTrunk>>,
    #[serde(default, rename = "rule_set")]
    pub rule_sets: Vec<Spanned<RawRuleSet>>,
    #[serde(default, rename = "call_taker")]
    pub call_takers: Vec<Spanned<RawCallTaker>>,
    #[serde(default, rename = "partner_service")]
    pub partner_services: Vec<Spanned<RawPartnerService>>,
    #[serde(default)]
    pub tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    pub hub: Option<Spanned<RawHub>>,
}

/// The Hub Santé connection, as `[hub]` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    pub url: Spanned<String>,
    pub client_id: Spanned<String>,
    #[serde(default)]
    pub exchange: Option<Spanned<String>>,
    #[serde(default)]
    pub certificate: Option<Spanned<String>>,
    #[serde(default)]
    pub private_key: Option<Spanned<String>>,
    #[serde(default)]
    pub ca: Option<Spanned<String>>,
    #[serde(default)]
    pub qualification: Vec<Spanned<RawQualification>>,
}

/// A nature of fact the call-taker may choose, as `[[hub.qualification]]` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQualification {
    pub code: Spanned<String>,
    pub label: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub certificate: Spanned<String>,
    pub private_key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartnerService {
    pub service: Spanned<String>,
    pub uri: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub hub_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCallTaker {
    pub login: Spanned<String>,
    pub cta: Spanned<String>,
    #[serde(default)]
    pub site: u16,
    #[serde(default)]
    pub dequeue_preference: Option<u8>,
    #[serde(default)]
    pub sip_ha1: Option<Spanned<String>>,
    #[serde(default)]
    pub sip_ha1_sha256: Option<Spanned<String>>,
    #[serde(default)]
    pub web_password: Option<Spanned<String>>,
    #[serde(default)]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    pub totp_secret: Option<Spanned<String>>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNational {
    pub capacity: Spanned<u32>,
    #[serde(default = "default_reserved_share")]
    pub reserved_share: Spanned<f64>,
    #[serde(default = "default_suspected_share")]
    pub suspected_share: Spanned<f64>,
    #[serde(default = "default_timezone")]
    pub timezone: Spanned<String>,
    pub rule_set: Spanned<String>,
    pub default_departement: Spanned<String>,
    #[serde(default)]
    pub callback_max: Option<u32>,
    #[serde(default)]
    pub expected_calls_per_year: Option<Spanned<f64>>,
    #[serde(default)]
    pub mean_handling_s: Option<Spanned<u32>>,
    #[serde(default)]
    pub text_idle_s: Option<Spanned<u32>>,
}

fn default_reserved_share() -> Spanned<f64> {
    Spanned::new(0..0, 0.5)
}

fn default_suspected_share() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}

fn default_timezone() -> Spanned<String> {
    Spanned::new(0..0, "Europe/Paris".to_owned())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub ring_timeout_s: Option<u32>,
    pub wrap_up_s: Option<u32>,
    pub no_answer_s: Option<u32>,
    pub retry_s: Option<u32>,
    pub acd_after_s: Option<u32>,
    pub queue_max: Option<u32>,
    pub keep_idle: Option<u32>,
    pub national_aid: Option<bool>,
    pub reserve_within_s: Option<u32>,
    pub reserve_share: Option<Spanned<f64>>,
    pub mode: Option<Spanned<String>>,
    pub wait_announcement: Option<Spanned<String>>,
    pub crisis_announcement: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnnouncement {
    pub id: Spanned<String>,
    pub text: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub menu: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCta {
    pub id: Spanned<String>,
    pub name: String,
    pub departements: Vec<Spanned<String>>,
    #[serde(default)]
    pub partners: Vec<Spanned<String>>,
    #[serde(default)]
    pub region: Vec<Spanned<String>>,
    pub national_aid: Option<bool>,
    pub lat: Option<Spanned<f64>>,
    pub lon: Option<Spanned<f64>>,
    #[serde(default)]
    pub sites: Vec<RawSite>,
    #[serde(default)]
    pub staffing: RawStaffing,
    pub rule_set: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub ring_timeout_s: Option<u32>,
    pub wrap_up_s: Option<u32>,
    pub no_answer_s: Option<u32>,
    pub retry_s: Option<u32>,
    pub acd_after_s: Option<u32>,
    pub queue_max: Option<u32>,
    pub keep_idle: Option<u32>,
    pub reserve_within_s: Option<u32>,
    pub reserve_share: Option<Spanned<f64>>,
    pub wait_announcement: Option<Spanned<String>>,
    pub crisis_announcement: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaffing {
    #[serde(default)]
    pub day: u32,
    #[serde(default)]
    pub night: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub departement: Spanned<String>,
    pub guaranteed: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrunk {
    pub id: Spanned<String>,
    pub default_departement: Spanned<String>,
    #[serde(default)]
    pub default_lat: Option<f64>,
    #[serde(default)]
    pub default_lon: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    pub id: Spanned<String>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub when: RawWhen,
    pub route: Option<Spanned<RawTarget>>,
    pub overflow: Option<Spanned<RawTarget>>,
    pub announce: Option<Spanned<String>>,
    pub busy: Option<String>,
}

/// A target is one name ("home", "partners", a CTA id) or an ordered list of CTA ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTarget {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    pub zones: Option<Vec<Spanned<String>>>,
    pub services: Option<Vec<Spanned<String>>>,
    pub queue_state: Option<Vec<Spanned<String>>>,
    pub failed: Option<Vec<Spanned<String>>>,
    pub callers: Option<Vec<String>>,
    pub sources: Option<Vec<String>>,
    pub crisis: Option<bool>,
    pub period: Option<Spanned<RawPeriod>>,
    pub expected_wait_s: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeriod {
    #[serde(default)]
    pub days: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}
