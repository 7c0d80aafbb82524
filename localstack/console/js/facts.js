// Facts the Rust code defines, read from the stack (GET /console/facts.json, generated from
// shared::domain) instead of copied here: which order statuses are terminal, which still hold
// their units (stock conservation), which can be cancelled, a hold's active status and the limits.

import { api, errorText } from "./api.js";

export const facts = {
  /** Every order status, in lifecycle order. */
  orderStatuses: [],
  /** Statuses that never change again. */
  terminal: new Set(),
  /** Statuses whose order still holds its units, in lifecycle order. */
  stockHolding: [],
  /** Statuses an order can be cancelled from. */
  cancellable: new Set(),
  /** The status of a hold that still sets its units aside. */
  activeHold: null,
  /** Most units of one product in one order line or hold. */
  maxQuantity: null,
  /** Longest product name, in characters. */
  maxProductNameChars: null,
};

/** Loads the facts; throws when the stack does not serve them. */
export async function loadFacts() {
  const answer = await api("/console/facts.json", { base: "" });
  if (answer.status !== 200 || !answer.body) {
    throw new Error(`GET /console/facts.json: ${errorText(answer)}`);
  }
  const body = answer.body;
  facts.orderStatuses = body.order_statuses;
  facts.terminal = new Set(body.terminal_statuses);
  facts.stockHolding = body.stock_holding_statuses;
  facts.cancellable = new Set(body.cancellable_statuses);
  facts.activeHold = body.active_hold_status;
  facts.maxQuantity = body.max_quantity;
  facts.maxProductNameChars = body.max_product_name_chars;
}

/** Whether an order in `status` still holds its units. */
export const holdsStock = (status) => facts.stockHolding.includes(status);

/** "A, B or C". */
export function oneOf(names) {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}
