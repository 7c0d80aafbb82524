//! `load-test` over TLS, as against a deployed API: the local stack started in this process
//! behind a TLS front (a certificate authority and a server certificate for 127.0.0.1 made at
//! test time, and a proxy per port that ends TLS and forwards the bytes to the stack's HTTP or
//! WebSocket port), a flash sale over `https://` and `wss://` with its invariants checked, and
//! the run refused, naming the certificate problem, when it is not given the CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use load_tests::scenarios::in_process_stack_options;
use load_tests::{Api, Scenario, Sizes, Target, Trust, Verdict};
use localstack::{LocalSettings, Stack};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use shared::config::DEVELOPMENT_JWT_SECRET;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const LOAD_TEST: &str = env!("CARGO_BIN_EXE_load-test");

/// What a client refusing the front's certificate reports, in the HTTP client's error chain and
/// the WebSocket's alike.
const UNKNOWN_ISSUER: &str = "invalid peer certificate: UnknownIssuer";

/// A certificate authority made for one test, and the server configuration of a certificate for
/// 127.0.0.1 that it signed.
struct Certificates {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn certificates() -> Certificates {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "load-test TLS front CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    Certificates {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// A proxy ending TLS on its own port and forwarding the plain bytes to one of the stack's ports,
/// as API Gateway's TLS endpoint sits before the functions.
struct TlsFront {
    addr: SocketAddr,
    /// Handshakes completed: every client that came through TLS.
    handshakes: Arc<AtomicU64>,
    /// Handshakes that failed: a client that refused the certificate breaks off with an alert.
    failed_handshakes: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// A front on an ephemeral port for `backend_url` (`http://127.0.0.1:port` or `ws://...`).
    async fn start(backend_url: &str, server: Arc<rustls::ServerConfig>) -> TlsFront {
        let backend: SocketAddr = backend_url
            .split_once("://")
            .expect("a URL with a scheme")
            .1
            .parse()
            .expect("the stack listens on an IP address and port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server);
        let handshakes = Arc::new(AtomicU64::new(0));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let (done, failed) = (Arc::clone(&handshakes), Arc::clone(&failed_handshakes));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (done, failed) = (Arc::clone(&done), Arc::clone(&failed));
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut stack) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut stack).await;
                });
            }
        });
        TlsFront {
            addr,
            handshakes,
            failed_handshakes,
            task,
        }
    }

    fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::Relaxed)
    }
}

/// The local stack with a TLS front before its HTTP port and one before its WebSocket port, and
/// the CA that signed their certificate in a PEM file.
struct FrontedStack {
    stack: Stack,
    https: TlsFront,
    wss: TlsFront,
    ca_file: PathBuf,
}

impl FrontedStack {
    async fn start() -> FrontedStack {
        let mut options = in_process_stack_options(false, LocalSettings::ephemeral());
        // Every payment succeeds, so that the flash sale ends on stock 0.
        options.config.payments.success_rate = 1.0;
        let stack = Stack::start(options).await.expect("the local stack starts");
        let certificates = certificates();
        let https = TlsFront::start(&stack.http_url(), Arc::clone(&certificates.server)).await;
        let wss = TlsFront::start(&stack.ws_url(), certificates.server).await;
        let ca_file = std::env::temp_dir().join(format!(
            "load-test-ca-{}-{}.pem",
            std::process::id(),
            https.addr.port()
        ));
        std::fs::write(&ca_file, certificates.ca_pem).unwrap();
        FrontedStack {
            stack,
            https,
            wss,
            ca_file,
        }
    }

    fn https_url(&self) -> String {
        format!("https://{}", self.https.addr)
    }

    fn wss_url(&self) -> String {
        format!("wss://{}", self.wss.addr)
    }

    async fn shutdown(self) {
        self.https.task.abort();
        self.wss.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
        self.stack.shutdown().await;
    }
}

/// `load-test run --quick` of one scenario against the fronts, with `--ca-cert` when given.
async fn load_test_run(
    fronted: &FrontedStack,
    scenario: &str,
    ca_cert: Option<&Path>,
    json_out: &Path,
) -> Output {
    let mut command = std::process::Command::new(LOAD_TEST);
    command
        .args(["run", "--quick", "--scenarios", scenario, "--label", "tls"])
        .args(["--base-url", &fronted.https_url()])
        .args(["--ws-url", &fronted.wss_url()])
        .arg("--json-out")
        .arg(json_out)
        .env_remove("LOAD_TEST_CA_CERT")
        .env_remove("LOAD_TEST_JWT_SECRET");
    if let Some(path) = ca_cert {
        command.arg("--ca-cert").arg(path);
    }
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("load-test starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_over_https_and_wss_sells_out_exactly_trusting_the_given_ca() {
    let fronted = FrontedStack::start().await;
    let trust = Trust::with_ca_file(Some(&fronted.ca_file)).unwrap();
    let target = Target {
        api: Api::with_trust(
            &fronted.https_url(),
            DEVELOPMENT_JWT_SECRET,
            &load_tests::run::run_id(),
            trust,
        )
        .unwrap(),
        ws_url: fronted.wss_url(),
        // As against a deployed stack: no emulator endpoint, no queue to read.
        aws_endpoint: None,
        order_queue_url: None,
        stock_locks: false,
        label: "tls".to_owned(),
        jwt_secret: DEVELOPMENT_JWT_SECRET.to_owned(),
    };
    let sizes = Sizes {
        flash_stock: 200,
        buyers: 8,
        ..Sizes::quick()
    };

    target.check_reachable().await.unwrap();
    let sale = Scenario::FlashSale.run(&target, &sizes).await;
    print!("{}", sale.table());

    assert_eq!(sale.verdict, Verdict::Pass, "{:?}", sale.failures);
    assert_eq!(sale.number("created_201"), Some(200.0));
    assert_eq!(sale.number("final_stock"), Some(0.0));
    assert_eq!(sale.number("units_in_live_orders"), Some(200.0));
    assert_eq!(sale.number("terminal_events_missing"), Some(0.0));
    assert_eq!(
        sale.number("orders_paid"),
        Some(200.0),
        "{:?}",
        sale.figures
    );
    // Every buyer's WebSocket and the check's came through the WebSocket front's TLS, and the
    // orders through the HTTP front's.
    assert!(
        fronted.wss.handshakes() > sizes.buyers as u64,
        "{} WebSocket handshakes for {} buyers",
        fronted.wss.handshakes(),
        sizes.buyers
    );
    assert!(fronted.https.handshakes() >= 1);
    assert_eq!(fronted.https.failed_handshakes(), 0);
    assert_eq!(fronted.wss.failed_handshakes(), 0);
    fronted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_ca_the_run_stops_naming_the_certificate_problem() {
    let fronted = FrontedStack::start().await;
    let json_out = fronted.ca_file.with_extension("jsonl");

    // The clients trusting the system's roots only: HTTP and WebSocket refuse the front.
    let api = Api::new(&fronted.https_url(), DEVELOPMENT_JWT_SECRET, "no-ca").unwrap();
    let health = api.get("/health", None).await;
    let token = api.user("no-ca").token;
    let socket = api.open_websocket(&fronted.wss_url(), &token).await;
    // The binary: refused before any scenario, with the cause and what it trusted.
    let refused = load_test_run(&fronted, "oversell", None, &json_out).await;
    // And with --ca-cert the same run goes through.
    let trusted = load_test_run(&fronted, "oversell", Some(&fronted.ca_file), &json_out).await;
    let lines = std::fs::read_to_string(&json_out).unwrap_or_default();
    let _ = std::fs::remove_file(&json_out);

    assert_eq!(health.status, 0, "{}", health.summary());
    assert!(
        health.summary().contains(UNKNOWN_ISSUER),
        "{}",
        health.summary()
    );
    let Err(socket_error) = socket else {
        panic!("the WebSocket opened without the CA");
    };
    let socket_error = format!("{socket_error:#}");
    assert!(socket_error.contains(UNKNOWN_ISSUER), "{socket_error}");
    assert!(fronted.https.failed_handshakes() >= 1);
    assert!(fronted.wss.failed_handshakes() >= 1);

    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("without the CA: {stderr}");
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(UNKNOWN_ISSUER), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");

    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert_eq!(trusted.status.code(), Some(0), "{stderr}");
    let results: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), 1, "only the trusted run got to a scenario");
    assert_eq!(results[0]["scenario"], "oversell");
    assert_eq!(results[0]["verdict"], "PASS", "{}", results[0]);
    assert_eq!(results[0]["final_stock"], 0);
    fronted.shutdown().await;
}
