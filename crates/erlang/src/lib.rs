//! Erlang C (M/M/N) formulas, for sizing call-takers and for checking the simulator against theory.
//!
//! `load` is the offered traffic in erlangs (arrival rate × mean handling time); `agents` the
//! number of call-takers. Computed with the numerically stable recurrence of Erlang B, so that
//! national loads (hundreds of erlangs) do not overflow.

/// Erlang B: probability that all `agents` are busy in a loss system with `load` erlangs.
pub fn erlang_b(agents: u32, load: f64) -> f64 {
    if load <= 0.0 {
        return 0.0;
    }
    let mut b = 1.0;
    for n in 1..=agents {
        let n = f64::from(n);
        b = load * b / (n + load * b);
    }
    b
}

/// Erlang C: probability that a call has to wait; 1 when the load reaches the number of agents.
pub fn probability_of_waiting(agents: u32, load: f64) -> f64 {
    let n = f64::from(agents);
    if load <= 0.0 {
        return 0.0;
    }
    if load >= n {
        return 1.0;
    }
    let b = erlang_b(agents, load);
    let rho = load / n;
    b / (1.0 - rho * (1.0 - b))
}

/// Mean wait of all calls, in the unit of `handling_time`; infinite when overloaded.
pub fn mean_wait(agents: u32, load: f64, handling_time: f64) -> f64 {
    let n = f64::from(agents);
    if load >= n {
        return f64::INFINITY;
    }
    probability_of_waiting(agents, load) * handling_time / (n - load)
}

/// Share of calls answered within `target` (same unit as `handling_time`).
pub fn service_level(agents: u32, load: f64, handling_time: f64, target: f64) -> f64 {
    let n = f64::from(agents);
    if load >= n {
        return 0.0;
    }
    let pw = probability_of_waiting(agents, load);
    1.0 - pw * (-(n - load) * target / handling_time).exp()
}

/// Fewest agents that answer `share` of calls within `target`; at least one more than the load.
pub fn agents_for_service_level(load: f64, handling_time: f64, target: f64, share: f64) -> u32 {
    if load <= 0.0 {
        return 1;
    }
    // Start just above the load: fewer agents than erlangs never reach a steady state.
    let mut agents = load.floor() as u32 + 1;
    while agents < 100_000 && service_level(agents, load, handling_time, target) < share {
        agents += 1;
    }
    agents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_values() {
        // Classic textbook case: 10 erlangs, 12 agents, 3-minute calls.
        let pw = probability_of_waiting(12, 10.0);
        assert!((pw - 0.4493).abs() < 0.001, "{pw}");
        let asa = mean_wait(12, 10.0, 180.0);
        assert!((asa - 40.44).abs() < 0.1, "{asa}");
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn sizing_reaches_the_target() {
        let agents = agents_for_service_level(10.0, 180.0, 20.0, 0.8);
        assert!(service_level(agents, 10.0, 180.0, 20.0) >= 0.8);
        assert!(service_level(agents - 1, 10.0, 180.0, 20.0) < 0.8);
        assert_eq!(agents, 14);
    }

    #[test]
    fn overload_waits_forever() {
        assert_eq!(probability_of_waiting(5, 5.0), 1.0);
        assert!(mean_wait(5, 6.0, 90.0).is_infinite());
    }

    proptest::proptest! {
        #[test]
        fn probabilities_stay_in_range(agents in 1u32..500, load in 0.0f64..600.0) {
            let pw = probability_of_waiting(agents, load);
            proptest::prop_assert!((0.0..=1.0).contains(&pw));
            let sl = service_level(agents, load, 90.0, 15.0);
            proptest::prop_assert!((0.0..=1.0).contains(&sl));
        }
    }
}
