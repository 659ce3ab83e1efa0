use super::*;
use time::macros::datetime;

fn main() -> DatabaseId {
    DatabaseId::new("main").unwrap()
}

fn verification(verdict: Verdict) -> Verification {
    Verification {
        database_id: "main".into(),
        backup_id: "20261122T060000Z-0000000b".into(),
        level: Level::Deep,
        verdict,
        findings: match verdict {
            Verdict::Passed => Vec::new(),
            _ => vec![super::super::Finding {
                part: Some("data/0002.copy.zst".into()),
                problem: "its SHA-256 does not match".into(),
            }],
        },
        checked_at: datetime!(2026-11-22 07:00 UTC),
        duration_seconds: 1.5,
        restore_seconds: None,
        loaded_seconds: None,
        statistics: None,
        replayed_through: None,
        engine_version: "test".into(),
    }
}

/// A log of `n` entries as append writes them: (key, bytes).
fn log(n: u64) -> Vec<Stored> {
    let mut stored: Vec<Stored> = Vec::new();
    for seq in 1..=n {
        let previous = stored.last().map(|s| sha256_hex(s.read.as_ref().unwrap()));
        let verdict = if seq % 2 == 0 {
            Verdict::Failed
        } else {
            Verdict::Passed
        };
        let entry = Entry::of(&verification(verdict), seq, previous, 7, "test");
        let mut bytes = serde_json::to_vec_pretty(&entry).unwrap();
        bytes.push(b'\n');
        stored.push(Stored {
            key: entry_key(&main(), seq),
            read: Ok(bytes),
        });
    }
    stored
}

#[test]
fn keys_are_numbered_in_twelve_digits_under_the_log_prefix() {
    assert_eq!(log_prefix(&main()), "_backstop/verifications/main/");
    assert_eq!(
        entry_key(&main(), 4),
        "_backstop/verifications/main/000000000004.json"
    );
    assert_eq!(seq_of("000000000004.json"), Some(4));
    for other in [
        "4.json",
        "000000000000.json",
        "00000000000x.json",
        "000000000004.json.bak",
        "sub/000000000004.json",
    ] {
        assert_eq!(seq_of(other), None, "{other}");
    }
}

#[test]
fn an_entry_keeps_the_first_finding_of_a_failure_only() {
    let failed = Entry::of(
        &verification(Verdict::Failed),
        2,
        Some("ab".into()),
        9,
        "me",
    );
    assert_eq!(
        failed.problem.as_deref(),
        Some("data/0002.copy.zst: its SHA-256 does not match")
    );
    assert_eq!((failed.findings, failed.checksums_checked), (1, 9));
    let passed = Entry::of(&verification(Verdict::Passed), 1, None, 0, "me");
    assert_eq!((passed.problem, passed.findings), (None, 0));
}

#[test]
fn an_intact_chain_has_every_entry_and_the_newest_hash_as_its_head() {
    let stored = log(5);
    let chain = judge(&main(), &stored, None);
    assert!(chain.is_intact(), "{:?}", chain.problems);
    assert_eq!(
        chain.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let head = sha256_hex(stored[4].read.as_ref().unwrap());
    assert_eq!(chain.head.as_deref(), Some(head.as_str()));
    let seen = chain.seen(datetime!(2026-11-22 08:00 UTC)).unwrap();
    assert_eq!((seen.seq, seen.head), (5, head));
    assert_eq!(
        judge(&main(), &[], None),
        Chain {
            entries: Vec::new(),
            problems: Vec::new(),
            head: None,
        }
    );
}

#[test]
fn an_edited_middle_entry_is_named_by_the_one_after_it() {
    let mut stored = log(5);
    let edited = String::from_utf8(stored[2].read.clone().unwrap())
        .unwrap()
        .replace("\"by\": \"test\"", "\"by\": \"mallory\"");
    stored[2].read = Ok(edited.into_bytes());
    let chain = judge(&main(), &stored, None);
    // Entry 3's hash of entry 2 may have been edited too: 1 and 2 are vouched for by nothing.
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Changed { seq: 3 },
            ChainProblem::Unvouched {
                from: 1,
                to: 2,
                successor: Successor::Changed
            }
        ]
    );
    assert_eq!(chain.entries.len(), 5);
    assert_eq!(
        chain.problems[0].describe(&main()),
        "entry 3 (_backstop/verifications/main/000000000003.json) was changed after it \
         was written: entry 4 holds a different hash of it"
    );
    assert_eq!(
        chain.problems[0].to_string(),
        "entry 3 (000000000003.json) was changed after it was written: entry 4 holds a \
         different hash of it"
    );
}

#[test]
fn an_entry_edited_into_something_else_is_named_once_as_changed() {
    let mut stored = log(4);
    stored[1].read = Ok(b"not json".to_vec());
    let chain = judge(&main(), &stored, None);
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Changed { seq: 2 },
            ChainProblem::Unvouched {
                from: 1,
                to: 1,
                successor: Successor::Changed
            }
        ]
    );
    // The newest has no successor: it cannot be read as an entry.
    let mut stored = log(4);
    stored[3].read = Ok(b"{}".to_vec());
    let chain = judge(&main(), &stored, None);
    assert!(
        matches!(&chain.problems[..], [
            ChainProblem::Unreadable { seq: 4, reason },
            ChainProblem::Unvouched { from: 1, to: 3, successor: Successor::Unreadable },
        ] if reason.contains("does not read as an entry")),
        "{:?}",
        chain.problems
    );
}

#[test]
fn a_deleted_middle_entry_is_missing() {
    let mut stored = log(5);
    stored.remove(2);
    let chain = judge(&main(), &stored, None);
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Missing { seq: 3 },
            ChainProblem::Unvouched {
                from: 1,
                to: 2,
                successor: Successor::Missing
            }
        ]
    );
    assert!(
        chain.problems[0]
            .describe(&main())
            .starts_with("entry 3 (_backstop/verifications/main/000000000003.json) is missing")
    );
    assert_eq!(
        chain.problems[1].describe(&main()),
        "entries 1 to 2 (_backstop/verifications/main/000000000001.json to \
         _backstop/verifications/main/000000000002.json) cannot be checked: entry 3, whose hash \
         of entry 2 (and through it of the ones before) would show an edit, is missing"
    );
    assert!(chain.problems[1].names(1) && chain.problems[1].names(2));
    assert!(!chain.problems[1].names(3));
}

#[test]
fn a_deleted_first_entry_is_missing() {
    let mut stored = log(3);
    stored.remove(0);
    let chain = judge(&main(), &stored, None);
    assert_eq!(chain.problems, [ChainProblem::Missing { seq: 1 }]);
    assert_eq!(chain.entries.len(), 2);
}

#[test]
fn an_unreadable_entry_is_named_with_why_and_its_successor_is_not_blamed() {
    let mut stored = log(3);
    stored[1].read = Err("it is larger than 1 MiB, more than an entry ever is".into());
    let chain = judge(&main(), &stored, None);
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Unreadable {
                seq: 2,
                reason: "it is larger than 1 MiB, more than an entry ever is".into()
            },
            ChainProblem::Unvouched {
                from: 1,
                to: 1,
                successor: Successor::Unreadable
            }
        ]
    );
    assert_eq!(
        chain.problems[1].to_string(),
        "entry 1 (000000000001.json) cannot be checked: entry 2, whose hash of it would show an \
         edit, cannot be read"
    );
}

#[test]
fn other_names_renumbered_and_foreign_entries_are_named() {
    let mut stored = log(3);
    stored.push(Stored {
        key: "_backstop/verifications/main/notes\u{1b}[2J.txt".into(),
        read: Ok(Vec::new()),
    });
    // Entry 3's file moved to 4's name: 3 missing, and 4 says it is 3.
    let moved = stored.remove(2);
    stored.insert(
        2,
        Stored {
            key: entry_key(&main(), 4),
            read: moved.read,
        },
    );
    let chain = judge(&main(), &stored, None);
    assert_eq!(chain.problems.len(), 4, "{:?}", chain.problems);
    assert_eq!(chain.problems[0], ChainProblem::Missing { seq: 3 });
    assert_eq!(
        chain.problems[1],
        ChainProblem::Unvouched {
            from: 1,
            to: 2,
            successor: Successor::Missing
        }
    );
    assert_eq!(
        chain.problems[2],
        ChainProblem::Inconsistent {
            seq: 4,
            reason: "says it is entry 3".into()
        }
    );
    let stranger = chain.problems[3].describe(&main());
    assert!(!stranger.contains('\u{1b}'), "{stranger}");
    assert!(stranger.contains("is not an entry"), "{stranger}");
}

#[test]
fn the_newest_entry_is_checked_against_what_the_monitor_saw() {
    let stored = log(4);
    let at = datetime!(2026-11-22 08:00 UTC);
    let seen = judge(&main(), &stored, None).seen(at).unwrap();
    assert!(judge(&main(), &stored, Some(&seen)).is_intact());
    // Deleted after it was seen: nothing after it tells, the memory does; and what it held
    // of the ones before is gone with it.
    let chain = judge(&main(), &stored[..3], Some(&seen));
    assert_eq!(
        chain.problems,
        [
            ChainProblem::SeenGone {
                seq: 4,
                seen_at: at
            },
            ChainProblem::Unvouched {
                from: 1,
                to: 3,
                successor: Successor::Missing
            }
        ]
    );
    assert_eq!(
        chain.problems[0].describe(&main()),
        "entry 4 (_backstop/verifications/main/000000000004.json), seen by the monitor at \
         2026-11-22T08:00:00Z, is gone"
    );
    // Edited after it was seen.
    let mut edited = stored.clone();
    edited[3].read = Ok(b"{\"edited\": true}".to_vec());
    let chain = judge(&main(), &edited, Some(&seen));
    assert!(
        chain.problems.contains(&ChainProblem::SeenChanged {
            seq: 4,
            seen_at: at
        }),
        "{:?}",
        chain.problems
    );
    // Replaced by a later append after it was deleted: its successor agrees, the memory does not.
    let mut replaced = log(3);
    let other = Entry::of(
        &verification(Verdict::Passed),
        4,
        Some(sha256_hex(replaced[2].read.as_ref().unwrap())),
        0,
        "someone else",
    );
    replaced.push(Stored {
        key: entry_key(&main(), 4),
        read: Ok(serde_json::to_vec_pretty(&other).unwrap()),
    });
    let chain = judge(&main(), &replaced, Some(&seen));
    assert_eq!(
        chain.problems,
        [
            ChainProblem::SeenChanged {
                seq: 4,
                seen_at: at
            },
            ChainProblem::Unvouched {
                from: 1,
                to: 3,
                successor: Successor::Changed
            }
        ]
    );
    // A middle entry the memory names and the successor already blames is named once.
    let later = log(6);
    let mut edited = later.clone();
    edited[3].read = Ok(b"x".to_vec());
    let chain = judge(&main(), &edited, Some(&seen));
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Changed { seq: 4 },
            ChainProblem::Unvouched {
                from: 1,
                to: 3,
                successor: Successor::Changed
            }
        ]
    );
    assert!(judge(&main(), &later, Some(&seen)).is_intact());
    assert_eq!(
        judge(&main(), &later[..5], Some(&seen))
            .seen(at)
            .unwrap()
            .seq,
        5
    );
    assert_eq!(chain.seen(at), None, "a broken chain is not remembered");
}

#[tokio::test]
async fn appends_that_meet_each_get_an_entry_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = backstop_store::store::FileStore::new(dir.path().to_path_buf());
    let first = append(&store, &verification(Verdict::Passed), 0, "one")
        .await
        .unwrap();
    assert_eq!((first.seq, first.previous), (1, None));
    let racing = (0..5).map(|i| {
        let store = &store;
        async move {
            append(
                store,
                &verification(Verdict::Failed),
                i,
                &format!("racer {i}"),
            )
            .await
            .unwrap()
        }
    });
    let mut seqs: Vec<u64> = futures::future::join_all(racing)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [2, 3, 4, 5, 6]);
    let chain = read_chain(&store, &main()).await.unwrap();
    assert!(chain.is_intact(), "{:?}", chain.problems);
    assert_eq!(chain.entries.len(), 6);
    assert_eq!(chain.entries[0].by, "one");
}

#[test]
fn problems_serialize_tagged() {
    let json = serde_json::to_value(ChainProblem::Unreadable {
        seq: 2,
        reason: "why".into(),
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"problem": "unreadable", "seq": 2, "reason": "why"})
    );
    assert_eq!(
        ChainProblem::NotAnEntry { key: "k".into() }.kind(),
        "not-an-entry"
    );
}

#[test]
fn an_entry_the_monitor_remembers_is_vouched_for_by_its_memory() {
    // The monitor saw entry 3 as the newest; 4 was appended, then 4 deleted and 5 added.
    let stored = log(5);
    let at = datetime!(2026-11-22 08:00 UTC);
    let seen = judge(&main(), &stored[..3], None).seen(at).unwrap();
    let mut gap = stored.clone();
    gap.remove(3);
    let chain = judge(&main(), &gap, Some(&seen));
    assert_eq!(chain.problems, [ChainProblem::Missing { seq: 4 }]);
    // An edited entry whose successor went is not vouched for, unless remembered as it is.
    let mut edited = stored.clone();
    edited[2].read = Ok(String::from_utf8(edited[2].read.clone().unwrap())
        .unwrap()
        .replace("\"by\": \"test\"", "\"by\": \"mallory\"")
        .into_bytes());
    edited.remove(3);
    let chain = judge(&main(), &edited, None);
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Missing { seq: 4 },
            ChainProblem::Unvouched {
                from: 1,
                to: 3,
                successor: Successor::Missing
            }
        ]
    );
    let chain = judge(&main(), &edited, Some(&seen));
    assert!(
        chain.problems.contains(&ChainProblem::SeenChanged {
            seq: 3,
            seen_at: at
        }),
        "{:?}",
        chain.problems
    );
}

#[test]
fn a_successor_without_a_hash_vouches_for_nothing() {
    let mut stored = log(3);
    let mut entry: Entry = serde_json::from_slice(stored[2].read.as_ref().unwrap()).unwrap();
    entry.previous = None;
    stored[2].read = Ok(serde_json::to_vec_pretty(&entry).unwrap());
    let chain = judge(&main(), &stored, None);
    assert_eq!(
        chain.problems,
        [
            ChainProblem::Inconsistent {
                seq: 3,
                reason: "holds no hash of entry 2".into()
            },
            ChainProblem::Unvouched {
                from: 1,
                to: 2,
                successor: Successor::NoHash
            }
        ]
    );
}

#[test]
fn a_stray_huge_number_is_one_missing_range_not_one_problem_per_number() {
    let mut stored = log(3);
    stored.push(Stored {
        key: entry_key(&main(), MAX_SEQ),
        read: Ok(b"{}".to_vec()),
    });
    let chain = judge(&main(), &stored, None);
    assert_eq!(chain.entries.len(), 3);
    assert_eq!(chain.problems.len(), 3, "{:?}", chain.problems);
    assert_eq!(
        chain.problems[0],
        ChainProblem::MissingRange {
            from: 4,
            to: MAX_SEQ - 1
        }
    );
    assert_eq!(
        chain.problems[0].describe(&main()),
        "entries 4 to 999999999998 (_backstop/verifications/main/000000000004.json to \
         _backstop/verifications/main/999999999998.json) are missing: entry 999999999999 is \
         there, so they were deleted after they were written, or entry 999999999999 is not \
         Backstop's"
    );
    assert!(chain.problems[0].names(4) && chain.problems[0].names(MAX_SEQ - 1));
    assert!(!chain.problems[0].names(3) && !chain.problems[0].names(MAX_SEQ));
    assert!(matches!(
        chain.problems[1],
        ChainProblem::Unvouched {
            from: 1,
            to: 3,
            successor: Successor::Missing
        }
    ));
    assert!(matches!(
        chain.problems[2],
        ChainProblem::Unreadable { seq: MAX_SEQ, .. }
    ));
    // What the monitor saw of entry 3 still vouches for 1 to 3.
    let seen = judge(&main(), &stored[..3], None)
        .seen(datetime!(2026-11-22 08:00 UTC))
        .unwrap();
    let chain = judge(&main(), &stored, Some(&seen));
    assert!(
        !chain
            .problems
            .iter()
            .any(|p| matches!(p, ChainProblem::Unvouched { .. })),
        "{:?}",
        chain.problems
    );
    // Two runs apart are two problems; a gap of one is `missing`.
    let mut two = log(6);
    two.remove(4);
    two.remove(1);
    let kinds: Vec<&str> = judge(&main(), &two, None)
        .problems
        .iter()
        .map(ChainProblem::kind)
        .collect();
    assert_eq!(kinds, ["missing", "unvouched", "missing", "unvouched"]);
}

#[tokio::test]
async fn append_refuses_after_an_entry_at_the_highest_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = backstop_store::store::FileStore::new(dir.path().to_path_buf());
    append(&store, &verification(Verdict::Passed), 0, "one")
        .await
        .unwrap();
    let stray = entry_key(&main(), MAX_SEQ);
    store
        .put(
            &stray,
            &mut b"{}".as_slice(),
            &PutOptions {
                tags: Vec::new(),
                create_only: true,
            },
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = append(&store, &verification(Verdict::Passed), 0, "two")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_millis(20),
        "refused at once"
    );
    assert!(error.contains(&stray), "{error}");
    assert!(error.contains("backstop health"), "{error}");
    // Just below it, the next number is still a name.
    let dir = tempfile::tempdir().unwrap();
    let store = backstop_store::store::FileStore::new(dir.path().to_path_buf());
    let below = entry_key(&main(), MAX_SEQ - 1);
    let one = log(1);
    store
        .put(
            &below,
            &mut one[0].read.as_ref().unwrap().as_slice(),
            &PutOptions {
                tags: Vec::new(),
                create_only: true,
            },
        )
        .await
        .unwrap();
    let entry = append(&store, &verification(Verdict::Passed), 0, "three")
        .await
        .unwrap();
    assert_eq!(entry.seq, MAX_SEQ);
}
