// Orders: placing one, the signed-in user's list, and cancelling.

import { api, errorText, isPaused } from "./api.js";
import { $, el, newKey, setText, shortId } from "./dom.js";
import { facts } from "./facts.js";
import { refreshProducts } from "./products.js";
import { state } from "./state.js";

export function wireOrderForm() {
  $("order-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setText("order-error", "");
    setText("order-result", "");
    if (!state.user) return setText("order-error", "Sign in first.");
    const productId = $("order-product").value;
    if (!productId) return setText("order-error", "Choose a product.");
    const button = $("order-submit");
    button.disabled = true;
    const answer = await api("/orders", {
      method: "POST",
      token: state.user.token,
      body: {
        idempotency_key: newKey(),
        items: [{ product_id: productId, quantity: Number($("order-quantity").value) }],
      },
    });
    button.disabled = false;
    if (answer.status !== 201 && answer.status !== 200) {
      return setText("order-error", errorText(answer));
    }
    const order = answer.body.data;
    setText("order-result", `Order ${shortId(order.id)} placed: ${order.status}, total ${order.total_amount}.`);
    rememberOrder(order);
    refreshProducts();
  });
}

export function rememberOrder(order) {
  state.orders.set(order.id, newestOf(order));
  renderOrders();
}

/** The order with the newest status seen of it: a pushed status may be newer than a listing
 * or an answer read a moment before it. */
function newestOf(order) {
  if (state.orderVersions.accept(order.id, order.version, order.status)) return order;
  const seen = state.orderVersions.get(order.id);
  return { ...order, status: seen.status, version: seen.version };
}

let orderRefreshTimer = null;
export function scheduleOrderRefresh() {
  if (orderRefreshTimer) return;
  orderRefreshTimer = setTimeout(() => {
    orderRefreshTimer = null;
    refreshOrders();
  }, 250);
}

export async function refreshOrders() {
  const user = state.user;
  if (!user || isPaused(user.token)) return;
  const answer = await api("/orders?limit=50", { token: user.token });
  if (state.user !== user) return;
  if (answer.status !== 200) return setText("orders-error", errorText(answer));
  setText("orders-error", "");
  const listed = answer.body.data;
  const fresh = new Map(listed.map((order) => [order.id, newestOf(order)]));
  // Keep orders placed a moment ago that the listing does not show yet.
  for (const [id, order] of state.orders) if (!fresh.has(id)) fresh.set(id, order);
  state.orders = fresh;
  renderOrders();
}

function orderRow(id) {
  return el(
    "tr",
    { "data-order-id": id },
    el("td", { className: "id mono", title: id }, shortId(id)),
    el("td", { className: "status" }),
    el("td", { className: "total" }),
    el("td", { className: "items" }),
    el("td", { className: "actions-cell" }),
  );
}

export function renderOrders() {
  const body = $("orders");
  const orders = [...state.orders.values()].sort((a, b) =>
    String(b.created_at).localeCompare(String(a.created_at)),
  );
  const existing = new Map([...body.children].map((row) => [row.dataset.orderId, row]));
  orders.forEach((order, index) => {
    const row = existing.get(order.id) || orderRow(order.id);
    fillOrderRow(row, order);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  while (body.children.length > orders.length) body.lastElementChild.remove();
}

function fillOrderRow(row, order) {
  const status = row.querySelector(".status");
  if (status.textContent !== order.status) {
    status.textContent = order.status;
    status.dataset.status = order.status;
  }
  row.querySelector(".total").textContent = order.total_amount;
  row.querySelector(".items").textContent = (order.items || [])
    .map((item) => `${item.quantity} \u00d7 ${item.product_id}`)
    .join(", ");
  const cell = row.querySelector(".actions-cell");
  const cancel = cell.querySelector("button.cancel");
  if (facts.cancellable.has(order.status) && !cancel) {
    const button = el("button", { type: "button", className: "cancel", "aria-label": `Cancel order ${shortId(order.id)}` }, "Cancel");
    button.addEventListener("click", () => cancelOrder(order.id, button));
    cell.append(button);
  } else if (!facts.cancellable.has(order.status) && cancel) {
    cancel.remove();
  }
}

async function cancelOrder(id, button) {
  button.disabled = true;
  const answer = await api(`/orders/${encodeURIComponent(id)}/cancel`, { method: "POST", token: state.user.token });
  if (answer.status === 200) {
    rememberOrder(answer.body.data);
    setText("orders-error", "");
  } else {
    button.disabled = false;
    setText("orders-error", errorText(answer));
  }
  refreshOrders();
}
