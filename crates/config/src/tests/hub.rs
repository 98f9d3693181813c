//! The `[hub]` table and the partners' hub ids: accepted when whole, refused with line and
//! reason otherwise.

use super::*;

/// A SAMU partner with its hub id, and a hub on a local broker.
fn with_hub(hub: &str) -> String {
    format!(
        "{GOOD}\n[[partner_service]]\nservice = \"15\"\nuri = \"sip:15@samu13.example\"\nhub_id = \"fr.health.samu13\"\n\n[hub]\n{hub}\n"
    )
}

const LOCAL: &str =
    "url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nclient_id = \"fr.fire.secourir.sdis13\"";

#[test]
fn a_hub_and_the_partners_hub_ids_are_read() {
    let plan = Plan::from_toml(&with_hub(LOCAL), TERRITORY).expect("valid");
    let hub = plan.hub.as_ref().expect("a hub");
    assert_eq!(hub.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_eq!(hub.client_id, "fr.fire.secourir.sdis13");
    assert_eq!(hub.exchange, "hubsante");
    assert_eq!(hub.identity, None);
    assert_eq!(hub.line, line_of(&with_hub(LOCAL), "[hub]"));
    assert_eq!(
        plan.partner_hub_id(Service::Ambulance),
        Some("fr.health.samu13")
    );
    assert_eq!(plan.partner_hub_id(Service::Police), None);
}

#[test]
fn no_hub_table_means_no_hub() {
    let plan = Plan::from_toml(GOOD, TERRITORY).expect("valid");
    assert!(plan.hub.is_none());
    assert!(plan.partner_hub_ids.is_empty());
}

#[test]
fn mtls_files_and_exchange_are_kept() {
    let source = with_hub(
        "url = \"amqps://hub.example:5671/hub\"\nclient_id = \"fr.fire.secourir.sdis13\"\nexchange = \"essai\"\ncertificate = \"tls/hub.crt\"\nprivate_key = \"tls/hub.key\"\nca = \"tls/ca.crt\"",
    );
    let plan = Plan::from_toml(&source, TERRITORY).expect("valid");
    let hub = plan.hub.expect("a hub");
    assert_eq!(hub.exchange, "essai");
    assert_eq!(
        hub.identity,
        Some(("tls/hub.crt".to_owned(), "tls/hub.key".to_owned()))
    );
    assert_eq!(hub.ca.as_deref(), Some("tls/ca.crt"));
}

/// The one problem of `source`, which must be on the line holding `needle`.
fn one_problem_at(source: &str, needle: &str) -> String {
    let p = problems(source);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, line_of(source, needle), "{p:?}");
    p[0].message.clone()
}

#[test]
fn a_url_that_is_not_amqp_is_refused_with_its_line() {
    for (url, reason) in [
        ("http://127.0.0.1:5672", "scheme"),
        ("amqp://127.0.0.1:70000", "port"),
        ("amqp://", "host"),
    ] {
        let source = with_hub(&LOCAL.replace("amqp://guest:guest@127.0.0.1:5672/%2f", url));
        let message = one_problem_at(&source, "url = ");
        assert!(message.contains("not an AMQP URL"), "{message}");
        assert!(message.contains(reason), "{url}: {message}");
    }
}

#[test]
fn an_empty_or_malformed_client_id_is_refused_with_its_line() {
    for (id, reason) in [
        ("", "must not be empty"),
        ("fr.fire_sdis13", "may hold only"),
    ] {
        let source = with_hub(&LOCAL.replace("fr.fire.secourir.sdis13", id));
        let message = one_problem_at(&source, "client_id");
        assert!(message.contains(reason), "{id:?}: {message}");
    }
}

#[test]
fn a_partner_without_hub_id_is_refused_only_when_there_is_a_hub() {
    let without = |source: String| source.replace("hub_id = \"fr.health.samu13\"\n", "");
    let message = one_problem_at(&without(with_hub(LOCAL)), "service = \"15\"");
    assert!(message.contains("no hub_id"), "{message}");
    let no_hub = without(with_hub(LOCAL)).replace(&format!("[hub]\n{LOCAL}"), "");
    assert_eq!(problems(&no_hub), Vec::new());
}

#[test]
fn mtls_with_only_a_certificate_or_only_a_key_is_refused() {
    for (line, needle) in [
        ("certificate = \"tls/hub.crt\"", "certificate"),
        ("private_key = \"tls/hub.key\"", "private_key"),
    ] {
        let source = with_hub(&format!(
            "{}\n{line}",
            LOCAL.replace(
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqps://hub.example"
            )
        ));
        let message = one_problem_at(&source, needle);
        assert!(
            message.contains("both certificate and private_key"),
            "{message}"
        );
    }
}

#[test]
fn a_certificate_over_plain_amqp_is_refused() {
    let source = with_hub(&format!(
        "{LOCAL}\ncertificate = \"tls/hub.crt\"\nprivate_key = \"tls/hub.key\"\nca = \"tls/ca.crt\""
    ));
    let message = one_problem_at(&source, "url = ");
    assert!(message.contains("amqps://"), "{message}");
}

#[test]
fn mtls_without_the_hub_s_authority_is_refused() {
    let source = with_hub(
        "url = \"amqps://hub.example:5671/hub\"\nclient_id = \"fr.fire.secourir.sdis13\"\ncertificate = \"tls/hub.crt\"\nprivate_key = \"tls/hub.key\"",
    );
    let message = one_problem_at(&source, "certificate = ");
    assert!(message.contains("needs ca"), "{message}");
}

#[test]
fn natures_of_fact_are_read_in_order_the_first_the_default() {
    let source = with_hub(&format!(
        "{LOCAL}\n\n[[hub.qualification]]\ncode = \"C04.02.01\"\nlabel = \"Incendie - Bâtiment d'habitation\"\n\n[[hub.qualification]]\ncode = \"C11.02.01\"\nlabel = \"Malaise/détresse vitale\""
    ));
    let plan = Plan::from_toml(&source, TERRITORY).expect("valid");
    let codes: Vec<_> = plan.hub.expect("a hub").qualifications;
    assert_eq!(codes.len(), 2);
    assert_eq!(codes[0].code, "C04.02.01");
    assert_eq!(codes[1].label, "Malaise/détresse vitale");
}

#[test]
fn without_natures_of_fact_a_shipped_list_is_offered() {
    let plan = Plan::from_toml(&with_hub(LOCAL), TERRITORY).expect("valid");
    let hub = plan.hub.expect("a hub");
    assert!(hub.qualifications.len() > 3);
    assert!(hub.qualifications.iter().all(|q| q.code.len() == 9));
}

#[test]
fn a_nature_of_fact_not_shaped_as_the_schemas_want_is_refused_with_its_line() {
    for (code, reason) in [
        ("C4.02.01", "not a CISU code"),
        ("X04.02.01", "not a CISU code"),
    ] {
        let source = with_hub(&format!(
            "{LOCAL}\n\n[[hub.qualification]]\ncode = \"{code}\"\nlabel = \"Feu\""
        ));
        let message = one_problem_at(&source, &format!("code = \"{code}\""));
        assert!(message.contains(reason), "{code}: {message}");
    }
    let twice = with_hub(&format!(
        "{LOCAL}\n\n[[hub.qualification]]\ncode = \"C04.02.01\"\nlabel = \"Feu\"\n\n[[hub.qualification]]\ncode = \"C04.02.02\"\nlabel = \"\""
    ));
    let message = one_problem_at(&twice, "label = \"\"");
    assert!(message.contains("1 to 255"), "{message}");
}

#[test]
fn a_changed_hub_needs_a_restart() {
    let before = Plan::from_toml(&with_hub(LOCAL), TERRITORY).expect("valid");
    let after =
        Plan::from_toml(&with_hub(&LOCAL.replace("sdis13", "sdis83")), TERRITORY).expect("valid");
    let why = before.may_become(&after).expect_err("refused");
    assert!(why.contains("[hub]"), "{why}");
}
