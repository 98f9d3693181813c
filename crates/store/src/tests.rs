use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn offered(call: u64, at: i64) -> Write {
    Write::Offered {
        call,
        emergency_call_id: format!("urn:emergency:uid:callid:{call}:test"),
        caller: Some("0601020304".into()),
        service: "urn:service:sos.fire".into(),
        at,
        lat: Some(43.2965.into()),
        lon: Some(5.3698.into()),
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
            Write::Answered {
                call: 7,
                cta: "cta-83".into(),
                call_taker: "ota-83-2".into(),
                at: 9_000,
            },
            Write::Trail {
                call: 7,
                at: 1_000,
                step: "reçu".into(),
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
    assert_eq!(c.call_taker.as_deref(), Some("ota-83-2"), "latest holder");
    assert_eq!(
        (c.answered_at, c.ended_at),
        (Some(5_000), Some(65_000)),
        "first answer kept"
    );
    assert_eq!(c.reason.as_deref(), Some("caller hung up"));
    assert_eq!(c.recording_path.as_deref(), Some("/r/call-7.wav"));
    assert_eq!(c.recording_sha256.as_deref(), Some("ab"));
    assert_eq!(c.emergency_call_id, "urn:emergency:uid:callid:7:test");
    assert_eq!(c.service, "urn:service:sos.fire");
    assert_eq!(
        (c.lat, c.lon, c.radius_m),
        (Some(43.2965), Some(5.3698), Some(50.0))
    );
    assert_eq!(
        (
            c.location_source.as_str(),
            c.departement.as_str(),
            c.insee.as_deref()
        ),
        ("pidf-lo", "13", Some("13055"))
    );
    assert_eq!(c.trunk, None);
    assert_eq!(c.outcome.as_deref(), Some("completed"));
    assert_eq!(c.recording_ms, Some(60_000));
    assert_eq!(c.commune.as_deref(), Some("Marseille"));
    assert_eq!(
        store.trail(7).unwrap(),
        vec![
            TrailEntry {
                at: 1_000,
                step: "reçu".into()
            },
            TrailEntry {
                at: 1_100,
                step: "en file cta-13".into()
            }
        ],
        "time order, whatever the order written"
    );
    assert!(store.call(8).unwrap().is_none());
}

#[test]
fn a_cta_s_calls_are_limited_among_its_own_not_the_country_s() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let answered = |call: u64, cta: &str| Write::Answered {
        call,
        cta: cta.into(),
        call_taker: format!("ota-{cta}"),
        at: call as i64 * 100 + 10,
    };
    let mut writes = Vec::new();
    // Ten calls of the BSPP, newer than the two of CTA 13.
    for call in 1..=12u64 {
        writes.push(offered(call, call as i64 * 100));
        writes.push(answered(call, if call <= 2 { "cta-13" } else { "bspp" }));
    }
    store.apply(&writes).unwrap();
    let numbers = |cta: &str, limit| -> Vec<u64> {
        store
            .cta_calls_since(cta, 0, limit)
            .unwrap()
            .iter()
            .map(|c| c.call)
            .collect()
    };
    assert_eq!(numbers("cta-13", 5), vec![2, 1]);
    assert_eq!(numbers("bspp", 3), vec![12, 11, 10]);
    assert!(numbers("cta-83", 5).is_empty());
}

#[test]
fn calls_since_filters_and_orders_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(1, 100),
            offered(3, 300),
            offered(2, 200),
            offered(4, 200),
        ])
        .unwrap();
    let numbers = |since, limit| -> Vec<u64> {
        store
            .calls_since(since, limit)
            .unwrap()
            .iter()
            .map(|c| c.call)
            .collect()
    };
    assert_eq!(
        numbers(150, 10),
        vec![3, 4, 2],
        "ties by number, newest first"
    );
    assert_eq!(numbers(200, 10), vec![3, 4, 2], "the bound is inclusive");
    assert_eq!(numbers(0, 1), vec![3]);
    assert_eq!(numbers(301, 10), Vec::<u64>::new());
    assert_eq!(numbers(i64::MIN, usize::MAX).len(), 4);
}

#[test]
fn writes_before_their_offer_are_kept_but_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            Write::Ended {
                call: 9,
                at: 900,
                outcome: "abandoned".into(),
                reason: "caller hung up in queue".into(),
            },
            Write::Queued {
                call: 9,
                cta: "cta-13".into(),
                at: 850,
            },
            Write::Recording {
                call: 9,
                path: "/r/9.wav".into(),
                sha256: "cd".into(),
                duration_ms: 5,
            },
        ])
        .unwrap();
    assert!(store.calls_since(i64::MIN, 10).unwrap().is_empty());
    assert!(store.call(9).unwrap().is_none());
    assert_eq!(
        store.last_call().unwrap(),
        9,
        "the number is taken all the same"
    );
    store.apply(&[offered(9, 800)]).unwrap();
    let c = store.call(9).unwrap().unwrap();
    assert_eq!(c.offered_at, 800);
    assert_eq!(c.queued_at, Some(850));
    assert_eq!(c.ended_at, Some(900));
    assert_eq!(c.outcome.as_deref(), Some("abandoned"));
    assert_eq!(c.recording_path.as_deref(), Some("/r/9.wav"));
    assert_eq!(c.commune.as_deref(), Some("Marseille"));
    assert_eq!(store.calls_since(0, 10).unwrap().len(), 1);
}

#[test]
fn last_call_counts_numbers_seen_only_in_a_trail_or_a_call_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(3, 1),
            Write::Trail {
                call: 12,
                at: 2,
                step: "s".into(),
            },
        ])
        .unwrap();
    assert_eq!(store.last_call().unwrap(), 12);
    store
        .apply(&[Write::Callback {
            call: 20,
            cta: "cta-13".into(),
            state: "pending".into(),
            by: None,
            at: 3,
        }])
        .unwrap();
    assert_eq!(store.last_call().unwrap(), 20);
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
    let rest = store.callbacks(None).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].call, rest[0].caller.as_deref()), (2, None));
}

#[test]
fn call_backs_released_or_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let callback = |call, state: &str, by: Option<&str>, at| Write::Callback {
        call,
        cta: "cta-13".into(),
        state: state.into(),
        by: by.map(Into::into),
        at,
    };
    store
        .apply(&[
            callback(1, "pending", None, 10),
            callback(2, "pending", None, 20),
            callback(1, "taken", Some("ota-1"), 30),
            callback(1, "pending", None, 40),
        ])
        .unwrap();
    let list = store.callbacks(None).unwrap();
    assert_eq!(list.iter().map(|c| c.call).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(list[0].taken_by, None, "released: free for anyone");
    assert_eq!((list[0].created_at, list[0].updated_at), (10, 40));
    store
        .apply(&[
            callback(1, "done", Some("ota-1"), 50),
            callback(1, "pending", None, 60),
        ])
        .unwrap();
    let list = store.callbacks(Some("cta-13")).unwrap();
    assert_eq!(
        list.iter()
            .map(|c| (c.call, c.created_at))
            .collect::<Vec<_>>(),
        vec![(2, 20), (1, 60)],
        "a reopened entry queues by its new date"
    );
    assert!(store.callbacks(Some("cta-83")).unwrap().is_empty());
}

#[test]
fn a_reader_sees_what_the_writer_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Store::open(dir.path()).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    writer.apply(&[offered(5, 5)]).unwrap();
    assert_eq!(reader.calls_since(0, 10).unwrap().len(), 1);
    writer
        .apply(&[
            Write::Trail {
                call: 5,
                at: 6,
                step: "admis".into(),
            },
            Write::Callback {
                call: 5,
                cta: "cta-13".into(),
                state: "pending".into(),
                by: None,
                at: 7,
            },
        ])
        .unwrap();
    assert_eq!(reader.trail(5).unwrap().len(), 1);
    assert_eq!(reader.callbacks(None).unwrap().len(), 1);
    assert_eq!(reader.last_call().unwrap(), 5);
    let mut reader = reader;
    let refused = reader.apply(&[offered(6, 6)]).unwrap_err();
    assert!(
        refused.to_string().contains(FILE_NAME),
        "names the file: {refused}"
    );
    assert!(writer.call(6).unwrap().is_none());
}

#[test]
fn a_reader_reads_a_store_whose_writer_has_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Store::open(dir.path()).unwrap();
    writer.apply(&[offered(1, 1), offered(2, 2)]).unwrap();
    drop(writer);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.calls_since(0, 10).unwrap().len(), 2);
    assert_eq!(reader.last_call().unwrap(), 2);
}

#[test]
fn a_reader_of_a_missing_store_sees_no_calls_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never");
    let mut reader = Store::open_read_only(&missing).unwrap();
    assert!(reader.calls_since(0, 10).unwrap().is_empty());
    assert!(reader.callbacks(None).unwrap().is_empty());
    assert_eq!(reader.last_call().unwrap(), 0);
    assert!(reader.apply(&[offered(1, 1)]).is_err());
    assert!(!missing.exists());
}

#[test]
fn a_newer_store_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    for result in [Store::open(dir.path()), Store::open_read_only(dir.path())] {
        let Err(e) = result else {
            panic!("a newer schema must be refused")
        };
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
        assert!(e.to_string().contains(FILE_NAME), "{e}");
    }
}

#[test]
fn a_version_1_store_is_upgraded_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v1 = SCHEMA.replace(
        ",\n    offered INTEGER NOT NULL DEFAULT 1,\n    medium TEXT NOT NULL DEFAULT 'voice',\n    transcript_sha256 TEXT",
        "",
    );
    assert_ne!(v1, SCHEMA);
    conn.execute_batch(&v1).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 1;
         INSERT INTO calls (call, emergency_call_id, service, offered_at, location_source, departement)
         VALUES (1, 'urn:emergency:uid:callid:1:x', 'urn:service:sos', 10, 'aml', '13'),
                (2, '', '', 20, 'unknown', '');",
    )
    .unwrap();
    drop(conn);
    let Err(e) = Store::open_read_only(dir.path()) else {
        panic!("a reader cannot read an old schema")
    };
    assert!(matches!(e, StoreError::TooOld { found: 1, .. }), "{e}");
    let store = Store::open(dir.path()).unwrap();
    let listed: Vec<u64> = store
        .calls_since(0, 10)
        .unwrap()
        .iter()
        .map(|c| c.call)
        .collect();
    assert_eq!(listed, vec![1], "the old placeholder stays out of the list");
    assert_eq!(store.last_call().unwrap(), 2);
    drop(store);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.calls_since(0, 10).unwrap().len(), 1);
    drop(Store::open(dir.path()).unwrap());
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
    let calls = store.calls_since(0, 20_000).unwrap();
    assert_eq!(calls.len(), 10_000);
    assert_eq!(calls.first().map(|c| c.call), Some(10_000));
    assert!(calls.iter().all(|c| {
        let at = c.call as i64 * 10;
        c.outcome.as_deref() == Some("completed")
            && c.queued_at == Some(at)
            && c.answered_at == Some(at + 1)
            && c.ended_at == Some(at + 5)
    }));
    assert_eq!(
        store.calls_since(50_001, 20_000).unwrap().len(),
        5_000,
        "calls 5001..=10000"
    );
    assert_eq!(store.trail(5_000).unwrap().len(), 1);
}

#[test]
fn durations_for_since() {
    assert_eq!(parse_since("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_since("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_since("1h").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_since("2d").unwrap(), Duration::from_secs(172_800));
    assert_eq!(parse_since("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_since(" 2h ").unwrap(), Duration::from_secs(7200));
    assert_eq!(parse_since("0s").unwrap(), Duration::ZERO);
    assert_eq!(
        parse_since("1d1h1m1s").unwrap(),
        Duration::from_secs(90_061)
    );
    for bad in [
        "",
        "   ",
        "5x",
        "h",
        "10",
        "1h5",
        "1.5h",
        "-1h",
        "1 h",
        "99999999999999999999s",
        "9999999999999999d",
    ] {
        let e = parse_since(bad).unwrap_err();
        assert!(!e.is_empty(), "{bad:?}");
    }
    assert!(parse_since("5x").unwrap_err().contains("'x'"));
}

#[test]
fn the_table_names_its_columns_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(1, 3_723_000),
            offered(2, 86_400_000 + 10_000),
            Write::Queued {
                call: 2,
                cta: "cta-13".into(),
                at: 86_400_000 + 11_000,
            },
            Write::Ended {
                call: 2,
                at: 86_400_000 + 75_000,
                outcome: "abandoned".into(),
                reason: "raccroché en file".into(),
            },
        ])
        .unwrap();
    let table = format_table(&store.calls_since(0, 10).unwrap());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("appel"), "{table}");
    for column in [
        "reçu",
        "appelant",
        "dépt",
        "commune",
        "CTA",
        "opérateur",
        "état",
        "raison",
        "enregistrement",
        "durée",
    ] {
        assert!(lines[0].contains(column), "{column} in {table}");
    }
    // Newest first: call 2, then call 1.
    assert!(lines[1].starts_with('2'), "{table}");
    assert!(lines[1].contains("00:00:10"), "{table}");
    assert!(lines[1].contains("abandonné"), "{table}");
    assert!(lines[1].contains("raccroché en file"), "{table}");
    assert!(lines[1].ends_with("1:05"), "{table}");
    assert!(lines[2].contains("01:02:03"), "{table}");
    assert!(lines[2].contains("en cours"), "{table}");
    // Aligned: every column starts at the same character in every line.
    let column = |line: &str, word: &str| line.find(word).map(|b| line[..b].chars().count());
    let commune = column(lines[0], "commune");
    assert!(commune.is_some());
    assert_eq!(column(lines[1], "Marseille"), commune, "{table}");
    assert_eq!(column(lines[2], "Marseille"), commune, "{table}");
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
        (
            call.clone(),
            0i64..1000,
            prop_oneof![Just("pending"), Just("taken"), Just("done")],
            prop_oneof![Just("cta-13"), Just("cta-83")],
        )
            .prop_map(|(call, at, state, cta)| Write::Callback {
                call,
                cta: cta.into(),
                state: state.into(),
                by: (state == "taken").then(|| "ota".into()),
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

fn call_of(write: &Write) -> u64 {
    match write {
        Write::Offered { call, .. }
        | Write::Queued { call, .. }
        | Write::Answered { call, .. }
        | Write::Ended { call, .. }
        | Write::Recording { call, .. }
        | Write::Trail { call, .. }
        | Write::Callback { call, .. }
        | Write::TextLine { call, .. }
        | Write::TextSealed { call, .. }
        | Write::Alone { call }
        | Write::GivenBack { call } => *call,
        Write::CaseMessage { call, .. } => call.unwrap_or(0),
        Write::HighWater { upto } => *upto,
        Write::LogApplied { .. } | Write::CaseState { .. } => 0,
    }
}

#[test]
fn the_log_mark_only_moves_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.log_applied().unwrap(), 0);
    store.apply(&[Write::LogApplied { seq: 42 }]).unwrap();
    store.apply(&[Write::LogApplied { seq: 7 }]).unwrap();
    assert_eq!(store.log_applied().unwrap(), 42);
}

#[test]
fn numbers_reserved_ahead_are_never_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.apply(&[offered(7, 7)]).unwrap();
    assert_eq!(store.last_call().unwrap(), 7);
    store.apply(&[Write::HighWater { upto: 10_007 }]).unwrap();
    store.apply(&[Write::HighWater { upto: 5 }]).unwrap();
    assert_eq!(store.last_call().unwrap(), 10_007);
    let open = store.open_calls().unwrap();
    assert_eq!(open.iter().map(|c| c.call).collect::<Vec<_>>(), vec![7]);
    assert_eq!(
        open[0].caller.as_ref().map(|c| c.expose().as_str()),
        Some("0601020304")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_sequence_of_writes_applies_and_every_offered_call_is_listed(
        writes in proptest::collection::vec(any_write(), 0..80),
        batch in 1usize..12,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for chunk in writes.chunks(batch) {
            prop_assert!(store.apply(chunk).is_ok());
        }
        let offered: BTreeSet<u64> = writes.iter().filter_map(|w| match w {
            Write::Offered { call, .. } => Some(*call),
            _ => None,
        }).collect();
        let calls = store.calls_since(0, 1000).unwrap();
        prop_assert_eq!(calls.len(), offered.len(), "no call twice");
        let listed: BTreeSet<u64> = calls.iter().map(|c| c.call).collect();
        prop_assert_eq!(&offered, &listed);
        prop_assert!(calls.windows(2).all(|w| w[0].offered_at >= w[1].offered_at));
        // The last Offered of a call wins: it is the one the platform meant.
        for c in &calls {
            let last_offer = writes.iter().rev().find_map(|w| match w {
                Write::Offered { call, at, .. } if *call == c.call => Some(*at),
                _ => None,
            });
            prop_assert_eq!(Some(c.offered_at), last_offer);
        }
        for call in 1..20 {
            prop_assert_eq!(store.call(call).unwrap().is_some(), offered.contains(&call));
        }
        prop_assert_eq!(
            store.last_call().unwrap(),
            writes.iter().map(call_of).max().unwrap_or(0)
        );
        let mut open_callbacks = BTreeMap::new();
        for w in &writes {
            if let Write::Callback { call, state, .. } = w {
                open_callbacks.insert(*call, state != "done");
            }
        }
        let expected: BTreeSet<u64> =
            open_callbacks.into_iter().filter(|&(_, open)| open).map(|(c, _)| c).collect();
        let pending: BTreeSet<u64> = store.callbacks(None).unwrap().iter().map(|c| c.call).collect();
        prop_assert_eq!(expected, pending);
    }
}

#[test]
fn calls_served_alone_are_kept_until_the_log_takes_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .apply(&[
            offered(7, 1),
            Write::Alone { call: 7 },
            offered(9, 2),
            Write::Alone { call: 9 },
            Write::Alone { call: 9 },
        ])
        .unwrap();
    assert_eq!(store.alone().unwrap(), vec![7, 9]);
    store.apply(&[Write::GivenBack { call: 7 }]).unwrap();
    drop(store);
    // Across a restart, the one not given back yet is still there.
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.alone().unwrap(), vec![9]);
}

#[test]
fn a_text_conversation_keeps_its_lines_in_order_and_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let line = |at, author: &str, login: Option<&str>, text: &str| Write::TextLine {
        call: 9,
        at,
        author: author.into(),
        login: login.map(Into::into),
        text: text.to_owned().into(),
    };
    store
        .apply(&[
            offered(9, 1_000),
            line(1_000, "caller", None, "Au feu, je ne peux pas parler"),
            line(1_000, "platform", None, "Votre message est reçu."),
            line(4_000, "call_taker", Some("ota-13-1"), "Où êtes-vous ?"),
            Write::TextSealed {
                call: 9,
                sha256: "ab".repeat(32),
            },
        ])
        .unwrap();
    let record = store.call(9).unwrap().unwrap();
    assert_eq!(record.medium, "text");
    assert_eq!(record.transcript_sha256, Some("ab".repeat(32)));
    let lines = store.transcript(9).unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Au feu, je ne peux pas parler",
            "Votre message est reçu.",
            "Où êtes-vous ?"
        ]
    );
    assert_eq!(lines[2].login.as_deref(), Some("ota-13-1"));
    store.apply(&[offered(10, 2_000)]).unwrap();
    assert_eq!(store.call(10).unwrap().unwrap().medium, "voice");
}

#[test]
fn a_version_4_store_gains_text_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v4 = SCHEMA.replace(
        ",\n    medium TEXT NOT NULL DEFAULT 'voice',\n    transcript_sha256 TEXT",
        "",
    );
    let v4 = &v4[..v4.find("CREATE TABLE IF NOT EXISTS transcript").unwrap()];
    conn.execute_batch(v4).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 4;
         INSERT INTO calls (call, emergency_call_id, service, offered_at, location_source, departement)
         VALUES (1, 'urn:emergency:uid:callid:1:x', 'urn:service:sos', 10, 'aml', '13');",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.call(1).unwrap().unwrap().medium, "voice");
    assert!(store.transcript(1).unwrap().is_empty());
}

#[test]
fn a_case_message_keeps_its_body_and_follows_its_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let sent = |id: &str, at| Write::CaseMessage {
        distribution_id: id.into(),
        call: Some(9),
        direction: "sent",
        partner: "fr.health.samu13".into(),
        kind: "Report".into(),
        state: "queued".into(),
        at,
        body: "{\"distributionID\":\"x\"}".to_owned().into(),
    };
    store
        .apply(&[
            offered(9, 1_000),
            sent("fr.fire.s_9-15-1", 2_000),
            // A repeat of the same message (a retried write) keeps the first row.
            sent("fr.fire.s_9-15-1", 2_500),
            Write::CaseState {
                distribution_id: "fr.fire.s_9-15-1".into(),
                state: "acked".into(),
                reason: None,
                at: 3_000,
            },
        ])
        .unwrap();
    let messages = store.case_messages(9).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].state, "acked");
    assert_eq!((messages[0].at, messages[0].updated_at), (2_000, 3_000));
    assert_eq!(messages[0].body, "{\"distributionID\":\"x\"}");
    assert!(store.case_messages(10).unwrap().is_empty());
}

#[test]
fn a_version_5_store_gains_case_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v5 = &SCHEMA[..SCHEMA
        .find("CREATE TABLE IF NOT EXISTS case_messages")
        .unwrap()];
    conn.execute_batch(v5).unwrap();
    conn.execute_batch("PRAGMA user_version = 5;").unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.case_messages(1).unwrap().is_empty());
}
