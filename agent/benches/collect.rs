//! How long `vigil-agent collect` takes on this machine: the whole round and each check, with
//! a warm package-list cache (the service's steady state) and without any cache.
//! Run: `cargo bench -p vigil-agent --bench collect`.

#![allow(clippy::expect_used)] // a benchmark may stop at its first broken precondition

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_agent::checks::{self, CheckContext};
use vigil_agent::collect::Collection;
use vigil_agent::hostroot::HostRoot;
use vigil_agent::settings::ChecksConfig;

fn bench_collect(c: &mut Criterion) {
    let root = HostRoot::new("/").expect("root opens");
    let settings = ChecksConfig::default();
    let cache = tempfile::tempdir().expect("temp dir");
    let registry = checks::registry(&settings).expect("no user-defined checks");
    let warm = Collection {
        root: &root,
        settings: &settings,
        now: Utc::now(),
        cache_dir: Some(cache.path().to_path_buf()),
        checks: &registry,
    };
    // Fill the cache once so the measured runs are the steady state.
    black_box(warm.run(&[]));
    c.bench_function("collect/all-checks/warm-cache", |b| {
        b.iter(|| black_box(warm.run(&[])))
    });
    let cold = Collection {
        root: &root,
        settings: &settings,
        now: Utc::now(),
        cache_dir: None,
        checks: &registry,
    };
    c.bench_function("collect/all-checks/no-cache", |b| {
        b.iter(|| black_box(cold.run(&[])))
    });
    for check in checks::all() {
        let ctx = CheckContext {
            root: &root,
            now: Utc::now(),
            settings: &settings,
            cache_dir: Some(cache.path().to_path_buf()),
        };
        c.bench_function(&format!("check/{}/warm-cache", check.name()), |b| {
            b.iter(|| black_box(checks::run_check(check.as_ref(), &ctx)))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_collect
}
criterion_main!(benches);
