//! Orders: the request a buyer sends, the order it becomes, and the status machine it follows.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::{field_integer, field_string, refuse_unknown_members};
use super::{
    FieldErrors, HoldId, IdempotencyKey, MAX_QUANTITY, Money, OrderId, ProductId, Quantity,
    ShardSplit, StockShard, UserId,
};

/// Most lines in one order: TransactWriteItems takes 100 actions, and the order item and its
/// idempotency record take two of them, leaving one conditional stock decrement per line for 98.
pub const MAX_ORDER_LINES: usize = 98;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created, stock taken, waiting for payment.
    Pending,
    /// Payment in progress.
    Processing,
    /// Paid: terminal.
    Paid,
    /// Payment failed, stock restored: terminal.
    Failed,
    /// Cancelled by its owner or an admin, stock restored: terminal.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Paid,
        Self::Failed,
        Self::Cancelled,
    ];

    /// Whether the lifecycle allows moving from `self` to `next`.
    pub fn can_transition_to(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Processing)
                | (Pending, Cancelled)
                // A payment webhook may settle an order the consumer has not claimed yet.
                | (Pending, Paid)
                | (Pending, Failed)
                | (Processing, Paid)
                | (Processing, Failed)
        )
    }

    /// The order's version in this status: its place in the lifecycle (PENDING 1, PROCESSING 2,
    /// a terminal status 3). Every allowed transition moves forward, so the version grows with
    /// each one and a client that keeps the highest version per order never goes back in time
    /// when pushes arrive out of order (`docs/decisions.md`, "Order versions").
    pub fn version(self) -> u32 {
        match self {
            Self::Pending => 1,
            Self::Processing => 2,
            Self::Paid | Self::Failed | Self::Cancelled => 3,
        }
    }

    /// Terminal statuses never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Paid | Self::Failed | Self::Cancelled)
    }

    /// Whether an order in this status still holds its units (counts against stock conservation).
    pub fn holds_stock(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Paid)
    }

    /// The wire and storage name (`PENDING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Paid => "PAID",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("must be one of {}", Self::ALL.map(Self::as_str).join(", ")))
    }
}

/// One line of an order with the unit price as it was when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderItem {
    /// The product ordered.
    pub product_id: ProductId,
    /// Units ordered.
    pub quantity: Quantity,
    /// Price snapshot: later price changes do not touch this order.
    pub unit_price: Money,
    /// The stock shards the units came from, so a cancel or a failed payment gives them back
    /// there; stored with the order, not served.
    #[serde(skip)]
    pub shards: ShardSplit,
}

/// An order as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Server-generated id.
    pub id: OrderId,
    /// The owner: the JWT `sub` of whoever placed it.
    pub user_id: UserId,
    /// Current status, served with its [`OrderStatus::version`] beside it as `version`.
    #[serde(flatten, serialize_with = "status_and_version")]
    pub status: OrderStatus,
    /// Sum of quantity x unit price over the items, computed on the server.
    pub total_amount: Money,
    /// The key the order was placed with.
    pub idempotency_key: IdempotencyKey,
    /// Lines, in the order the client sent them.
    pub items: Vec<OrderItem>,
    /// Placement time.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Last status change.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    #[serde(serialize_with = "super::json::rfc3339_opt")]
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// `"status"` and `"version"`, the members an order's status is served as.
fn status_and_version<S: Serializer>(
    status: &OrderStatus,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut members = serializer.serialize_map(Some(2))?;
    members.serialize_entry("status", status)?;
    members.serialize_entry("version", &status.version())?;
    members.end()
}

impl OrderItem {
    /// Each stock shard this line takes from (or gives back to), with its units.
    pub fn stock_parts(&self) -> impl Iterator<Item = (StockShard, u32)> + '_ {
        self.shards
            .parts(self.quantity.get())
            .into_iter()
            .map(|(shard, units)| {
                let shard = StockShard {
                    product_id: self.product_id.clone(),
                    shard,
                };
                (shard, units)
            })
    }
}

impl Order {
    /// A new PENDING order whose total is computed from the price snapshots.
    pub fn place(
        id: OrderId,
        user_id: UserId,
        key: IdempotencyKey,
        items: Vec<OrderItem>,
        now: DateTime<Utc>,
    ) -> Order {
        let total_amount = items.iter().map(|i| i.unit_price.times(i.quantity)).sum();
        Order {
            id,
            user_id,
            status: OrderStatus::Pending,
            total_amount,
            idempotency_key: key,
            items,
            created_at: now,
            updated_at: now,
            cancelled_at: None,
        }
    }

    /// The order after a cancel, or `None` when its status does not allow one.
    pub fn cancelled(&self, now: DateTime<Utc>) -> Option<Order> {
        self.transitioned(OrderStatus::Cancelled, now)
    }

    /// The order moved to `next` at `now`, or `None` when the lifecycle does not allow the move.
    pub fn transitioned(&self, next: OrderStatus, now: DateTime<Utc>) -> Option<Order> {
        self.status.can_transition_to(next).then(|| Order {
            status: next,
            updated_at: now,
            cancelled_at: if next == OrderStatus::Cancelled {
                Some(now)
            } else {
                self.cancelled_at
            },
            ..self.clone()
        })
    }
}

/// One requested line: which product and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
    /// Units wanted.
    pub quantity: Quantity,
}

/// What an order is placed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSource {
    /// Distinct products, in the client's order; stock is taken when the order commits.
    Items(Vec<OrderLine>),
    /// An ACTIVE hold of the caller's: its units were taken when the hold was placed.
    Hold(HoldId),
}

/// A validated `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The client's key; the `Idempotency-Key` header may carry it instead.
    pub idempotency_key: IdempotencyKey,
    /// Items or a hold.
    pub source: OrderSource,
}

impl OrderRequest {
    /// Parses a body; `header_key` is the `Idempotency-Key` header, used when the body has none
    /// (a member that is `null` counts as none). Duplicate product ids are rejected rather than
    /// merged, so the order shows exactly what was sent.
    pub fn parse(body: &Value, header_key: Option<&str>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if !body.is_object() {
            return Err(FieldErrors::single("body", "must be a JSON object"));
        }
        refuse_unknown_members(body, "", &ORDER_FIELDS, &mut errors);
        let body_key = body.get("idempotency_key").filter(|key| !key.is_null());
        let key = match (body_key, header_key) {
            (Some(_), _) => field_string(body, "idempotency_key", &mut errors).map(str::to_owned),
            (None, Some(header)) => Some(header.to_owned()),
            (None, None) => {
                errors.add(
                    "idempotency_key",
                    "is required (in the body or the Idempotency-Key header)",
                );
                None
            }
        };
        let key = key.and_then(|k| match IdempotencyKey::parse(&k) {
            Ok(key) => Some(key),
            Err(msg) => {
                errors.add("idempotency_key", msg);
                None
            }
        });
        let source = match (body.get("items"), body.get("hold_id")) {
            (Some(_), Some(_)) => {
                errors.add("hold_id", "give either items or hold_id, not both");
                None
            }
            (None, Some(_)) => field_string(body, "hold_id", &mut errors).and_then(|text| {
                match HoldId::parse(text) {
                    Ok(id) => Some(OrderSource::Hold(id)),
                    Err(msg) => {
                        errors.add("hold_id", msg);
                        None
                    }
                }
            }),
            (items, None) => parse_lines(items, &mut errors).map(OrderSource::Items),
        };
        match (key, source) {
            (Some(idempotency_key), Some(source)) if errors.is_empty() => Ok(OrderRequest {
                idempotency_key,
                source,
            }),
            _ => Err(errors),
        }
    }

    /// A fingerprint of what was asked for, so a reused key with another payload is detected.
    /// The lines are sorted first: the same basket in another order is the same request.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        match &self.source {
            OrderSource::Items(lines) => {
                let mut lines: Vec<(&str, u32)> = lines
                    .iter()
                    .map(|l| (l.product_id.as_str(), l.quantity.get()))
                    .collect();
                lines.sort_unstable();
                for (product, quantity) in lines {
                    hasher.update(product.as_bytes());
                    hasher.update([0]);
                    hasher.update(quantity.to_be_bytes());
                }
            }
            // A 0xff byte never starts a UTF-8 product id, so no basket hashes like a hold.
            OrderSource::Hold(hold) => {
                hasher.update([0xff]);
                hasher.update(hold.as_str().as_bytes());
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The members an order body may have; any other is refused (docs/decisions.md, "Request bodies").
const ORDER_FIELDS: [&str; 3] = ["idempotency_key", "items", "hold_id"];
/// The members an order line may have.
const LINE_FIELDS: [&str; 2] = ["product_id", "quantity"];

fn parse_lines(items: Option<&Value>, errors: &mut FieldErrors) -> Option<Vec<OrderLine>> {
    let items = match items {
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add("items", "must be an array");
            return None;
        }
        None => {
            errors.add("items", "is required");
            return None;
        }
    };
    if items.is_empty() || items.len() > MAX_ORDER_LINES {
        errors.add("items", format!("must hold 1 to {MAX_ORDER_LINES} lines"));
        return None;
    }
    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("items[{i}].{field}");
        if !item.is_object() {
            errors.add(format!("items[{i}]"), "must be an object");
            continue;
        }
        refuse_unknown_members(item, &format!("items[{i}]."), &LINE_FIELDS, errors);
        let product_id = field_string(item, &at("product_id"), errors).and_then(|text| {
            match ProductId::parse(text) {
                Ok(id) => Some(id),
                Err(msg) => {
                    errors.add(at("product_id"), msg);
                    None
                }
            }
        });
        let quantity = field_integer(
            item.get("quantity"),
            &at("quantity"),
            1..=MAX_QUANTITY,
            errors,
        )
        .and_then(|n| match Quantity::parse(n) {
            Ok(q) => Some(q),
            Err(e) => {
                errors.add(at("quantity"), e.to_string());
                None
            }
        });
        if let Some(id) = &product_id {
            if !seen.insert(id.clone()) {
                errors.add(
                    at("product_id"),
                    "appears more than once; send one line per product",
                );
            }
        }
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(OrderLine {
                product_id,
                quantity,
            });
        }
    }
    errors.is_empty().then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> Result<OrderRequest, FieldErrors> {
        OrderRequest::parse(&body, None)
    }

    #[test]
    fn unknown_members_of_the_body_and_of_a_line_are_refused_by_path() {
        let errors = request(json!({
            "idempotency_key": "k",
            "items": [{"product_id": "a", "quantity": 1, "unit_price": "0.01"}],
            "user_id": "someone-else",
        }))
        .unwrap_err();
        let unknown = |field| {
            errors
                .get(field)
                .map(|m| m[0].starts_with("is not a known field"))
        };
        assert_eq!(unknown("items[0].unit_price"), Some(true));
        assert_eq!(unknown("user_id"), Some(true));
        assert_eq!(
            serde_json::to_value(&errors)
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            2
        );
        let from_hold = request(json!({"idempotency_key": "k", "hold_id": "h", "ttl": 9}));
        assert!(from_hold.unwrap_err().get("ttl").is_some());
        // Only the known members: accepted, `null` key included (the header may carry it).
        assert!(
            request(json!({"idempotency_key": "k", "items": [{"product_id": "a", "quantity": 1}]}))
                .is_ok()
        );
    }

    #[test]
    fn status_machine_allows_only_the_documented_moves() {
        use OrderStatus::*;
        assert!(Pending.can_transition_to(Processing));
        assert!(Pending.can_transition_to(Cancelled));
        assert!(Processing.can_transition_to(Paid));
        assert!(Processing.can_transition_to(Failed));
        assert!(!Processing.can_transition_to(Cancelled));
        assert!(!Paid.can_transition_to(Cancelled));
        assert!(!Cancelled.can_transition_to(Pending));
        for s in OrderStatus::ALL {
            assert_eq!(
                s.is_terminal(),
                OrderStatus::ALL.iter().all(|n| !s.can_transition_to(*n))
            );
        }
    }

    #[test]
    fn every_allowed_transition_raises_the_version() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                if from.can_transition_to(to) {
                    assert!(
                        to.version() > from.version(),
                        "{from} -> {to} goes from version {} to {}",
                        from.version(),
                        to.version()
                    );
                }
            }
        }
        assert_eq!(
            OrderStatus::Pending.version(),
            1,
            "a new order is version 1"
        );
    }

    #[test]
    fn an_order_is_served_with_the_version_of_its_status() {
        let placed = Order::place(
            OrderId::new("o-1"),
            UserId::new("u-1"),
            IdempotencyKey::parse("k").unwrap(),
            vec![],
            Utc::now(),
        );
        for status in OrderStatus::ALL {
            let order = Order {
                status,
                ..placed.clone()
            };

            let served = serde_json::to_value(&order).unwrap();

            assert_eq!(served["id"], "o-1");
            assert_eq!(served["status"], status.as_str());
            assert_eq!(served["version"], status.version());
        }
    }

    #[test]
    fn order_total_is_computed_from_price_snapshots() {
        let item = |p: &str, q, price| OrderItem {
            product_id: ProductId::new(p),
            quantity: Quantity::parse(q).unwrap(),
            unit_price: Money::parse(price).unwrap(),
            shards: ShardSplit::default(),
        };
        let order = Order::place(
            OrderId::new("o1"),
            UserId::new("u1"),
            IdempotencyKey::parse("k").unwrap(),
            vec![item("a", 3, "0.10"), item("b", 2, "999.99")],
            Utc::now(),
        );
        assert_eq!(order.total_amount.to_string(), "2000.28");
        assert_eq!(order.status, OrderStatus::Pending);
    }

    #[test]
    fn cancel_is_only_possible_from_pending() {
        let mut order = Order::place(
            OrderId::new("o"),
            UserId::new("u"),
            IdempotencyKey::parse("k").unwrap(),
            vec![],
            Utc::now(),
        );
        assert_eq!(
            order.cancelled(Utc::now()).unwrap().status,
            OrderStatus::Cancelled
        );
        order.status = OrderStatus::Processing;
        assert!(order.cancelled(Utc::now()).is_none());
    }

    #[test]
    fn rejects_bad_quantities_with_field_paths() {
        let errors = request(json!({"idempotency_key": "k", "items": [
            {"product_id": "a", "quantity": 0},
            {"product_id": "b", "quantity": -1},
            {"product_id": "c", "quantity": 1.5},
            {"product_id": "d", "quantity": "2"},
        ]}))
        .unwrap_err();
        for i in 0..4 {
            assert!(
                errors.get(&format!("items[{i}].quantity")).is_some(),
                "line {i}: {errors:?}"
            );
        }
    }

    #[test]
    fn rejects_too_many_lines_and_duplicates() {
        let lines: Vec<Value> = (0..=MAX_ORDER_LINES)
            .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1}))
            .collect();
        assert!(
            request(json!({"idempotency_key": "k", "items": lines}))
                .unwrap_err()
                .get("items")
                .is_some()
        );
        let dup = request(json!({"idempotency_key": "k", "items": [
            {"product_id": "a", "quantity": 1}, {"product_id": "a", "quantity": 2}]}));
        assert!(dup.unwrap_err().get("items[1].product_id").is_some());
    }

    #[test]
    fn key_may_come_from_the_header() {
        let req = OrderRequest::parse(
            &json!({"items": [{"product_id": "a", "quantity": 1}]}),
            Some("hdr"),
        )
        .unwrap();
        assert_eq!(req.idempotency_key.as_str(), "hdr");
        assert!(request(json!({"items": [{"product_id": "a", "quantity": 1}]})).is_err());
    }

    #[test]
    fn a_null_key_in_the_body_takes_the_header() {
        let lines = json!([{"product_id": "a", "quantity": 1}]);
        let req = OrderRequest::parse(
            &json!({"idempotency_key": null, "items": lines.clone()}),
            Some("hdr"),
        )
        .unwrap();
        assert_eq!(req.idempotency_key.as_str(), "hdr");
        let errors = request(json!({"idempotency_key": null, "items": lines})).unwrap_err();
        assert!(errors.get("idempotency_key").is_some());
    }

    #[test]
    fn a_blank_or_invisible_key_is_refused_in_the_body_and_the_header() {
        let lines = json!([{"product_id": "a", "quantity": 1}]);
        for key in ["   ", "\t", "k\u{202E}", "k\n"] {
            let errors =
                request(json!({"idempotency_key": key, "items": lines.clone()})).unwrap_err();
            assert!(errors.get("idempotency_key").is_some(), "{key:?}");
            let errors =
                OrderRequest::parse(&json!({"items": lines.clone()}), Some(key)).unwrap_err();
            assert!(errors.get("idempotency_key").is_some(), "{key:?}");
        }
    }

    #[test]
    fn fingerprint_ignores_line_order_but_not_quantities() {
        let a = request(json!({"idempotency_key": "k", "items": [{"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 2}]})).unwrap();
        let b = request(json!({"idempotency_key": "k", "items": [{"product_id": "b", "quantity": 2}, {"product_id": "a", "quantity": 1}]})).unwrap();
        let c = request(json!({"idempotency_key": "k", "items": [{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 2}]})).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
