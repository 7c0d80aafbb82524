//! Products and their stock shards: the catalog, the stock take of an order and its undoing,
//! the per-shard locks in front of it, and the journal that finishes takes a writer left half-done.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Page, StoreError};
use crate::domain::{
    Hold, NewProduct, Order, OrderId, Product, ProductId, ProductPatch, StockShard, UserId,
};

/// Why placing an order did not commit.
#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    /// The key's order already exists: another request with this key committed first.
    #[error("the idempotency key was used by a committed order")]
    DuplicateKey,
    /// A product's stock is below the quantity (or the product is gone).
    #[error("insufficient stock for product {product_id}")]
    InsufficientStock {
        /// The first product whose condition failed.
        product_id: ProductId,
    },
    /// The hold the order is placed from is no longer ACTIVE, or its time is up.
    #[error("the hold is not active")]
    HoldNotActive,
    /// The hold's product was deleted: its holds cannot be checked out.
    #[error("product {product_id} was deleted")]
    ProductGone {
        /// The hold's product.
        product_id: ProductId,
    },
    /// Another transaction touched the same items at the same time; safe to retry.
    #[error("the transaction conflicted with another one")]
    Conflict {
        /// The product whose item conflicted, when the store says which.
        product_id: Option<ProductId>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and writes products (admin CRUD and live stock on reads).
pub trait ProductCatalog: Send + Sync {
    /// One product, `None` when unknown or deleted.
    fn get_product(
        &self,
        id: &ProductId,
    ) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// The products an order is priced from, in one round trip where the store allows it;
    /// unknown and deleted ids are left out. Read for the price: the read may lag a change by a
    /// moment (eventually consistent), and `stock` is the product item's own shard only, the whole
    /// stock when `stock_shards` is 1. The placement transaction decides stock and liveness.
    fn get_products(
        &self,
        ids: &[ProductId],
    ) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;
    /// Each stock shard's units (index = shard); `None` when the product is unknown or deleted.
    /// For an order whose shard was short: where else its units are. `consistent: false` reads
    /// at half the read units and may miss the last second's moves: enough to plan a take, whose
    /// condition decides, not to refuse one.
    fn shard_stocks(
        &self,
        id: &ProductId,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Vec<u32>>, StoreError>> + Send;
    /// A page of products.
    fn list_products(
        &self,
        limit: u32,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<Page<Product>, StoreError>> + Send;
    /// Stores a new product.
    fn create_product(
        &self,
        id: ProductId,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Product, StoreError>> + Send;
    /// Applies a patch; `None` when the product is unknown or deleted.
    fn update_product(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// Deletes a product (soft: orders still restore stock to it); `false` when it was unknown.
    fn delete_product(
        &self,
        id: &ProductId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Takes stock for an order and gives it back.
pub trait StockReserver: Send + Sync {
    /// The stock taken (`stock >= q` per shard) and the order written with the request's
    /// fingerprint on condition that it does not exist (its id is derived from the user and the
    /// key, so an existing one is [`PlaceOrderError::DuplicateKey`]). Nothing stays written
    /// unless all of it is. The take stays marked as the order's until
    /// [`StockReserver::release_taken`], which the caller runs once the order's message is sent:
    /// a placement that stops before that leaves the mark, and the journal's sweep sends the
    /// message of a PENDING order it finds there ([`JournalSweep::unsent`]).
    fn place_order(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> impl Future<Output = Result<StockTaken, PlaceOrderError>> + Send;
    /// Removes the mark of a take whose order's message is sent. Best effort: a mark left behind
    /// is the sweep's.
    fn release_taken(&self, taken: &StockTaken) -> impl Future<Output = ()> + Send;
    /// One transaction: `consumed` (the hold after checkout) written on condition that the stored
    /// hold is ACTIVE, belongs to the order's user and ends after `now`; the user's active-hold
    /// count down by one; the order with the request's fingerprint (must not exist); the product not
    /// deleted ([`PlaceOrderError::ProductGone`]). No stock
    /// moves: the hold took it. A failed hold condition is [`PlaceOrderError::HoldNotActive`].
    fn place_order_from_hold(
        &self,
        order: &Order,
        request_fingerprint: &str,
        consumed: &Hold,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PlaceOrderError>> + Send;
    /// One transaction: status PENDING -> CANCELLED (conditional on PENDING) and every item's stock
    /// back. `Ok(false)` when the order was no longer PENDING, so nothing changed.
    fn cancel_order(
        &self,
        cancelled: &Order,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Per-shard lock items (one per product unless it has stock shards): a first layer in front of
/// the stock transaction.
pub trait StockLocks: Send + Sync {
    /// Takes the lock when it is free or its lease has ended; `false` when someone else holds it.
    fn try_lock(
        &self,
        shard: &StockShard,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Releases the lock if `token` still owns it; a lock taken over after expiry is left alone.
    fn unlock(
        &self,
        shard: &StockShard,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The mark of a stock take an order from items made, until its message is sent: the journal
/// token and the units per shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockTaken {
    /// The take's journal token.
    pub token: String,
    /// The units taken per shard.
    pub shards: Vec<(StockShard, u64)>,
}

/// A PENDING order whose placement stopped before it sent the order's message: the sweep found
/// its take still marked. Its message is sent, then the mark released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsentOrder {
    /// The order.
    pub order_id: OrderId,
    /// Its user.
    pub user_id: UserId,
    /// When it was placed (its message waits for the rest of the cancel window).
    pub placed_at: DateTime<Utc>,
    /// The mark to release once the message is sent.
    pub taken: StockTaken,
}

/// What one sweep of the stock journal finished for writers that stopped between their steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalSweep {
    /// Orders whose placement stopped before sending their message: left marked for the caller,
    /// which sends the message and releases the mark.
    pub unsent: Vec<UnsentOrder>,
    /// Takes whose owner was written (and is past PENDING, or a hold): their entries removed.
    pub released: usize,
    /// Takes whose owner was never written: their units given back.
    pub undone: usize,
    /// Restores whose status move committed: their units given back.
    pub applied: usize,
    /// Restore intents whose status move did not commit: removed.
    pub dropped: usize,
}

/// The stock journal of a store whose stock moves take several writes (the DynamoDB adapter's
/// `stock_journal`): finishing what a writer that stopped between them left undone.
pub trait StockJournal: Send + Sync {
    /// Settles every journal entry written before `older_than`.
    fn sweep_stock_journal(
        &self,
        older_than: DateTime<Utc>,
    ) -> impl Future<Output = Result<JournalSweep, StoreError>> + Send;
}
