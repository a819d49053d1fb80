//! How long one argon2id verification takes with the parameters Twofold uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use twofold_engine::PasswordHasher;

fn argon2_verification(c: &mut Criterion) {
    let hasher = PasswordHasher::new().expect("hasher");
    let stored = hasher
        .hash_new("correct horse battery staple")
        .expect("hash");
    let mut group = c.benchmark_group("password");
    group.sample_size(30);
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| {
            hasher
                .verify("correct horse battery staple", Some(&stored))
                .unwrap()
        })
    });
    // PINs and security answers use the same hasher: the cost is argon2's, whatever the input.
    let pin = hasher.hash_secret("2580").expect("hash");
    group.bench_function("argon2id_verify_pin", |b| {
        b.iter(|| hasher.verify("2580", Some(&pin)).unwrap())
    });
    let answer = hasher
        .hash_secret(&twofold_engine::answers::normalize_answer("Rex the Dog"))
        .expect("hash");
    group.bench_function("argon2id_verify_security_answer", |b| {
        b.iter(|| {
            hasher
                .verify(
                    &twofold_engine::answers::normalize_answer("  rex THE dog "),
                    Some(&answer),
                )
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, argon2_verification);
criterion_main!(benches);
