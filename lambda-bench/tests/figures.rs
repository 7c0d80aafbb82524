//! The figures logic against the baseline function cargo built for this test: the Runtime API
//! hands it events, its answers are recorded and a cold start is measured; then the whole tool,
//! local stack included, with the baseline standing in as a function binary too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lambda_bench::events::EventTemplate;
use lambda_bench::figures::{self, Binary, Options, Subject};
use serde_json::{Value, json};

fn baseline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lambda-baseline"))
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn the_baseline_answers_its_event_and_a_cold_start_is_measured() {
    let subject = Subject {
        name: "lambda-baseline".into(),
        path: baseline(),
        env: figures::function_env(&[], None, "lambda-baseline"),
        template: EventTemplate::literal(json!({"hello": "bench"}), None),
    };

    let run = figures::measure_run(&subject, 0, 3, Duration::from_secs(30))
        .await
        .unwrap();

    assert_eq!(
        serde_json::from_str::<Value>(&run.first_answer).unwrap(),
        json!({"hello": "bench"})
    );
    assert!(run.cold_start > Duration::ZERO);
    let init = run.init.expect("the function polled for its event");
    assert!(init <= run.cold_start, "{init:?} > {:?}", run.cold_start);
    assert_eq!((run.first_status, run.later_failures), (None, 0));
    assert!(run.peak_rss_kb.unwrap() > 0);
}

#[tokio::test]
async fn a_function_that_cannot_start_is_reported_instead_of_timed() {
    let subject = Subject {
        name: "no-runtime-api".into(),
        path: baseline(),
        // Without AWS_LAMBDA_FUNCTION_NAME and the rest, lambda_runtime panics at start.
        env: vec![],
        template: EventTemplate::literal(json!({}), None),
    };

    let failure = figures::measure_run(&subject, 0, 0, Duration::from_secs(30))
        .await
        .unwrap_err();

    assert!(failure.contains("without answering"), "{failure}");
}

#[tokio::test]
async fn the_whole_tool_reports_the_baseline_and_each_binary() {
    let root = repository_root();
    let options = Options {
        binaries: vec![Binary {
            name: "echo".into(),
            path: baseline(),
        }],
        baseline: baseline(),
        runs: 2,
        warmup: 0,
        invocations: 2,
        events_dir: root.join("events"),
        env_file: root.join("events/cargo-lambda.env"),
        timeout: Duration::from_secs(30),
    };

    let report = figures::run(&options, |_| {}).await.unwrap();

    assert_eq!(report["kind"], "lambda");
    assert_eq!(report["runs"], 2);
    assert!(report["baseline"]["cold_start_ms_median"].as_f64().unwrap() > 0.0);
    let echo = &report["binaries"][0];
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["failure"], Value::Null);
    assert!(echo["cold_start_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(echo["first_answer"], "{}");
    assert!(echo["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["goals"]["size_bytes"], 8_388_608);
}
