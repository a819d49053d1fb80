//! A small mutation fuzzer on proptest (stable Rust), shared by the fuzz tests of the engine
//! (`crates/engine/tests/fuzz.rs`) and of the server (`crates/server/tests/fuzz.rs`, which
//! includes this file by path).
//!
//! Each case is either a valid input (a seed) changed by one to eight mutations (bits flipped,
//! bytes set, bytes or format tokens inserted, ranges deleted or duplicated, pieces of another
//! seed spliced in) or random bytes. The property is that the target neither panics nor
//! hangs, and whatever the target's own check says.
//!
//! - In the normal test suite each target runs a fixed number of cases from a fixed seed, so
//!   a run is repeatable and takes a few seconds (`FUZZ_CASES` changes the count).
//! - `FUZZ_SECONDS=N` (what `scripts/fuzz` sets) runs each target for about N seconds, in
//!   batches from fresh random seeds, and prints how many cases ran.
//!
//! A panic fails the test with the smallest input proptest shrank it to. A case that runs for
//! longer than `FUZZ_HANG_SECONDS` (120 by default) is a hang: the watchdog prints the input
//! and aborts the process (a hung thread cannot be stopped any other way).

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one target is: its name, valid inputs to mutate, and format tokens worth inserting.
pub struct Target<'a> {
    pub name: &'a str,
    pub seeds: Vec<Vec<u8>>,
    pub tokens: Vec<Vec<u8>>,
    /// Cases in the normal test suite (`FUZZ_CASES` overrides).
    pub cases: u32,
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    InsertBytes(Index, Vec<u8>),
    InsertToken(Index, Index),
    Delete(Index, usize),
    Duplicate(Index, usize, Index),
    Splice(Index, Index, usize, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (
            any::<Index>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::InsertBytes(at, bytes)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Mutation::InsertToken(at, token)),
        (any::<Index>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<Index>(), 1usize..256, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Duplicate(from, len, to)),
        (any::<Index>(), any::<Index>(), 1usize..256, any::<Index>())
            .prop_map(|(seed, from, len, to)| Mutation::Splice(seed, from, len, to)),
    ]
}

fn position(at: &Index, len: usize) -> usize {
    // One past the end is a position too (insert at the end).
    at.index(len + 1)
}

fn apply(seeds: &[Vec<u8>], tokens: &[Vec<u8>], seed: &Index, mutations: &[Mutation]) -> Vec<u8> {
    let mut data = seeds[seed.index(seeds.len())].clone();
    for m in mutations {
        match m {
            Mutation::Flip(at, bit) if !data.is_empty() => {
                let i = at.index(data.len());
                data[i] ^= 1 << bit;
            }
            Mutation::Set(at, byte) if !data.is_empty() => {
                let i = at.index(data.len());
                data[i] = *byte;
            }
            Mutation::InsertBytes(at, bytes) => {
                let i = position(at, data.len());
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::InsertToken(at, token) if !tokens.is_empty() => {
                let i = position(at, data.len());
                let token = &tokens[token.index(tokens.len())];
                data.splice(i..i, token.iter().copied());
            }
            Mutation::Delete(at, len) if !data.is_empty() => {
                let i = at.index(data.len());
                let end = (i + len).min(data.len());
                data.drain(i..end);
            }
            Mutation::Duplicate(from, len, to) if !data.is_empty() => {
                let i = from.index(data.len());
                let piece = data[i..(i + len).min(data.len())].to_vec();
                let j = position(to, data.len());
                data.splice(j..j, piece);
            }
            Mutation::Splice(other, from, len, to) => {
                let other = &seeds[other.index(seeds.len())];
                if !other.is_empty() {
                    let i = from.index(other.len());
                    let piece = &other[i..(i + len).min(other.len())];
                    let j = position(to, data.len());
                    data.splice(j..j, piece.iter().copied());
                }
            }
            _ => {}
        }
    }
    data
}

/// An input: a mutated seed, or (one case in five) random bytes.
fn input(seeds: Vec<Vec<u8>>, tokens: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (any::<Index>(), proptest::collection::vec(mutation(), 1..8))
        .prop_map(move |(seed, mutations)| apply(&seeds, &tokens, &seed, &mutations));
    prop_oneof![
        4 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// The bytes as a Rust byte-string literal, to paste into a regression test.
pub fn literal(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The case being run, for the watchdog.
type Current = Arc<Mutex<Option<(Instant, Vec<u8>)>>>;

fn watchdog(name: String, current: Current, done: Arc<std::sync::atomic::AtomicBool>) {
    let limit = Duration::from_secs(env_number("FUZZ_HANG_SECONDS").unwrap_or(120));
    std::thread::spawn(move || {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let hung = current.lock().ok().and_then(|c| {
                c.as_ref()
                    .filter(|(started, _)| started.elapsed() > limit)
                    .map(|(_, input)| input.clone())
            });
            if let Some(input) = hung {
                eprintln!(
                    "fuzz {name}: a case ran for more than {}s (a hang); its input:\n{}",
                    limit.as_secs(),
                    literal(&input)
                );
                std::process::abort();
            }
        }
    });
}

/// Runs the target's cases through `check`, which returns `Err` for a wrong result and may
/// panic. Returns the number of cases run; fails the test on the first failure, with the
/// shrunk input.
pub fn fuzz(target: Target<'_>, check: impl Fn(&[u8]) -> Result<(), String>) -> u64 {
    let strategy = input(target.seeds.clone(), target.tokens.clone());
    let current: Current = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    watchdog(target.name.to_owned(), current.clone(), done.clone());
    let seconds = env_number("FUZZ_SECONDS");
    let cases =
        env_number("FUZZ_CASES").map_or(target.cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let started = Instant::now();
    let mut total = 0u64;
    let mut batch = 0u64;
    loop {
        let (rng, batch_cases) = match seconds {
            // Repeatable: the same cases every run.
            None => (TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]), cases),
            Some(_) => (
                TestRng::from_seed(RngAlgorithm::ChaCha, &rand::random::<[u8; 32]>()),
                1000,
            ),
        };
        let config = Config {
            cases: batch_cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        let ran = std::sync::atomic::AtomicU64::new(0);
        let result = runner.run(&strategy, |bytes| {
            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut c) = current.lock() {
                *c = Some((Instant::now(), bytes.clone()));
            }
            let outcome = check(&bytes);
            if let Ok(mut c) = current.lock() {
                *c = None;
            }
            outcome.map_err(TestCaseError::fail)
        });
        // Shrinking runs the check again: count the cases generated, not the runs.
        total += u64::from(batch_cases).min(ran.into_inner());
        batch += 1;
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!(
                    "fuzz {}: {reason}\nthe smallest input found (keep it as a regression test):\n{}",
                    target.name,
                    literal(&input)
                );
            }
            Err(TestError::Abort(reason)) => {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("fuzz {}: aborted: {reason}", target.name);
            }
        }
        let over = match seconds {
            None => true,
            Some(s) => started.elapsed() >= Duration::from_secs(s),
        };
        if over {
            break;
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "fuzz {}: {total} cases in {batch} batch(es), {:.1}s, no panic, no hang",
        target.name,
        started.elapsed().as_secs_f64()
    );
    total
}
