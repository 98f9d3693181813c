//! The national configuration of Secourir: CTAs and the départements they serve, mutual-aid
//! partners, capacity shares per zone, announcements and ordered policy rule sets (NENA i3 Policy
//! Routing Function style).
//!
//! A file is refused at load with every problem found, each with its line and reason: an unknown
//! queue, a rule set that does not end in a catch-all, an overflow loop with no way out, a
//! département served twice or not at all.

#[cfg(feature = "fixtures")]
pub mod fixtures;
mod plan;
mod raw;
mod validate;

pub use plan::*;

/// A département as the territory knows it: what the loader checks zones against.
#[derive(Debug, Clone, Copy)]
pub struct Departement<'a> {
    /// INSEE code (`01` … `95`, `2A`, `2B`, `971` … `976`).
    pub code: &'a str,
    /// Population, which sets the zone's guaranteed share of capacity.
    pub population: u64,
}

/// Great-circle distance between two (latitude, longitude) points, km: orders the national tier
/// of mutual aid, nearest first.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// One thing wrong in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// A configuration refused at load.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// Every problem found, by line.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "line {}: {}", p.line, p.message)?;
        }
        Ok(())
    }
}

impl Plan {
    /// Parses and checks a TOML configuration against the départements of the territory.
    pub fn from_toml(source: &str, territory: &[Departement<'_>]) -> Result<Plan, ConfigError> {
        validate::parse(source, territory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod hub;

    const TERRITORY: &[Departement<'static>] = &[
        Departement {
            code: "13",
            population: 2_000_000,
        },
        Departement {
            code: "83",
            population: 1_000_000,
        },
        Departement {
            code: "84",
            population: 500_000,
        },
    ];

    const GOOD: &str = r#"
[national]
capacity = 100
reserved_share = 0.5
rule_set = "national"
default_departement = "13"

[[announcement]]
id = "attente"
text = "Sapeurs-pompiers, ne quittez pas."

[[cta]]
id = "cta-13"
name = "CTA 13"
departements = ["13"]
partners = ["cta-83", "cta-84"]
staffing = { day = 10, night = 5 }
wait_announcement = "attente"

[[cta]]
id = "cta-83"
name = "CTA 83"
departements = ["83"]
partners = ["cta-13"]
staffing = { day = 5, night = 2 }

[[cta]]
id = "cta-84"
name = "CTA 84"
departements = ["84"]
partners = ["cta-13"]
staffing = { day = 3, night = 2 }
mode = "acd"

[[rule_set]]
id = "national"

[[rule_set.rule]]
name = "entraide"
when = { failed = ["no-answer", "full"] }
overflow = "partners"

[[rule_set.rule]]
name = "nuit"
when.period = { days = ["sat", "sun"], from = "19:00", to = "07:00" }
announce = "attente"

[[rule_set.rule]]
name = "par défaut"
route = "home"
"#;

    fn problems(source: &str) -> Vec<Problem> {
        match Plan::from_toml(source, TERRITORY) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    fn line_of(source: &str, needle: &str) -> usize {
        source
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or(0)
    }

    #[test]
    fn accepts_a_good_file() {
        let plan = Plan::from_toml(GOOD, TERRITORY).expect("valid");
        assert_eq!(plan.ctas.len(), 3);
        assert_eq!(plan.zones.len(), 3);
        let cta13 = plan.cta_id("cta-13").expect("cta-13");
        assert_eq!(plan.cta(cta13).partners.len(), 2);
        assert_eq!(plan.cta(cta13).no_answer_ms, 30_000);
        assert_eq!(
            plan.cta(plan.cta_id("cta-84").expect("84")).mode,
            DequeueMode::Acd
        );
        // 50 reserved calls split by population 4:2:1.
        let shares: Vec<u32> = plan.zones.iter().map(|z| z.guaranteed).collect();
        assert_eq!(shares, vec![28, 14, 7]);
        assert_eq!(plan.rule_sets[0].rules.len(), 3);
        assert!(plan.rule_sets[0].rules[2].when.is_empty());
    }

    #[test]
    fn unknown_queue_is_refused_with_its_line() {
        let bad = GOOD.replace(
            r#"partners = ["cta-13"]
staffing = { day = 5"#,
            r#"partners = ["cta-99"]
staffing = { day = 5"#,
        );
        let p = problems(&bad);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("unknown queue \"cta-99\""),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].line, line_of(&bad, "cta-99"));
    }

    #[test]
    fn a_supervisor_without_a_second_factor_or_with_a_bad_secret_is_refused_with_its_line() {
        let account = |extra: &str| {
            format!(
                "{GOOD}\n[[call_taker]]\nlogin = \"chef-13\"\ncta = \"cta-13\"\nrole = \"chef_de_salle\"\nweb_password = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\"\n{extra}"
            )
        };
        let without = account("");
        let p = problems(&without);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("totp_secret"), "{}", p[0].message);
        assert_eq!(p[0].line, line_of(&without, "login = \"chef-13\""));
        let short = account("totp_secret = \"ONSWG33V\"\n");
        let p = problems(&short);
        assert!(p[0].message.contains("128 bits"), "{p:?}");
        let not_base32 = account("totp_secret = \"ONSWG33VOJUXELLEMVWW6LLDNBSWMLJ1GM\"\n");
        let p = problems(&not_base32);
        assert!(p[0].message.contains("base32"), "{p:?}");
        assert_eq!(p[0].line, line_of(&not_base32, "totp_secret"));
        let good = account("totp_secret = \"onswg33vojuxelle mvww6lldnbswmljrgm\"\n");
        let plan = Plan::from_toml(&good, TERRITORY).expect("valid");
        let (_, chef) = plan.call_taker("chef-13").expect("chef");
        assert_eq!(
            chef.totp_secret.as_deref(),
            Some(&b"secourir-demo-chef-13"[..])
        );
    }

    #[test]
    fn a_sha_256_ha1_and_a_tls_table_are_read_and_checked_with_their_line() {
        let sha = "a".repeat(64);
        let text = format!(
            "{GOOD}\n[tls]\ncertificate = \"certs/platform.pem\"\nprivate_key = \"certs/platform.key\"\n\n[[call_taker]]\nlogin = \"ota-13-1\"\ncta = \"cta-13\"\nsip_ha1_sha256 = \"{}\"\n",
            sha.to_ascii_uppercase()
        );
        let plan = Plan::from_toml(&text, TERRITORY).expect("valid");
        let tls = plan.tls.as_ref().expect("tls");
        assert_eq!(tls.certificate, "certs/platform.pem");
        assert_eq!(tls.line, line_of(&text, "[tls]"));
        let (_, ota) = plan.call_taker("ota-13-1").expect("ota");
        assert_eq!(ota.sip_ha1_sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(ota.sip_ha1, None);

        let short = text.replace(&sha.to_ascii_uppercase(), "abc");
        let p = problems(&short);
        assert!(p[0].message.contains("64 hexadecimal"), "{p:?}");
        assert_eq!(p[0].line, line_of(&short, "sip_ha1_sha256"));
        let empty = text.replace("certs/platform.key", " ");
        let p = problems(&empty);
        assert!(p[0].message.contains("private_key"), "{p:?}");
        assert_eq!(p[0].line, line_of(&empty, "private_key"));
        let unknown = text.replace("private_key =", "key =");
        assert!(!problems(&unknown).is_empty());
    }

    #[test]
    fn unknown_route_target_is_refused() {
        let bad = GOOD.replace(r#"route = "home""#, r#"route = "cta-2b""#);
        let p = problems(&bad);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("unknown queue \"cta-2b\""));
        assert_eq!(p[0].line, line_of(&bad, "cta-2b"));
    }

    #[test]
    fn rule_set_without_catch_all_is_refused() {
        let bad = GOOD.replace(
            "name = \"par défaut\"\nroute = \"home\"",
            "name = \"par défaut\"\nwhen = { zones = [\"13\"] }\nroute = \"home\"",
        );
        let p = problems(&bad);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("does not end with a catch-all"));
        // The span of a table starts at its `[[rule_set.rule]]` header.
        assert_eq!(p[0].line, line_of(&bad, "par défaut") - 1);
    }

    #[test]
    fn lenders_are_partners_then_region_then_the_country_nearest_first() {
        let with_tiers = GOOD
            .replace(
                r#"partners = ["cta-83", "cta-84"]"#,
                "partners = [\"cta-83\"]\nregion = [\"cta-84\"]",
            )
            .replace(
                "partners = [\"cta-13\"]\nstaffing = { day = 5, night = 2 }",
                "partners = []\nlat = 43.4\nlon = 6.2\nstaffing = { day = 5, night = 2 }",
            )
            .replace(
                "partners = [\"cta-13\"]\nstaffing = { day = 3, night = 2 }",
                "partners = []\nlat = 44.0\nlon = 5.1\nstaffing = { day = 3, night = 2 }",
            )
            .replace(
                "departements = [\"13\"]",
                "departements = [\"13\"]\nlat = 43.5\nlon = 5.2",
            );
        let plan = Plan::from_toml(&with_tiers, TERRITORY).expect("valid");
        let id = |name: &str| plan.cta_id(name).expect("known");
        assert_eq!(
            plan.cta(id("cta-13")).lenders,
            vec![id("cta-83"), id("cta-84")]
        );
        // 84 (Vaucluse) is nearer to 13 than 83 (Var) is to 84.
        assert_eq!(
            plan.cta(id("cta-84")).lenders,
            vec![id("cta-13"), id("cta-83")]
        );
        assert_eq!(
            plan.cta(id("cta-83")).lenders,
            vec![id("cta-13"), id("cta-84")]
        );
    }

    #[test]
    fn a_tier_naming_an_unknown_cta_itself_or_a_partner_is_refused() {
        for (region, message) in [
            ("cta-99", "unknown queue \"cta-99\" in region"),
            ("cta-13", "a CTA cannot lend to itself"),
            ("cta-83", "already a partner"),
        ] {
            let bad = GOOD.replace(
                r#"partners = ["cta-83", "cta-84"]"#,
                &format!("partners = [\"cta-83\"]\nregion = [\"{region}\"]"),
            );
            let p = problems(&bad);
            assert!(
                p.iter().any(|p| p.message.contains(message)),
                "{region}: {p:?}"
            );
            assert!(
                p.iter().all(|p| p.line == line_of(&bad, "region =")),
                "{p:?}"
            );
        }
    }

    #[test]
    fn overflow_loop_with_no_way_out_is_refused() {
        let bad = GOOD
            .replace(
                "staffing = { day = 5, night = 2 }",
                "staffing = { day = 0, night = 0 }",
            )
            .replace(
                "staffing = { day = 3, night = 2 }\n",
                "staffing = { day = 0, night = 0 }\n",
            )
            .replace(
                r#"partners = ["cta-83", "cta-84"]"#,
                r#"partners = ["cta-83"]"#,
            )
            .replace(
                "staffing = { day = 10, night = 5 }",
                "staffing = { day = 0, night = 0 }",
            )
            // Without the national tier, the partners are the only way out.
            .replace(
                "[[announcement]]",
                "[defaults]\nnational_aid = false\n\n[[announcement]]",
            );
        let p = problems(&bad);
        assert!(!p.is_empty());
        assert!(
            p.iter().any(|p| p
                .message
                .contains("overflow loop with no way out: cta-13 → cta-83 → cta-13")),
            "{p:?}"
        );
    }

    #[test]
    fn unstaffed_cta_with_a_staffed_partner_is_fine() {
        let ok = GOOD.replace(
            "staffing = { day = 3, night = 2 }\n",
            "staffing = { day = 0, night = 0 }\n",
        );
        assert!(problems(&ok).is_empty());
    }

    #[test]
    fn syntax_error_names_its_line() {
        let bad = GOOD.replace("capacity = 100", "capacity = = 100");
        let p = problems(&bad);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, line_of(&bad, "capacity = = 100"));
    }

    #[test]
    fn unknown_field_and_wrong_type_name_their_line() {
        let bad = GOOD.replace("reserved_share = 0.5", "reserved_shares = 0.5");
        let p = problems(&bad);
        assert_eq!(p[0].line, line_of(&bad, "reserved_shares"), "{p:?}");
        let bad = GOOD.replace("capacity = 100", "capacity = \"lots\"");
        let p = problems(&bad);
        assert_eq!(p[0].line, line_of(&bad, "lots"), "{p:?}");
    }

    #[test]
    fn a_text_idle_time_out_of_bounds_is_refused_with_its_line() {
        let bad = GOOD.replace(
            "reserved_share = 0.5",
            "reserved_share = 0.5\ntext_idle_s = 2",
        );
        let p = problems(&bad);
        assert_eq!(p[0].line, line_of(&bad, "text_idle_s"), "{p:?}");
        assert!(p[0].message.contains("text_idle_s"), "{p:?}");
    }

    #[test]
    fn every_departement_must_be_served_once() {
        let bad = GOOD.replace(r#"departements = ["84"]"#, r#"departements = ["83"]"#);
        let p = problems(&bad);
        assert!(
            p.iter().any(|p| p.message.contains("already served")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.message.contains("84 is served by no CTA")),
            "{p:?}"
        );
    }

    #[test]
    fn rule_with_two_actions_is_refused() {
        let bad = GOOD.replace(
            "overflow = \"partners\"",
            "overflow = \"partners\"\nbusy = \"non\"",
        );
        let p = problems(&bad);
        assert!(p[0].message.contains("exactly one action"), "{p:?}");
    }

    #[test]
    fn period_wraps_past_midnight_on_its_starting_day() {
        let p = Period {
            days_mask: 1 << 5, // Saturday
            from_minute: 19 * 60,
            to_minute: 7 * 60,
        };
        assert!(p.contains(5, 20 * 60));
        assert!(p.contains(6, 6 * 60)); // Sunday 06:00 belongs to Saturday night
        assert!(!p.contains(6, 20 * 60));
        assert!(!p.contains(5, 12 * 60));
    }

    #[test]
    fn services_parse_case_insensitively() {
        assert_eq!(Service::parse("URN:Service:SOS.Fire"), Some(Service::Fire));
        assert_eq!(Service::parse("112"), Some(Service::Sos));
        assert_eq!(Service::parse("urn:service:sos.gas"), Some(Service::Other));
        assert_eq!(Service::parse("urn:service:counseling"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,400}") {
            let _ = Plan::from_toml(&text, TERRITORY);
        }

        #[test]
        fn never_panics_on_mutated_good_file(cut in 0usize..2000, byte in 0u8..128, at in 0usize..2000) {
            let mut bytes = GOOD.as_bytes().to_vec();
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(cut.max(1).min(bytes.len()));
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = Plan::from_toml(text, TERRITORY);
            }
        }
    }
}
