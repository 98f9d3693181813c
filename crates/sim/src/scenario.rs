//! Scenario files: demand, handling, staffing, surges and outages, in TOML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A scenario refused at load.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is wrong.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value makes no sense.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The national configuration file.
    pub config: PathBuf,
    /// Simulated time, in milliseconds.
    pub duration_ms: u64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Simulated start, Unix milliseconds (sets the hour of day and the rule periods).
    pub start_ms: u64,
    /// Calls offered.
    pub demand: Demand,
    /// Conversation, patience and phones.
    pub handling: Handling,
    /// Call-takers on shift.
    pub staffing: Staffing,
    /// Crisis surges.
    pub surges: Vec<Surge>,
    /// CTAs losing their call-takers.
    pub outages: Vec<Outage>,
    /// The share of the demand that writes instead of calling, if any.
    pub text: Option<TextDemand>,
}

/// Callers who write (SIP MESSAGE, an SMS gateway, the 114): a share of every zone's demand,
/// routed and answered by the same rules, with conversations of their own length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextDemand {
    /// Share of the calls offered that are text conversations, 0 to 1.
    pub share: f64,
    /// Mean conversation, seconds: writing takes longer than speaking.
    pub mean_s: f64,
    /// Standard deviation, seconds (log-normal).
    pub sd_s: f64,
}

impl TextDemand {
    /// `share` of the demand in writing, with conversations of 5 minutes on average (3 sd).
    pub fn with_share(share: f64) -> TextDemand {
        TextDemand {
            share,
            mean_s: 300.0,
            sd_s: 180.0,
        }
    }
}

/// Calls offered.
#[derive(Debug, Clone)]
pub enum Demand {
    /// A national volume spread over the zones by population, shaped by an hourly profile.
    National {
        /// Calls a year.
        calls_per_year: f64,
        /// Relative weight of each local hour, 0 to 23.
        profile: [f64; 24],
    },
    /// Explicit rates, calls per hour for each zone (département code); others get none.
    Zones(BTreeMap<String, f64>),
    /// The calls a platform was really offered (a journal or a cluster's log), in order.
    Recorded(Vec<RecordedCall>),
}

/// One call a platform was really offered, as the simulator offers it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedCall {
    /// When, milliseconds after the scenario's start.
    pub offset_ms: u64,
    /// Its zone.
    pub zone: secourir_config::ZoneId,
    /// How long its conversation lasted, when it was answered.
    pub talk_ms: Option<u64>,
    /// How long its caller waited before hanging up, when nobody answered.
    pub patience_ms: Option<u64>,
}

/// Handling-time distribution of conversations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Log-normal with this mean and standard deviation.
    LogNormal,
    /// Exponential with this mean.
    Exponential,
    /// Always the mean.
    Fixed,
}

/// Conversation, patience and phones.
#[derive(Debug, Clone)]
pub struct Handling {
    /// Shape of the conversation time.
    pub distribution: Distribution,
    /// Mean conversation, seconds.
    pub mean_s: f64,
    /// Standard deviation, seconds (log-normal only).
    pub sd_s: f64,
    /// Mean patience of a waiting caller, seconds (exponential); none: callers never give up.
    pub patience_mean_s: Option<f64>,
    /// Probability that a call-taker's phone rings without being answered.
    pub ring_no_answer: f64,
    /// Seconds for a call-taker to pick up a ringing phone.
    pub answer_delay_s: f64,
    /// Seconds before a call-taker marked unavailable makes themself ready again.
    pub back_after_pause_s: f64,
    /// Share of the extra calls of a crisis surge that press 1 at the crisis menu.
    pub crisis_related_share: f64,
}

impl Default for Handling {
    /// What a scenario gets for what it does not say.
    fn default() -> Handling {
        Handling {
            distribution: Distribution::LogNormal,
            mean_s: 90.0,
            sd_s: 60.0,
            patience_mean_s: Some(120.0),
            ring_no_answer: 0.01,
            answer_delay_s: 2.0,
            back_after_pause_s: 30.0,
            crisis_related_share: 0.8,
        }
    }
}

/// How many call-takers are on shift.
#[derive(Debug, Clone)]
pub enum Staffing {
    /// As the national configuration says, day and night.
    Config,
    /// Sized with Erlang C for the scenario's own demand and this target.
    Erlang {
        /// Answer within this many seconds…
        within_s: f64,
        /// …this share of calls.
        share: f64,
    },
}

/// A surge of calls in some zones.
#[derive(Debug, Clone)]
pub struct Surge {
    /// Département codes.
    pub zones: Vec<String>,
    /// Start, milliseconds after the scenario's start.
    pub start_ms: u64,
    /// Length, milliseconds.
    pub duration_ms: u64,
    /// Factor applied to the zones' normal rate.
    pub multiplier: f64,
    /// Whether the supervisors turn crisis mode on in those zones (announcement and menu).
    pub crisis: bool,
}

/// A CTA losing its call-takers.
#[derive(Debug, Clone)]
pub struct Outage {
    /// CTA identifier.
    pub cta: String,
    /// Start, milliseconds after the scenario's start.
    pub start_ms: u64,
    /// Length, milliseconds.
    pub duration_ms: u64,
}

impl Scenario {
    /// The same scenario without its surges and outages: the baseline to compare with.
    pub fn baseline(&self) -> Scenario {
        Scenario {
            surges: Vec::new(),
            outages: Vec::new(),
            ..self.clone()
        }
    }

    /// Reads a scenario file; `config` is relative to the current directory, as in the README.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses a scenario; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            path: path.to_owned(),
            line: e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            }),
            message: e.message().trim().to_owned(),
        })?;
        let invalid = |message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            message,
        };
        let duration = |field: &str, text: &str| {
            parse_duration(text).ok_or_else(|| {
                invalid(format!(
                    "{field}: bad duration {text:?} (e.g. \"24h\", \"90m\", \"3h30m\", \"365d\")"
                ))
            })
        };
        let duration_ms = duration("duration", &raw.duration)?;
        if duration_ms == 0 {
            return Err(invalid("duration must be positive".into()));
        }
        let start_ms = match &raw.start {
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    invalid(format!(
                        "start: {e} (RFC 3339, e.g. 2026-07-14T00:00:00+02:00)"
                    ))
                })?
                .timestamp_millis()
                .try_into()
                .map_err(|_| invalid("start: before 1970".into()))?,
            // A Monday in January, midnight in Paris.
            None => 1_767_567_600_000,
        };
        let demand = match raw.demand.zones {
            Some(zones) => {
                if zones.values().any(|r| !r.is_finite() || *r < 0.0) {
                    return Err(invalid(
                        "demand.zones: rates must be calls per hour, 0 or more".into(),
                    ));
                }
                Demand::Zones(zones)
            }
            None => {
                let profile = raw.demand.daily_profile.unwrap_or(DAILY_PROFILE.to_vec());
                let profile: [f64; 24] = profile
                    .try_into()
                    .map_err(|_| invalid("demand.daily_profile needs 24 hourly weights".into()))?;
                if profile.iter().any(|w| !w.is_finite() || *w < 0.0)
                    || profile.iter().sum::<f64>() <= 0.0
                {
                    return Err(invalid(
                        "demand.daily_profile: weights must be positive".into(),
                    ));
                }
                let calls = raw.demand.calls_per_year.unwrap_or(18_000_000.0);
                if !calls.is_finite() || calls < 0.0 {
                    return Err(invalid("demand.calls_per_year must be 0 or more".into()));
                }
                Demand::National {
                    calls_per_year: calls,
                    profile,
                }
            }
        };
        let h = raw.handling;
        let distribution = match h.distribution.as_deref().unwrap_or("lognormal") {
            "lognormal" => Distribution::LogNormal,
            "exponential" => Distribution::Exponential,
            "fixed" => Distribution::Fixed,
            other => {
                return Err(invalid(format!(
                    "handling.distribution: {other:?} is not lognormal, exponential or fixed"
                )));
            }
        };
        let d = Handling::default();
        let handling = Handling {
            distribution,
            mean_s: h.mean_s.unwrap_or(d.mean_s),
            sd_s: h.sd_s.unwrap_or(d.sd_s),
            patience_mean_s: match h.patience_mean_s {
                Some(p) if p <= 0.0 => None,
                Some(p) => Some(p),
                None => d.patience_mean_s,
            },
            ring_no_answer: h.ring_no_answer.unwrap_or(d.ring_no_answer),
            answer_delay_s: h.answer_delay_s.unwrap_or(d.answer_delay_s),
            back_after_pause_s: h.back_after_pause_s.unwrap_or(d.back_after_pause_s),
            crisis_related_share: h.crisis_related_share.unwrap_or(d.crisis_related_share),
        };
        if handling.mean_s.is_nan() || handling.mean_s <= 0.0 || handling.sd_s < 0.0 {
            return Err(invalid(
                "handling.mean_s must be positive and sd_s 0 or more".into(),
            ));
        }
        if !(0.0..=1.0).contains(&handling.ring_no_answer)
            || !(0.0..=1.0).contains(&handling.crisis_related_share)
        {
            return Err(invalid(
                "handling: probabilities must be between 0 and 1".into(),
            ));
        }
        let staffing = match raw.staffing {
            None => Staffing::Config,
            Some(RawStaffing::Named(name)) if name == "config" => Staffing::Config,
            Some(RawStaffing::Named(name)) if name == "erlang" => Staffing::Erlang {
                within_s: 15.0,
                share: 0.95,
            },
            Some(RawStaffing::Named(name)) => {
                return Err(invalid(format!(
                    "staffing: {name:?} is not \"config\" or \"erlang\""
                )));
            }
            Some(RawStaffing::Erlang { within_s, share }) => Staffing::Erlang {
                within_s: within_s.unwrap_or(15.0),
                share: share.unwrap_or(0.95),
            },
        };
        let mut surges = Vec::new();
        for s in raw.surges {
            if s.zones.is_empty() || s.multiplier.is_nan() || s.multiplier < 0.0 {
                return Err(invalid(
                    "surge: needs zones and a multiplier of 0 or more".into(),
                ));
            }
            surges.push(Surge {
                zones: s.zones,
                start_ms: duration("surge.start", &s.start)?,
                duration_ms: duration("surge.duration", &s.duration)?,
                multiplier: s.multiplier,
                crisis: s.crisis.unwrap_or(true),
            });
        }
        let mut outages = Vec::new();
        for o in raw.outages {
            outages.push(Outage {
                cta: o.cta,
                start_ms: duration("outage.start", &o.start)?,
                duration_ms: duration("outage.duration", &o.duration)?,
            });
        }
        let text = match raw.text {
            None => None,
            Some(t) => {
                let default = TextDemand::with_share(0.0);
                let text = TextDemand {
                    share: t.share,
                    mean_s: t.mean_s.unwrap_or(default.mean_s),
                    sd_s: t.sd_s.unwrap_or(default.sd_s),
                };
                if !(0.0..=1.0).contains(&text.share)
                    || text.mean_s.is_nan()
                    || text.mean_s <= 0.0
                    || text.sd_s.is_nan()
                    || text.sd_s < 0.0
                {
                    return Err(invalid(
                        "text: share must be between 0 and 1, mean_s positive and sd_s 0 or more"
                            .into(),
                    ));
                }
                Some(text)
            }
        };
        Ok(Scenario {
            config: PathBuf::from(raw.config.unwrap_or_else(|| "config/france.toml".into())),
            duration_ms,
            seed: raw.seed.unwrap_or(1),
            start_ms,
            demand,
            handling,
            staffing,
            surges,
            outages,
            text,
        })
    }
}

/// Hourly shape of emergency calls: quiet at night, peaks late morning and early evening.
pub const DAILY_PROFILE: [f64; 24] = [
    0.55, 0.45, 0.38, 0.33, 0.31, 0.34, 0.50, 0.75, 0.95, 1.10, 1.20, 1.25, 1.28, 1.25, 1.22, 1.22,
    1.25, 1.32, 1.38, 1.35, 1.25, 1.10, 0.90, 0.70,
];

/// Parses "24h", "90m", "45s", "3h30m", "365d", "1500ms" into milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit_ms: f64 = match c {
            'd' => 86_400_000.0,
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            ' ' => continue,
            _ => return None,
        };
        let value: f64 = number.parse().ok()?;
        number.clear();
        total = total.checked_add((value * unit_ms).round() as u64)?;
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    config: Option<String>,
    duration: String,
    seed: Option<u64>,
    start: Option<String>,
    #[serde(default)]
    demand: RawDemand,
    #[serde(default)]
    handling: RawHandling,
    staffing: Option<RawStaffing>,
    #[serde(default, rename = "surge")]
    surges: Vec<RawSurge>,
    #[serde(default, rename = "outage")]
    outages: Vec<RawOutage>,
    text: Option<RawText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    share: f64,
    mean_s: Option<f64>,
    sd_s: Option<f64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDemand {
    calls_per_year: Option<f64>,
    daily_profile: Option<Vec<f64>>,
    zones: Option<BTreeMap<String, f64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandling {
    distribution: Option<String>,
    mean_s: Option<f64>,
    sd_s: Option<f64>,
    patience_mean_s: Option<f64>,
    ring_no_answer: Option<f64>,
    answer_delay_s: Option<f64>,
    back_after_pause_s: Option<f64>,
    crisis_related_share: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStaffing {
    Named(String),
    Erlang {
        within_s: Option<f64>,
        share: Option<f64>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurge {
    zones: Vec<String>,
    start: String,
    duration: String,
    multiplier: f64,
    crisis: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutage {
    cta: String,
    start: String,
    duration: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Some(86_400_000));
        assert_eq!(parse_duration("3h30m"), Some(12_600_000));
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("1500ms"), Some(1500));
        assert_eq!(parse_duration("365d"), Some(31_536_000_000));
        assert_eq!(parse_duration("12"), None);
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn a_minimal_scenario_gets_the_defaults() {
        let s = Scenario::parse("duration = \"1h\"\n", Path::new("x.toml")).expect("valid");
        assert_eq!(s.config, PathBuf::from("config/france.toml"));
        assert!(
            matches!(s.demand, Demand::National { calls_per_year, .. } if calls_per_year == 18_000_000.0)
        );
        assert!(matches!(s.staffing, Staffing::Config));
    }

    #[test]
    fn errors_name_the_line() {
        let err = Scenario::parse(
            "duration = \"1h\"\n[[surge]]\nzones = [\"13\"]\nstart = 3\n",
            Path::new("x.toml"),
        )
        .expect_err("start must be a string");
        assert!(err.to_string().starts_with("x.toml:4:"), "{err}");
    }
}
