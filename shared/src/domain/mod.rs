//! The domain in plain Rust: money, quantities, ids, products, orders and their status machine.
//! No I/O and no AWS types live here.

mod hold;
mod ids;
mod json;
mod money;
mod order;
mod payment;
mod product;
mod quantity;
mod rate_window;
mod stock;
mod validation;
pub mod webhook;

pub use hold::{Hold, HoldRequest, HoldStatus, MAX_ACTIVE_HOLDS_PER_PRODUCT};
pub use ids::{
    Caller, HoldId, IdempotencyKey, MAX_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS, OrderId, ProductId,
    UserId,
};
pub use json::JsonBody;
pub use money::{Money, MoneyError};
pub use order::{
    MAX_ORDER_LINES, Order, OrderItem, OrderLine, OrderRequest, OrderSource, OrderStatus,
};
pub use payment::PaymentOutcome;
pub use product::{MAX_NAME_CHARS, MAX_STOCK, MAX_STOCK_SHARDS, NewProduct, Product, ProductPatch};
pub use quantity::{MAX_QUANTITY, Quantity, QuantityError};
pub use rate_window::{
    RATE_BUCKET_MS, RATE_SPAN_MS, rate_bucket, rate_bucket_counts, rate_retry_after_secs,
    rate_verdict,
};
pub use stock::{ShardSplit, StockShard, plan_take, spread};
pub use validation::FieldErrors;
