//! Test doubles of the ports that are not the store: a recording queue, notifier and pusher, a
//! clock that moves only when told, and a scripted payment gateway.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::SwitchedOff;
use crate::domain::{Order, OrderId, UserId};
use crate::messages::{OrderEvent, OrderPlaced};
use crate::ports::{
    Clock, ConnectionPusher, DeadLetter, DeadLetters, Delivery, Notifier, OrderQueue, PaymentError,
    PaymentGateway, PaymentOutcome, PushError, QueueError, Reachable,
};

/// Records sent messages; can be switched to fail.
#[derive(Debug, Default)]
pub struct RecordingQueue {
    sent: Mutex<Vec<OrderPlaced>>,
    /// The X-Ray trace header current at each send: what the SQS adapter sends as `AWSTraceHeader`.
    trace_headers: Mutex<Vec<Option<String>>>,
    down: AtomicBool,
    /// The dead-letter queue: bodies by receipt, and whether a receive hides it now.
    dead: Mutex<BTreeMap<String, (String, bool)>>,
}

impl RecordingQueue {
    /// Messages sent so far.
    pub fn sent(&self) -> Vec<OrderPlaced> {
        self.sent.lock().unwrap().clone()
    }

    /// The trace header of each send, in order, as the SQS adapter would send it.
    pub fn trace_headers(&self) -> Vec<Option<String>> {
        self.trace_headers.lock().unwrap().clone()
    }

    /// Makes sends and health probes fail (or succeed again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Puts `body` in the dead-letter queue, as SQS does after `maxReceiveCount` receives.
    pub fn dead_letter(&self, body: &str) {
        let mut dead = self.dead.lock().unwrap();
        let receipt = format!("r{}", dead.len());
        dead.insert(receipt, (body.to_owned(), false));
    }

    /// Bodies in the dead-letter queue.
    pub fn dead_letters(&self) -> Vec<String> {
        let dead = self.dead.lock().unwrap();
        dead.values().map(|(body, _)| body.clone()).collect()
    }

    /// The received dead letters' visibility timeout ends: they can be received again.
    pub fn end_dead_letter_visibility(&self) {
        for (_, hidden) in self.dead.lock().unwrap().values_mut() {
            *hidden = false;
        }
    }
}

impl DeadLetters for RecordingQueue {
    async fn receive_dead(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError(Box::new(SwitchedOff)));
        }
        // A receive hides what it returns until its visibility timeout ends.
        let mut dead = self.dead.lock().unwrap();
        Ok(dead
            .iter_mut()
            .filter(|(_, (_, hidden))| !*hidden)
            .take(max as usize)
            .map(|(receipt, (body, hidden))| {
                *hidden = true;
                DeadLetter {
                    body: body.clone(),
                    receipt: receipt.clone(),
                }
            })
            .collect())
    }

    async fn remove_dead(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        self.dead.lock().unwrap().remove(&letter.receipt);
        Ok(())
    }
}

impl OrderQueue for RecordingQueue {
    async fn enqueue(&self, message: &OrderPlaced, _delay: Duration) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError(Box::new(SwitchedOff)));
        }
        self.sent.lock().unwrap().push(message.clone());
        self.trace_headers
            .lock()
            .unwrap()
            .push(crate::xray::TraceHeader::current().map(|header| header.to_string()));
        Ok(())
    }
}

impl Reachable for RecordingQueue {
    async fn unreachable(&self) -> Vec<&'static str> {
        if self.down.load(Ordering::SeqCst) {
            vec!["order-queue"]
        } else {
            Vec::new()
        }
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl Default for FixedClock {
    fn default() -> Self {
        FixedClock(Mutex::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 30)
                .single()
                .expect("valid date"),
        ))
    }
}

impl FixedClock {
    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(by).expect("test durations are small");
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Records every event it is asked to push.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    events: Mutex<Vec<(UserId, OrderEvent)>>,
}

impl RecordingNotifier {
    /// Events so far, with their users.
    pub fn events(&self) -> Vec<(UserId, OrderEvent)> {
        self.events.lock().unwrap().clone()
    }
}

impl Notifier for RecordingNotifier {
    async fn notify(&self, user_id: &UserId, event: &OrderEvent) {
        self.events
            .lock()
            .unwrap()
            .push((user_id.clone(), event.clone()));
    }
}

/// Pushes into memory; connections listed in `gone` answer 410, those in `failing` fail.
#[derive(Debug, Default)]
pub struct RecordingPusher {
    pushed: Mutex<Vec<(String, String)>>,
    gone: Mutex<Vec<String>>,
    failing: Mutex<Vec<String>>,
}

impl RecordingPusher {
    /// Makes pushes to a connection fail (as a timeout or a 500 would) from now on.
    pub fn mark_failing(&self, connection_id: &str) {
        self.failing.lock().unwrap().push(connection_id.to_owned());
    }

    /// Makes a connection answer 410 Gone from now on.
    pub fn mark_gone(&self, connection_id: &str) {
        self.gone.lock().unwrap().push(connection_id.to_owned());
    }

    /// (connection, payload) pairs delivered so far.
    pub fn pushed(&self) -> Vec<(String, String)> {
        self.pushed.lock().unwrap().clone()
    }
}

impl ConnectionPusher for RecordingPusher {
    async fn push(&self, connection_id: &str, payload: &[u8]) -> Result<Delivery, PushError> {
        if self.gone.lock().unwrap().iter().any(|g| g == connection_id) {
            return Ok(Delivery::Gone);
        }
        if self
            .failing
            .lock()
            .unwrap()
            .iter()
            .any(|f| f == connection_id)
        {
            return Err(PushError("the management API did not answer".into()));
        }
        self.pushed.lock().unwrap().push((
            connection_id.to_owned(),
            String::from_utf8_lossy(payload).into_owned(),
        ));
        Ok(Delivery::Delivered)
    }
}

/// A payment gateway that answers from a script, then approves; counts charges.
#[derive(Debug, Default)]
pub struct ScriptedPayments {
    script: Mutex<std::collections::VecDeque<Result<PaymentOutcome, ()>>>,
    charges: Mutex<Vec<OrderId>>,
}

impl ScriptedPayments {
    /// Queues the next answers: `Ok(outcome)`, or `Err(())` for a technical error.
    pub fn then(&self, answer: Result<PaymentOutcome, ()>) -> &Self {
        self.script.lock().unwrap().push_back(answer);
        self
    }

    /// Orders charged so far (technical errors included).
    pub fn charges(&self) -> Vec<OrderId> {
        self.charges.lock().unwrap().clone()
    }
}

impl PaymentGateway for ScriptedPayments {
    async fn charge(&self, order: &Order) -> Result<PaymentOutcome, PaymentError> {
        self.charges.lock().unwrap().push(order.id.clone());
        match self.script.lock().unwrap().pop_front() {
            None | Some(Ok(PaymentOutcome::Approved)) => Ok(PaymentOutcome::Approved),
            Some(Ok(declined)) => Ok(declined),
            Some(Err(())) => Err(PaymentError(Box::new(SwitchedOff))),
        }
    }
}
