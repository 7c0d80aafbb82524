//! The domain in plain Rust: money, quantities, ids, products, orders and their status machine.
//! No I/O and no AWS types live here.

mod ids;
mod json;
mod money;
mod order;
mod product;
mod quantity;
mod validation;

pub use ids::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_CHARS, OrderId, ProductId, UserId};
pub use money::{Money, MoneyError};
pub use order::{MAX_ORDER_LINES, Order, OrderItem, OrderLine, OrderRequest, OrderStatus};
pub use product::{MAX_NAME_CHARS, MAX_STOCK, NewProduct, Product, ProductPatch};
pub use quantity::{MAX_QUANTITY, Quantity, QuantityError};
pub use validation::FieldErrors;
