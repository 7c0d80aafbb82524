//! The soak in small, as `make test` runs it: 20 seconds of shoppers under the fault schedule
//! with a fixed seed, against a local stack in this process; every checkpoint passes.

use std::time::{Duration, Instant};

use load_tests::soak::{self, SoakOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_soak_under_injected_faults_keeps_every_invariant() {
    let started = Instant::now();
    let options = SoakOptions {
        shoppers: 8,
        checkpoint_every: Duration::from_secs(7),
        ..SoakOptions::new(Duration::from_secs(20), 42)
    };

    let report = soak::run(&options).await.expect("the soak sets up");

    print!("{}", report.summary());
    assert!(report.passed(), "{}", report.summary());
    assert!(report.faults_injected() > 0, "{}", report.summary());
    assert!(report.checkpoints >= 2, "{}", report.summary());
    assert!(report.checks_passed > 0, "{}", report.summary());
    // How long it took is printed, not asserted: a shared CI machine may be slow, and a slow
    // checkpoint (it waits up to 90 s for the stack to be quiet) is not a failed one.
    println!("the short soak took {:?}", started.elapsed());
}
