//! Tracing set-up shared by every binary: JSON lines for CloudWatch, or pretty lines locally.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: our own lines from INFO up, and only errors from the AWS
/// SDK, the HTTP and WebSocket stacks under it and Dynoxide. Dynoxide logs every expected refusal
/// (a failed condition, a cancelled transaction) as a WARN without a trace id, while our own line
/// for the same request already says what happened and carries one. rustack-sqs keeps its
/// warnings: it warns only when a redrive to the dead-letter queue fails. `RUST_LOG` replaces the
/// whole filter (`RUST_LOG=info,aws_smithy_runtime=debug`).
pub const DEFAULT_FILTER: &str = "info,\
    aws_config=error,aws_runtime=error,aws_sdk=error,aws_smithy=error,aws_credential_types=error,\
    aws_sigv4=error,hyper=error,h2=error,rustls=error,tower=error,\
    tungstenite=error,tokio_tungstenite=error,dynoxide=error,rustack=warn";

/// Installs the global subscriber once; later calls (several functions in one process) are no-ops.
/// Colours only on a terminal: piped into a file, a collector or `grep`, the lines stay plain text.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_parses() {
        assert!(EnvFilter::builder().parse(DEFAULT_FILTER).is_ok());
    }
}
