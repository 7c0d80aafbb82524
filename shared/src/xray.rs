//! The X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`)
//! of the current invocation, and its trip across the order queue as the `AWSTraceHeader` system
//! attribute, so that with `Tracing=Active` SQS and Lambda join the consumer's segment to the trace
//! of the request that placed the order (docs/deploy.md, "Logs and tracing").

use std::fmt;
use std::future::Future;

/// The SQS message system attribute that carries the trace header across a queue.
pub const AWS_TRACE_HEADER_ATTRIBUTE: &str = "AWSTraceHeader";

/// The HTTP header API Gateway adds to each request it forwards.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// Where the Lambda runtime puts the invocation's trace header when it runs one invocation at a
/// time (it leaves it unset in concurrent mode; the invocation context has it then).
const TRACE_HEADER_VARIABLE: &str = "_X_AMZN_TRACE_ID";

tokio::task_local! {
    /// The trace header of the invocation this task serves. A task-local rather than the
    /// environment variable: the local stack serves many invocations at once in one process.
    static INVOCATION: Option<TraceHeader>;
}

/// A parsed X-Ray trace header: its trace (Root), the caller's segment (Parent) and the sampling
/// decision. Other fields (`Lineage`, `Self`) are dropped: SQS and Lambda need only these three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    root: String,
    parent: Option<String>,
    sampled: Option<char>,
}

impl TraceHeader {
    /// Parses `text`, `None` unless it has a well-formed `Root` (`1-` + 8 hex digits of epoch
    /// seconds + `-` + 24 hex digits). A malformed `Parent` or `Sampled` is dropped, not fatal: the
    /// root alone still joins the trace.
    pub fn parse(text: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = None;
        for field in text.split(';') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Root" if is_root(value) => root = Some(value.to_owned()),
                "Parent" if is_hex(value, 16) => parent = Some(value.to_owned()),
                "Sampled" if matches!(value, "0" | "1" | "?") => sampled = value.chars().next(),
                _ => {}
            }
        }
        Some(TraceHeader {
            root: root?,
            parent,
            sampled,
        })
    }

    /// A new sampled trace started at `epoch_seconds`, its id and first segment from `random`:
    /// what API Gateway starts for a request that arrives without a trace header.
    pub fn start(epoch_seconds: u32, random: [u8; 20]) -> Self {
        let (id, parent) = random.split_at(12);
        TraceHeader {
            root: format!("1-{epoch_seconds:08x}-{}", hex(id)),
            parent: Some(hex(parent)),
            sampled: Some('1'),
        }
    }

    /// The trace id, `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The header of the invocation the current task serves: the one [`in_invocation`] set, else
    /// the Lambda runtime's environment variable, else none (tracing off, or a local run).
    pub fn current() -> Option<Self> {
        INVOCATION
            .try_with(Clone::clone)
            .ok()
            .flatten()
            .or_else(|| Self::parse(&std::env::var(TRACE_HEADER_VARIABLE).ok()?))
    }
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        if let Some(sampled) = self.sampled {
            write!(f, ";Sampled={sampled}")?;
        }
        Ok(())
    }
}

/// Runs `work` as the invocation traced by `header`: [`TraceHeader::current`] answers it inside.
/// A plain function, not an `async fn`: one state machine fewer around `work` on the stack.
pub fn in_invocation<F: Future>(
    header: Option<TraceHeader>,
    work: F,
) -> impl Future<Output = F::Output> {
    INVOCATION.scope(header, work)
}

fn is_root(value: &str) -> bool {
    let mut parts = value.split('-');
    parts.next() == Some("1")
        && parts.next().is_some_and(|time| is_hex(time, 8))
        && parts.next().is_some_and(|id| is_hex(id, 24))
        && parts.next().is_none()
}

fn is_hex(value: &str, digits: usize) -> bool {
    value.len() == digits && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SAMPLE: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn the_documented_header_parses_and_formats_back() {
        let header = TraceHeader::parse(SAMPLE).unwrap();

        assert_eq!(header.root(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(header.to_string(), SAMPLE);
    }

    #[test]
    fn a_header_without_a_well_formed_root_is_none() {
        for text in [
            "",
            "Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988;Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            "Root=1-5759e98g-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a994272793-00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceHeader::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn unknown_and_malformed_fields_are_dropped_around_the_root() {
        let header = TraceHeader::parse(
            " Root=1-5759e988-bd862e3fe1be46a994272793 ; Parent=xyz;Sampled=yes;Lineage=a87bd80c:1",
        )
        .unwrap();

        assert_eq!(
            header.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
    }

    #[test]
    fn a_started_trace_has_the_time_and_the_random_id() {
        let header = TraceHeader::start(0x5759_e988, [0xab; 20]);

        assert_eq!(
            header.to_string(),
            "Root=1-5759e988-abababababababababababab;Parent=abababababababab;Sampled=1"
        );
    }

    #[tokio::test]
    async fn the_invocation_header_is_current_only_inside_its_scope() {
        let header = TraceHeader::parse(SAMPLE);

        let inside = in_invocation(header.clone(), async { TraceHeader::current() }).await;

        assert_eq!(inside, header);
        assert_eq!(
            tokio::spawn(async { TraceHeader::current() })
                .await
                .unwrap(),
            None
        );
    }

    proptest! {
        #[test]
        fn a_started_trace_parses_back_to_itself(seconds in any::<u32>(), random in any::<[u8; 20]>()) {
            let header = TraceHeader::start(seconds, random);

            prop_assert_eq!(TraceHeader::parse(&header.to_string()), Some(header));
        }

        #[test]
        fn any_text_parses_without_panicking_and_a_parsed_header_round_trips(text in ".{0,120}") {
            if let Some(header) = TraceHeader::parse(&text) {
                prop_assert_eq!(TraceHeader::parse(&header.to_string()), Some(header));
            }
        }
    }
}
