//! What the unit tests of the platform's crates share: a one-CTA plan (feature `fixtures`).

use std::sync::Arc;

use crate::{Departement, Plan};

/// A plan with one CTA serving département 13, and these TOML lines after it (call-takers).
pub fn one_cta_plan(extra: &str) -> Arc<Plan> {
    let toml = format!(
        "[national]\ncapacity = 10\nreserved_share = 0.5\nrule_set = \"n\"\n\
         default_departement = \"13\"\n[[cta]]\nid = \"cta-13\"\nname = \"CTA 13\"\n\
         departements = [\"13\"]\nstaffing = {{ day = 1, night = 1 }}\n[[rule_set]]\n\
         id = \"n\"\n[[rule_set.rule]]\nname = \"d\"\nroute = \"home\"\n{extra}"
    );
    let territory = [Departement {
        code: "13",
        population: 1,
    }];
    Arc::new(Plan::from_toml(&toml, &territory).expect("plan"))
}
