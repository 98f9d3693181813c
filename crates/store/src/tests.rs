use super::*;
use proptest::prelude::*;

fn offered(call: u64, at: i64) -> Write {
    Write::Offered {
        call,
        emergency_call_id: format!("urn:emergency:uid:callid:{call}:test"),
        caller: Some("0601020304".into()),
        service: "urn:service:sos.fire".into(),
        at,
        lat: Some(43.2965),
        lon: Some(5.3698),
        radius_m: Some(50.0),
        location_source: "pidf-lo".into(),
        departement: "13".into(),
        commune: Some("Marseille".into()),
        insee: Some("13055".into()),
        trunk: None,
    }
}

#[test]
fn a_call_round_trips_with_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(7, 1_000),
            Write::Queued {
                call: 7,
                cta: "cta-13".into(),
                at: 1_100,
            },
            Write::Queued {
                call: 7,
                cta: "cta-83".into(),
                at: 1_200,
            },
            Write::Trail {
                call: 7,
                at: 1_100,
                step: "en file cta-13".into(),
            },
            Write::Answered {
                call: 7,
                cta: "cta-83".into(),
                call_taker: "ota-83-1".into(),
                at: 5_000,
            },
            Write::Ended {
                call: 7,
                at: 65_000,
                outcome: "completed".into(),
                reason: "caller hung up".into(),
            },
            Write::Recording {
                call: 7,
                path: "/r/call-7.wav".into(),
                sha256: "ab".into(),
                duration_ms: 60_000,
            },
        ])
        .unwrap();
    let c = store.call(7).unwrap().unwrap();
    assert_eq!(c.queued_at, Some(1_100), "first queueing kept");
    assert_eq!(c.cta.as_deref(), Some("cta-83"));
    assert_eq!(c.call_taker.as_deref(), Some("ota-83-1"));
    assert_eq!((c.answered_at, c.ended_at), (Some(5_000), Some(65_000)));
    assert_eq!(c.outcome.as_deref(), Some("completed"));
    assert_eq!(c.recording_ms, Some(60_000));
    assert_eq!(c.commune.as_deref(), Some("Marseille"));
    assert_eq!(
        store.trail(7).unwrap(),
        vec![TrailEntry {
            at: 1_100,
            step: "en file cta-13".into()
        }]
    );
    assert!(store.call(8).unwrap().is_none());
}

#[test]
fn calls_since_filters_and_orders_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[offered(1, 100), offered(2, 200), offered(3, 300)])
        .unwrap();
    let calls: Vec<u64> = store
        .calls_since(150, 10)
        .unwrap()
        .iter()
        .map(|c| c.call)
        .collect();
    assert_eq!(calls, vec![3, 2]);
    assert_eq!(store.calls_since(0, 1).unwrap().len(), 1);
}

#[test]
fn numbering_continues_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_call().unwrap(), 0);
        store.apply(&[offered(41, 1), offered(42, 2)]).unwrap();
    }
    assert_eq!(Store::open(dir.path()).unwrap().last_call().unwrap(), 42);
}

#[test]
fn call_backs_leave_the_list_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(1, 1),
            Write::Callback {
                call: 1,
                cta: "cta-13".into(),
                state: "pending".into(),
                by: None,
                at: 10,
            },
            Write::Callback {
                call: 2,
                cta: "cta-83".into(),
                state: "pending".into(),
                by: None,
                at: 11,
            },
        ])
        .unwrap();
    let list = store.callbacks(Some("cta-13")).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].caller.as_deref(), Some("0601020304"));
    assert_eq!(store.callbacks(None).unwrap().len(), 2);
    store
        .apply(&[Write::Callback {
            call: 1,
            cta: "cta-13".into(),
            state: "taken".into(),
            by: Some("ota-13-1".into()),
            at: 20,
        }])
        .unwrap();
    let list = store.callbacks(Some("cta-13")).unwrap();
    assert_eq!(
        (list[0].state.as_str(), list[0].taken_by.as_deref()),
        ("taken", Some("ota-13-1"))
    );
    assert_eq!(list[0].created_at, 10);
    store
        .apply(&[Write::Callback {
            call: 1,
            cta: "cta-13".into(),
            state: "done".into(),
            by: None,
            at: 30,
        }])
        .unwrap();
    assert!(store.callbacks(Some("cta-13")).unwrap().is_empty());
}

#[test]
fn a_reader_sees_what_the_writer_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Store::open(dir.path()).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    writer.apply(&[offered(5, 5)]).unwrap();
    assert_eq!(reader.calls_since(0, 10).unwrap().len(), 1);
    assert!(
        reader.conn.execute("DELETE FROM calls", []).is_err(),
        "read-only"
    );
}

#[test]
fn a_reader_of_a_missing_store_sees_no_calls() {
    let dir = tempfile::tempdir().unwrap();
    let reader = Store::open_read_only(&dir.path().join("never")).unwrap();
    assert!(reader.calls_since(0, 10).unwrap().is_empty());
}

#[test]
fn ten_thousand_calls_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut writes = Vec::new();
    for call in 1..=10_000u64 {
        let at = call as i64 * 10;
        writes.push(offered(call, at));
        writes.push(Write::Queued {
            call,
            cta: "cta-13".into(),
            at,
        });
        writes.push(Write::Answered {
            call,
            cta: "cta-13".into(),
            call_taker: "ota-13-1".into(),
            at: at + 1,
        });
        writes.push(Write::Trail {
            call,
            at,
            step: "admis".into(),
        });
        writes.push(Write::Ended {
            call,
            at: at + 5,
            outcome: "completed".into(),
            reason: "caller hung up".into(),
        });
    }
    store.apply(&writes).unwrap();
    assert_eq!(store.last_call().unwrap(), 10_000);
    assert_eq!(store.calls_since(0, 20_000).unwrap().len(), 10_000);
    assert!(
        store
            .calls_since(0, 20_000)
            .unwrap()
            .iter()
            .all(|c| c.outcome.as_deref() == Some("completed"))
    );
}

#[test]
fn durations_for_since() {
    assert_eq!(parse_since("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_since("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_since("1h").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_since("2d").unwrap(), Duration::from_secs(172_800));
    assert_eq!(parse_since("1h30m").unwrap(), Duration::from_secs(5400));
    for bad in ["", "5x", "h", "10", "1h5"] {
        assert!(parse_since(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_table_names_its_columns_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.apply(&[offered(1, 3_723_000)]).unwrap();
    let table = format_table(&store.calls_since(0, 10).unwrap());
    assert!(table.starts_with("appel"), "{table}");
    assert!(table.contains("01:02:03"), "{table}");
    assert!(table.contains("en cours"), "{table}");
    assert_eq!(format_table(&[]).lines().last(), Some("(aucun appel)"));
}

fn any_write() -> impl Strategy<Value = Write> {
    let call = 1u64..20;
    prop_oneof![
        (call.clone(), 0i64..1000).prop_map(|(c, at)| offered(c, at)),
        (call.clone(), 0i64..1000).prop_map(|(call, at)| Write::Queued {
            call,
            cta: "cta-13".into(),
            at
        }),
        (call.clone(), 0i64..1000).prop_map(|(call, at)| Write::Answered {
            call,
            cta: "cta-13".into(),
            call_taker: "x".into(),
            at
        }),
        (call.clone(), 0i64..1000).prop_map(|(call, at)| Write::Ended {
            call,
            at,
            outcome: "abandoned".into(),
            reason: "r".into()
        }),
        (call.clone(), 0i64..1000).prop_map(|(call, at)| Write::Trail {
            call,
            at,
            step: "s".into()
        }),
        (call.clone(), 0i64..1000).prop_map(|(call, at)| Write::Callback {
            call,
            cta: "cta-13".into(),
            state: "pending".into(),
            by: None,
            at
        }),
        call.prop_map(|call| Write::Recording {
            call,
            path: "p".into(),
            sha256: "h".into(),
            duration_ms: 1
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_sequence_of_writes_applies_and_every_offered_call_is_listed(writes in proptest::collection::vec(any_write(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for chunk in writes.chunks(7) {
            store.apply(chunk).unwrap();
        }
        let offered: std::collections::BTreeSet<u64> = writes.iter().filter_map(|w| match w {
            Write::Offered { call, .. } => Some(*call),
            _ => None,
        }).collect();
        let listed: std::collections::BTreeSet<u64> = store
            .calls_since(i64::MIN, 1000)
            .unwrap()
            .into_iter()
            .filter(|c| !c.emergency_call_id.is_empty())
            .map(|c| c.call)
            .collect();
        prop_assert_eq!(offered, listed);
    }
}
