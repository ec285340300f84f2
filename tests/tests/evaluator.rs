//! One evaluator per store: while `serve` evaluates an ISMS, `vigil-collector evaluate` on the
//! same store is refused with who holds it; once the service is gone (stopped, or killed with
//! SIGKILL: the lock dies with the process), the command line evaluates.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::process::{Command, Output};

use vigil_tests::{Collector, bin, repo};

fn evaluate(collector: &Collector) -> Output {
    Command::new(bin("vigil-collector"))
        .arg("--config")
        .arg(collector.config_path())
        .args(["evaluate"])
        .output()
        .unwrap()
}

#[test]
fn the_command_line_does_not_evaluate_beside_the_service() {
    let mut collector = Collector::start().unwrap();
    collector.stop().unwrap();
    let pack = repo().join("packaging/isms");
    let mut config = std::fs::read_to_string(collector.config_path()).unwrap();
    config.push_str(&format!("\n[isms]\ndir = \"{}\"\n", pack.display()));
    std::fs::write(collector.config_path(), config).unwrap();
    collector.spawn().unwrap();

    let refused = evaluate(&collector);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("another process evaluates this store (vigil-collector serve, pid"),
        "{stderr}"
    );

    // Killed without a chance to clean up: nothing stale blocks the next evaluator.
    collector.kill();
    let done = evaluate(&collector);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.starts_with("evaluated at"), "{stdout}");

    // And the service starts again after the command line is done.
    collector.spawn().unwrap();
    collector.stop().unwrap();
}
