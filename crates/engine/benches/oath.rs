//! How long one OATH verification takes: the work a sign-in with a code adds to a request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use twofold_engine::oath::{
    Algorithm, OathError, OathKind, OathParams, OathState, Window, hotp, totp_step, verify,
};

const SECRET: &[u8] = b"12345678901234567890";
const NOW: i64 = 1_700_000_000;

fn totp_verification(c: &mut Criterion) {
    let params = OathParams::default();
    let state = OathState::default();
    let window = Window::default();
    let step = totp_step(NOW, 30);
    let valid = hotp(SECRET, step, Algorithm::Sha1, 6).expect("code");
    let wrong = hotp(SECRET, step + 100, Algorithm::Sha1, 6).expect("code");
    assert!(verify(SECRET, &params, &state, &valid, NOW, window).is_ok());
    assert_eq!(
        verify(SECRET, &params, &state, &wrong, NOW, window),
        Err(OathError::WrongCode)
    );

    let mut group = c.benchmark_group("oath");
    group.bench_function("totp_sha1_6_window_1_valid", |b| {
        b.iter(|| {
            verify(
                black_box(SECRET),
                &params,
                &state,
                black_box(&valid),
                NOW,
                window,
            )
            .unwrap()
        })
    });
    group.bench_function("totp_sha1_6_window_1_wrong", |b| {
        b.iter(|| {
            verify(
                black_box(SECRET),
                &params,
                &state,
                black_box(&wrong),
                NOW,
                window,
            )
            .unwrap_err()
        })
    });
    group.finish();
}

fn hotp_verification(c: &mut Criterion) {
    let params = OathParams {
        kind: OathKind::Hotp,
        ..OathParams::default()
    };
    let state = OathState {
        counter: 1_000,
        ..OathState::default()
    };
    let window = Window::default();
    // The last counter within the look-ahead of 10; every candidate is computed anyway.
    let code = hotp(SECRET, 1_010, Algorithm::Sha1, 6).expect("code");
    assert_eq!(
        verify(SECRET, &params, &state, &code, NOW, window)
            .expect("accepted")
            .counter,
        1_011
    );

    let mut group = c.benchmark_group("oath");
    group.bench_function("hotp_sha1_6_look_ahead_10_valid", |b| {
        b.iter(|| {
            verify(
                black_box(SECRET),
                &params,
                &state,
                black_box(&code),
                NOW,
                window,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, totp_verification, hotp_verification);
criterion_main!(benches);
