//! The scenarios. Each creates its own products and users (named after the run id), so runs
//! against one stack never collide, and ends in a [`ScenarioResult`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Answer, Api, QueueProbe};
use crate::outcome::ScenarioResult;

pub mod ceiling;
pub mod cost;
pub mod flash_sale;
pub mod high_load;
pub mod holds;
pub mod idempotency;
pub mod oversell;

/// Where the scenarios run.
#[derive(Clone)]
pub struct Target {
    /// The HTTP API.
    pub api: Api,
    /// The WebSocket API's address (`ws://host:port` or a stage URL).
    pub ws_url: String,
    /// The AWS endpoint of the stack's emulators (ceiling, cost, queue depth); `None` for a
    /// deployed stack.
    pub aws_endpoint: Option<String>,
    /// The stack's order queue (its depth tells when payments drained).
    pub order_queue_url: Option<String>,
    /// Whether the stack takes stock locks (`STOCK_LOCKS`); the ceiling runs the same way.
    pub stock_locks: bool,
    /// What the results are labelled with.
    pub label: String,
    /// The JWT secret, for the ceiling's own `Config`.
    pub jwt_secret: String,
}

impl Target {
    /// The order queue's depth probe, when both the endpoint and the queue are known.
    pub async fn queue_probe(&self) -> Option<QueueProbe> {
        match (&self.aws_endpoint, &self.order_queue_url) {
            (Some(endpoint), Some(url)) => Some(QueueProbe::new(endpoint, url).await),
            _ => None,
        }
    }

    /// Reaches the API (`GET /health`) and opens one WebSocket before any scenario, so that a
    /// wrong address or a certificate the run does not trust stops the run at once with its cause
    /// instead of failing every request of every scenario.
    pub async fn check_reachable(&self) -> anyhow::Result<()> {
        let health = self.api.get("/health", None).await;
        if health.status == 0 {
            anyhow::bail!(
                "reaching {}/health (trusting {}): {}",
                self.api.base_url(),
                self.api.trust(),
                health.body.as_str().unwrap_or_default()
            );
        }
        let user = self.api.user("reach");
        let mut socket = self.api.open_websocket(&self.ws_url, &user.token).await?;
        // A close frame, so that a deployed stack runs `$disconnect` now rather than at its idle
        // timeout; whether the server answers it does not matter here.
        let _ = socket.close(None).await;
        Ok(())
    }

    /// Waits (up to a minute) for the payment consumer to drain what earlier scenarios left, so
    /// a scenario's figures are its own.
    pub async fn settle_queue(&self) {
        if let Some(probe) = self.queue_probe().await {
            probe.wait_empty(Duration::from_secs(60)).await;
        }
    }
}

/// Options for a local stack started in this process to be loaded: no rate limit, no seeded
/// products, the workers on, and stock locks as `stock_locks` says; the rest at its defaults.
pub fn in_process_stack_options(
    stock_locks: bool,
    local: localstack::LocalSettings,
) -> localstack::StackOptions {
    let mut options = localstack::StackOptions {
        config: shared::Config {
            rate_limit_per_minute: 0,
            ..shared::Config::default()
        },
        local,
        seed_products: false,
        run_workers: true,
    };
    options.config.locks.enabled = stock_locks;
    options
}

/// How big each scenario is, and how the flash sale's buyers behave.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Flash sale: the hot product's stock.
    pub flash_stock: u64,
    /// Flash sale: concurrent buyers, each with its WebSocket.
    pub buyers: usize,
    /// Flash sale: the hot product's `stock_shards` (1 to 64).
    pub stock_shards: u32,
    /// Flash sale: whether a buyer answered 503 `SERVICE_UNAVAILABLE` or 409 `LOCK_CONFLICT`
    /// tries again after a short jittered pause with the same idempotency key, as a real client
    /// would (a throttled DynamoDB answers so); otherwise it moves on to a new key at once.
    pub retry_busy: bool,
    /// High load: time to ramp from 1 to `vus` virtual users.
    pub ramp: Duration,
    /// High load: time held at `vus`.
    pub hold: Duration,
    /// High load: virtual users at the top of the ramp.
    pub vus: usize,
    /// Ceiling: the dedicated product's stock.
    pub ceiling_stock: u64,
    /// Ceiling: concurrent tasks.
    pub ceiling_tasks: usize,
    /// Cost: sequential orders.
    pub cost_orders: u32,
    /// Longest wait for terminal events after a sale.
    pub settle_wait: Duration,
    /// Holds: how long after expiry the stock must be back.
    pub hold_grace: Duration,
}

impl Sizes {
    /// The sizes of `make bench`.
    pub fn full() -> Self {
        Sizes {
            flash_stock: 20_000,
            buyers: 64,
            stock_shards: 1,
            retry_busy: false,
            ramp: Duration::from_secs(10),
            hold: Duration::from_secs(20),
            vus: 50,
            ceiling_stock: 20_000,
            ceiling_tasks: 64,
            cost_orders: 200,
            settle_wait: Duration::from_secs(120),
            hold_grace: Duration::from_secs(10),
        }
    }

    /// Everything shrunk so a whole bench runs in well under a minute per mode.
    pub fn quick() -> Self {
        Sizes {
            flash_stock: 2_000,
            ramp: Duration::from_secs(3),
            hold: Duration::from_secs(5),
            ceiling_stock: 2_000,
            cost_orders: 50,
            settle_wait: Duration::from_secs(60),
            ..Sizes::full()
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Stock 1, 50 buyers at once: exactly one 201.
    Oversell,
    /// 50 concurrent requests with one key: one order, one decrement.
    Idempotency,
    /// Ramp to 50 virtual users on a read-heavy mix: latency percentiles and errors.
    HighLoad,
    /// A hot product sold out by many buyers with their WebSockets open.
    FlashSale,
    /// Holds checked out or left to expire: stock comes back.
    Holds,
    /// The order use case straight against the emulators: the upper bound of the flash sale.
    Ceiling,
    /// DynamoDB, SQS and Lambda cost of one order, from the local stack's meter.
    Cost,
}

impl Scenario {
    /// Every scenario, in the order a run executes them: the ceiling last, because its orders
    /// are never paid (its queue has no consumer) and the reconciler would later pick them up.
    pub const ALL: [Scenario; 7] = [
        Scenario::Oversell,
        Scenario::Idempotency,
        Scenario::HighLoad,
        Scenario::FlashSale,
        Scenario::Holds,
        Scenario::Cost,
        Scenario::Ceiling,
    ];

    /// The scenario's name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Oversell => "oversell",
            Scenario::Idempotency => "idempotency",
            Scenario::HighLoad => "high-load",
            Scenario::FlashSale => "flash-sale",
            Scenario::Holds => "holds",
            Scenario::Ceiling => "ceiling",
            Scenario::Cost => "cost",
        }
    }

    /// Runs the scenario; a setup that fails is a FAIL saying why, never a panic.
    pub async fn run(self, target: &Target, sizes: &Sizes) -> ScenarioResult {
        let result = match self {
            Scenario::Oversell => oversell::run(target).await,
            Scenario::Idempotency => idempotency::run(target).await,
            Scenario::HighLoad => high_load::run(target, sizes).await,
            Scenario::FlashSale => flash_sale::run(target, sizes).await,
            Scenario::Holds => holds::run(target, sizes).await,
            Scenario::Ceiling => ceiling::run(target, sizes).await,
            Scenario::Cost => cost::run(target, sizes).await,
        };
        result.unwrap_or_else(|error| ScenarioResult::broken(self.name(), &target.label, &error))
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|scenario| scenario.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?}; expected one of {}",
                    names.join(",")
                )
            })
    }
}

/// Counts of the answers a burst of orders got.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub created: u64,
    pub replayed: u64,
    pub insufficient: u64,
    pub lock_conflict: u64,
    pub other: u64,
    /// A few of the unexpected answers, for the failure message.
    pub samples: Vec<String>,
}

impl Tally {
    pub(crate) fn count(&mut self, answer: &Answer) {
        match (answer.status, answer.code()) {
            (201, _) => self.created += 1,
            (200, _) => self.replayed += 1,
            (409, "INSUFFICIENT_STOCK") => self.insufficient += 1,
            (409, "LOCK_CONFLICT") => self.lock_conflict += 1,
            _ => {
                self.other += 1;
                if self.samples.len() < 3 {
                    self.samples.push(answer.summary());
                }
            }
        }
    }

    pub(crate) fn put_into(&self, result: &mut ScenarioResult) {
        result.put("created_201", self.created);
        result.put("replayed_200", self.replayed);
        result.put("insufficient_stock_409", self.insufficient);
        result.put("lock_conflict_409", self.lock_conflict);
        result.put("other_answers", self.other);
    }
}

/// Runs `make(i)` for `n` tasks released together by a barrier; their outputs in task order.
pub(crate) async fn all_at_once<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(n);
    for task in tasks {
        outputs.push(task.await.expect("a scenario task panicked"));
    }
    outputs
}
