//! `ws-listen`: a minimal WebSocket client for the local stack (or a deployed WebSocket API).
//! Prints every order event (each text frame) on its own line, sends `{"action":"ping"}` every 30 s
//! so an idle connection stays open, and exits when the server closes the connection. The
//! `{"event":"pong"}` answers to its own pings are not printed: they are not events of the API.
//! Pushes can arrive out of order, so an order event whose `version` is lower than one already
//! printed for that order is not printed as current: a note on stderr says it was skipped.
//!
//! ```text
//! cargo run -q -p order-localstack --bin ws-listen -- 'ws://127.0.0.1:3001/?token=<JWT>'
//! cargo run -q -p order-localstack --bin ws-listen -- --token <JWT> [--url ws://127.0.0.1:3001]
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Error, Message};

/// Where `make run` serves the WebSocket API by default.
const DEFAULT_URL: &str = "ws://127.0.0.1:3001";

/// API Gateway closes a connection after 10 idle minutes; a ping well inside that keeps it open.
const PING_EVERY: Duration = Duration::from_secs(30);

const USAGE: &str =
    "usage: ws-listen <ws-url-with-?token=> | ws-listen --token <JWT> [--url <ws-url>]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match listen().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ws-listen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Connects, then prints frames until the server closes the connection or Ctrl-C.
async fn listen() -> anyhow::Result<()> {
    let url = url_from_args(std::env::args().skip(1))?;
    let (socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok(connected) => connected,
        Err(Error::Http(response)) => bail!(
            "the handshake was refused: HTTP {} (a missing, expired or badly signed token is 401)",
            response.status()
        ),
        Err(error) => {
            return Err(error).with_context(|| format!("connecting to {}", redacted(&url)));
        }
    };
    eprintln!(
        "connected to {}; waiting for events (Ctrl-C quits)",
        redacted(&url)
    );

    let (mut sink, mut stream) = socket.split();
    let mut versions = Versions::default();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) if is_pong(&text) => {}
                Some(Ok(Message::Text(text))) => match versions.stale(&text) {
                    Some(stale) => eprintln!("ws-listen: skipped {stale}"),
                    None => println!("{text}"),
                },
                Some(Ok(Message::Binary(bytes))) => println!("{}", String::from_utf8_lossy(&bytes)),
                Some(Ok(Message::Close(frame))) => {
                    match frame {
                        Some(frame) => eprintln!("closed by the server: {} {}", u16::from(frame.code), frame.reason),
                        None => eprintln!("closed by the server"),
                    }
                    // Reading on sends the close reply and ends the stream.
                    while let Some(Ok(_)) = stream.next().await {}
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading from the WebSocket"),
                None => {
                    eprintln!("the connection ended");
                    return Ok(());
                }
            },
            _ = ping.tick() => {
                sink.send(Message::Text(r#"{"action":"ping"}"#.into()))
                    .await
                    .context("sending a ping")?;
            }
            _ = tokio::signal::ctrl_c() => {
                let _ = sink.send(Message::Close(None)).await;
                return Ok(());
            }
        }
    }
}

/// The URL to connect to: the positional URL, or `--url` (default [`DEFAULT_URL`]) with `--token`.
fn url_from_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<String> {
    let (mut url, mut token) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--token" => token = Some(args.next().context(USAGE)?),
            "--url" => url = Some(args.next().context(USAGE)?),
            other if other.starts_with("ws://") || other.starts_with("wss://") => {
                url = Some(other.to_owned())
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let url = url.unwrap_or_else(|| DEFAULT_URL.to_owned());
    Ok(match token {
        Some(token) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            let path = if url
                .trim_start_matches("ws://")
                .trim_start_matches("wss://")
                .contains('/')
            {
                ""
            } else {
                "/"
            };
            format!("{url}{path}{separator}token={token}")
        }
        None if url.contains("token=") => url,
        None => bail!("no token: pass a URL with ?token=<JWT>, or --token <JWT>\n{USAGE}"),
    })
}

/// Whether a frame is the `$default` route's answer to a ping (`{"event":"pong"}`).
fn is_pong(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|frame| frame.get("event").and_then(|e| e.as_str()) == Some("pong"))
}

/// The highest `version` printed per order.
#[derive(Debug, Default)]
struct Versions {
    highest: HashMap<String, u64>,
}

/// An order event older than one already printed for its order.
#[derive(Debug, PartialEq, Eq)]
struct Stale {
    event: String,
    order_id: String,
    version: u64,
    printed: u64,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a stale {} for order {} (version {}; version {} was printed)",
            self.event, self.order_id, self.version, self.printed
        )
    }
}

impl Versions {
    /// `Some` when `text` is an order event with a lower `version` than one printed for the same
    /// order; otherwise records its version (a frame without `order_id` and `version` is never
    /// stale). An equal version is not older, so it is printed.
    fn stale(&mut self, text: &str) -> Option<Stale> {
        let frame: serde_json::Value = serde_json::from_str(text).ok()?;
        let order_id = frame.get("order_id")?.as_str()?;
        let version = frame.get("version")?.as_u64()?;
        let printed = self.highest.entry(order_id.to_owned()).or_insert(version);
        if version < *printed {
            return Some(Stale {
                event: frame
                    .get("event")
                    .and_then(|e| e.as_str())
                    .unwrap_or("event")
                    .to_owned(),
                order_id: order_id.to_owned(),
                version,
                printed: *printed,
            });
        }
        *printed = version;
        None
    }
}

/// The URL without its token, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("token=") {
        Some((before, _)) => format!("{before}token=…"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(args: &[&str]) -> anyhow::Result<String> {
        url_from_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn only_pongs_are_hidden() {
        assert!(is_pong(r#"{"event":"pong"}"#));
        assert!(!is_pong(
            r#"{"event":"OrderPaid","order_id":"o-1","status":"PAID"}"#
        ));
        assert!(!is_pong(r#"{"event":"error","message":"unknown action"}"#));
        assert!(!is_pong("pong"));
    }

    #[test]
    fn an_event_older_than_one_printed_for_its_order_is_skipped() {
        let event = |name: &str, order: &str, version: u64| {
            format!(r#"{{"event":"{name}","order_id":"{order}","version":{version}}}"#)
        };
        let mut versions = Versions::default();

        let outcomes: Vec<Option<Stale>> = [
            event("OrderProcessing", "o-1", 2),
            event("OrderPaid", "o-1", 3),
            event("OrderProcessing", "o-2", 2),
            event("OrderProcessing", "o-1", 2),
            event("OrderPaid", "o-1", 3),
            r#"{"event":"error","message":"unknown action"}"#.to_owned(),
        ]
        .iter()
        .map(|text| versions.stale(text))
        .collect();

        assert_eq!(
            outcomes,
            [
                None,
                None,
                None,
                Some(Stale {
                    event: "OrderProcessing".into(),
                    order_id: "o-1".into(),
                    version: 2,
                    printed: 3,
                }),
                None,
                None,
            ]
        );
    }

    #[test]
    fn a_token_goes_into_the_default_or_given_url() {
        assert_eq!(
            url(&["--token", "abc"]).unwrap(),
            "ws://127.0.0.1:3001/?token=abc"
        );
        assert_eq!(
            url(&["--token", "abc", "--url", "ws://h:1/prod"]).unwrap(),
            "ws://h:1/prod?token=abc"
        );
        assert_eq!(
            url(&["ws://h:1/?token=xyz"]).unwrap(),
            "ws://h:1/?token=xyz"
        );
        assert!(url(&["ws://h:1/"]).is_err());
        assert!(url(&["--bogus"]).is_err());
    }
}
