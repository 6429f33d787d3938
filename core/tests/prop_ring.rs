//! Property test: any sequence of ring operations behaves like a bounded `VecDeque`.
#![cfg(not(loom))]

use std::collections::VecDeque;

use proptest::prelude::*;
use ringlink_core::ring::{GrantError, Ring};

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<u8>),
    Read(usize),
    Grant {
        len: usize,
        commit: usize,
        exact: bool,
    },
    ReadGrant {
        release: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Write),
        (0usize..40).prop_map(Op::Read),
        (0usize..40, 0usize..40, any::<bool>()).prop_map(|(len, commit, exact)| Op::Grant {
            len,
            commit,
            exact
        }),
        (0usize..40).prop_map(|release| Op::ReadGrant { release }),
    ]
}

const CAP: usize = 32;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ring_matches_vecdeque_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut ring = Ring::<CAP>::new();
        let (mut tx, mut rx) = ring.split();
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut stamp = 0u8;
        for op in ops {
            match op {
                Op::Write(data) => {
                    let n = tx.write(&data).unwrap();
                    prop_assert_eq!(n, data.len().min(CAP - model.len()));
                    model.extend(&data[..n]);
                }
                Op::Read(len) => {
                    let mut out = vec![0u8; len];
                    let n = rx.read(&mut out).unwrap();
                    prop_assert_eq!(n, len.min(model.len()));
                    let expect: Vec<u8> = model.drain(..n).collect();
                    prop_assert_eq!(&out[..n], &expect[..]);
                }
                Op::Grant { len, commit, exact } => {
                    let free = CAP - model.len();
                    let grant = if exact { tx.grant_exact(len) } else { tx.grant_max(len) };
                    match grant {
                        Ok(mut g) => {
                            prop_assert!(g.len() <= free);
                            if exact { prop_assert_eq!(g.len(), len); }
                            else { prop_assert!(!g.is_empty() && g.len() <= len); }
                            for b in g.iter_mut() { *b = stamp; stamp = stamp.wrapping_add(1); }
                            let used = commit.min(g.len());
                            model.extend(&g[..used]);
                            g.commit(commit);
                        }
                        Err(GrantError::TooLarge { .. }) => prop_assert!(len > CAP),
                        Err(GrantError::InsufficientSize { available, .. }) => {
                            prop_assert!(available <= free);
                            prop_assert!(available < len.max(1) || len == 0);
                        }
                        Err(e) => prop_assert!(false, "unexpected error {e:?}"),
                    }
                }
                Op::ReadGrant { release } => match rx.read_grant() {
                    Ok(g) => {
                        prop_assert!(!g.is_empty() && g.len() <= model.len());
                        let front: Vec<u8> = model.iter().take(g.len()).copied().collect();
                        prop_assert_eq!(&g[..], &front[..]);
                        let n = release.min(g.len());
                        g.release(release);
                        model.drain(..n);
                    }
                    Err(GrantError::InsufficientSize { .. }) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected error {e:?}"),
                },
            }
            prop_assert_eq!(rx.available().unwrap(), model.len());
            prop_assert_eq!(tx.free().unwrap(), CAP - model.len());
        }
    }
}
