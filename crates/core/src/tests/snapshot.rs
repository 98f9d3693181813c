//! The core as a pure function of its events: same events, same commands; snapshots restore it.

use proptest::prelude::*;

use super::proptests::{Op, event, op};
use super::*;

#[test]
fn time_never_goes_backwards() {
    let mut h = Harness::new();
    h.login(1, C13, 3);
    h.offer(10, Z13);
    let before = h.core.now();
    let _ = h.core.handle(Event::Tick, Instant(0)).count();
    assert_eq!(h.core.now(), before);
}

#[test]
fn the_same_events_give_the_same_commands() {
    let run = || {
        let mut h = Harness::new();
        h.login(1, C13, 3);
        h.login(2, C84, 1);
        for call in 0..8 {
            h.offer(call, ZoneId((call % 3) as u16));
            h.advance(7_000);
        }
        h.advance(60_000);
        h.log
    };
    assert_eq!(run(), run());
}

proptest! {
    /// A core restored from a snapshot (through its bytes) gives the same commands as the
    /// core it was taken from, for every event after it: a cluster node may start from one.
    #[test]
    fn a_core_restored_from_a_snapshot_goes_on_exactly_as_the_original(
        ops in prop::collection::vec(op(), 1..200),
        at in 0usize..200,
    ) {
        let mut original = Core::new(plan());
        let mut now = 1_700_000_000_000u64;
        let at = at.min(ops.len());
        let mut restored: Option<Core> = None;
        for (i, op) in ops.iter().enumerate() {
            if i == at {
                let bytes = postcard::to_allocvec(&original.snapshot()).expect("encodes");
                let snapshot: Snapshot = postcard::from_bytes(&bytes).expect("decodes");
                restored = Some(Core::restore(plan(), snapshot).expect("fits"));
            }
            if let Op::Advance(ms) = op {
                now += u64::from(*ms);
            }
            let event = event(op, i as u64, &original).unwrap_or(Event::Tick);
            let expected: Vec<Command> = original.handle(event.clone(), Instant(now)).collect();
            if let Some(restored) = &mut restored {
                let got: Vec<Command> = restored.handle(event, Instant(now)).collect();
                restored.check_invariants();
                prop_assert_eq!(got, expected);
            }
        }
        if let Some(restored) = &restored {
            prop_assert_eq!(restored.live_calls(), original.live_calls());
            prop_assert_eq!(restored.next_deadline(), original.next_deadline());
        }
    }
}
