//! The cluster's log read back for a replay: the core's inputs every node applied.

use secourir_cluster::{Input, Members, Step};

/// The core's inputs that `batches` (a cluster log, in its order) stand for, each with the
/// instant every node applied it at: what every node's core was fed, for a replay, the
/// configurations taken live among them (read by `read`). A core with `plan` runs alongside
/// to know, as the nodes do, which calls were still live.
pub(crate) fn core_inputs(
    plan: std::sync::Arc<secourir_config::Plan>,
    batches: impl IntoIterator<Item = (u64, secourir_cluster_log::Batch<Input>)>,
    read: &crate::ConfigReader,
) -> Vec<(secourir_core::Instant, secourir_core::Input)> {
    let mut core = secourir_core::Core::new(plan);
    let mut members = Members::default();
    let mut clock = 0u64;
    let mut inputs = Vec::new();
    for (seq, batch) in batches {
        members.seen(&batch.node, seq);
        for input in batch.items {
            clock = clock.max(input.at());
            let now = secourir_core::Instant(clock);
            for step in members.steps(&batch.node, input) {
                let (commands, input): (Vec<secourir_core::Command>, _) = match step {
                    Step::Core(event, _) => (
                        core.handle(event.clone(), now).collect(),
                        secourir_core::Input::Event(event),
                    ),
                    Step::Config(text) => {
                        // Every node read it with the same code: one that failed failed on all.
                        let Ok(plan) = read.read(&text) else {
                            continue;
                        };
                        let plan = std::sync::Arc::new(plan);
                        let input = secourir_core::Input::Plan(plan.clone());
                        match core.apply(input, now) {
                            Ok(out) => (out.collect(), secourir_core::Input::Plan(plan)),
                            Err(_) => continue,
                        }
                    }
                    Step::Local(_) => continue,
                };
                for command in commands {
                    if let secourir_core::Command::Ended { call, .. }
                    | secourir_core::Command::Withdrawn { call, .. } = command
                    {
                        members.ended(call);
                    }
                }
                inputs.push((now, input));
            }
        }
    }
    inputs
}
