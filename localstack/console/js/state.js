// What the page knows: the signed-in user, the listings it shows, the newest state seen of each
// order, the running flash sale.

/**
 * The newest state seen of each order: its highest `version` and the status that came with it.
 * Every order and order event carries the order's version, which grows with each status change
 * (OrderStatus::version in shared/src/domain/order.rs); pushes can arrive out of order and a
 * listing can be read before a push, so whatever has a lower version than one seen is stale.
 */
export class OrderVersions {
  constructor() {
    this.newest = new Map(); // order id -> {version, status}
  }

  /** Records a state of `orderId`; false when it is older than one seen (an unversioned one never is). */
  accept(orderId, version, status) {
    if (typeof version !== "number") return true;
    const seen = this.newest.get(orderId);
    if (seen && version < seen.version) return false;
    this.newest.set(orderId, { version, status });
    return true;
  }

  /** The newest state seen of `orderId`, `{version, status}`, or undefined. */
  get(orderId) {
    return this.newest.get(orderId);
  }

  clear() {
    this.newest.clear();
  }
}

export const state = {
  devTokens: false,
  user: null, // {token, sub, admin}
  userSocket: null,
  products: new Map(), // id -> product
  productOrder: [],
  orders: new Map(),
  orderVersions: new OrderVersions(), // the signed-in user's orders, from listings and events
  holds: new Map(), // hold_id -> hold
  pausedUntil: new Map(), // token ("" = anonymous) -> ms timestamp after a 429
  sale: null,
  saleAdminToken: null,
};
