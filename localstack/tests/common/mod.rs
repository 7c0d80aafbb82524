//! The real `local-stack` binary as a child process, for the integration tests that need one, and
//! what the stack-level tests share: tokens, the connections table's size, a WebSocket ping (each
//! test file is its own crate and uses what it needs).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOCAL_STACK: &str = env!("CARGO_BIN_EXE_local-stack");

/// How long the binary may take to print its banner (a cold debug build provisions everything).
const STARTUP: Duration = Duration::from_secs(60);

/// A running `local-stack` with everything it printed (stdout and stderr) collected; dropping it
/// kills the process.
pub struct LocalStackProcess {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl LocalStackProcess {
    /// Starts the binary on ephemeral ports with the process environment minus anything that
    /// would change what it starts, plus `env`; waits for its banner.
    pub fn start<V: AsRef<std::ffi::OsStr>>(env: &[(&str, V)]) -> LocalStackProcess {
        let mut command = Command::new(LOCAL_STACK);
        for name in [
            "AWS_ENDPOINT_URL",
            "LOCAL_DATA_DIR",
            "JWT_PUBLIC_KEY",
            "JWT_SECRET",
            "LOG_FORMAT",
            "RUST_LOG",
            "CORS_ALLOW_ORIGINS",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .envs([("HTTP_PORT", "0"), ("WS_PORT", "0"), ("AWS_PORT", "0")])
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the local-stack binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), &output);
        collect(child.stderr.take().unwrap(), &output);
        let process = LocalStackProcess { child, output };
        let started = Instant::now();
        while process.banner_value("  export ADMIN_TOKEN=").is_none() {
            assert!(
                started.elapsed() < STARTUP,
                "no banner within {STARTUP:?}:\n{}",
                process.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The rest of the banner line that starts with `prefix`, up to the first space.
    pub fn banner_value(&self, prefix: &str) -> Option<String> {
        self.output().lines().find_map(|line| {
            line.strip_prefix(prefix)
                .map(|rest| rest.trim_start().split(' ').next().unwrap().to_owned())
        })
    }

    pub fn http_url(&self) -> String {
        self.banner_value("  HTTP API").unwrap()
    }

    /// The WebSocket URL as the banner prints it, `ws://127.0.0.1:<port>/?token=<JWT>`, with `token`.
    pub fn ws_url(&self, token: &str) -> String {
        self.banner_value("  WebSocket API")
            .unwrap()
            .replace("<JWT>", token)
    }

    pub fn user_token(&self) -> String {
        self.banner_value("  export TOKEN=").unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.banner_value("  export ADMIN_TOKEN=").unwrap()
    }

    /// Sends SIGTERM, as a process manager, a container runtime or `kill` does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no handler runs, nothing is flushed.
    pub fn kill_9(mut self) {
        self.child.kill().expect("the process is killed");
        self.child.wait().expect("the killed process is reaped");
    }

    /// Waits for the process to exit; its status and how long it took.
    pub fn wait_for_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let asked = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers drain what the process printed last.
                std::thread::sleep(Duration::from_millis(200));
                return (status, asked.elapsed());
            }
            assert!(
                asked.elapsed() < limit,
                "still running {limit:?} after SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalStackProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends everything `stream` yields to `output`, line by line, on a thread of its own.
pub fn collect(stream: impl Read + Send + 'static, output: &Arc<Mutex<String>>) {
    let output = Arc::clone(output);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut output = output.lock().unwrap();
            output.push_str(&line);
            output.push('\n');
        }
    });
}

/// An HS256 token for `sub` (and `role`) under the development secret, valid for an hour.
pub fn token(sub: &str, role: Option<&str>) -> String {
    shared::api::auth::mint_hs256(
        shared::config::DEVELOPMENT_JWT_SECRET,
        sub,
        role,
        chrono::Utc::now() + chrono::Duration::hours(1),
    )
}

/// How many items `table` holds (a scan: for the small tables of a test).
pub async fn item_count(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    dynamodb
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .len()
}

/// A WebSocket client as `connect_async` opens it.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends the keep-alive `{"action":"ping"}` on `socket`; the next frame, within 5 s.
pub async fn ping(socket: &mut Socket) -> tokio_tungstenite::tungstenite::Message {
    use futures::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"action":"ping"}"#.into(),
        ))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}
