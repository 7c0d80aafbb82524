// Holds: setting stock aside for a checkout window, and checking a hold out.

import { api, errorText, isPaused } from "./api.js";
import { $, el, newKey, setText, shortId } from "./dom.js";
import { facts } from "./facts.js";
import { rememberOrder } from "./orders.js";
import { refreshProducts } from "./products.js";
import { state } from "./state.js";

export function wireHoldForm() {
  $("hold-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setText("hold-error", "");
    if (!state.user) return setText("hold-error", "Sign in first.");
    const answer = await api("/holds", {
      method: "POST",
      token: state.user.token,
      body: { product_id: $("hold-product").value, quantity: Number($("hold-quantity").value) },
    });
    if (answer.status !== 201) return setText("hold-error", errorText(answer));
    rememberHold(answer.body.data);
    refreshProducts();
  });
}

function rememberHold(hold) {
  state.holds.set(hold.hold_id, hold);
  renderHolds();
}

export async function refreshHolds() {
  const user = state.user;
  if (!user || isPaused(user.token)) return;
  const active = [...state.holds.values()].filter((hold) => hold.status === facts.activeHold);
  for (const hold of active) {
    const answer = await api(`/holds/${encodeURIComponent(hold.hold_id)}`, { token: user.token });
    if (state.user !== user) return;
    if (answer.status === 200) rememberHold(answer.body.data);
  }
}

function holdRow(id) {
  return el(
    "tr",
    { "data-hold-id": id },
    el("td", { className: "id mono", title: id }, shortId(id)),
    el("td", { className: "product" }),
    el("td", { className: "quantity" }),
    el("td", { className: "status" }),
    el("td", { className: "expires" }),
    el("td", { className: "actions-cell" }),
  );
}

function renderHolds() {
  const body = $("holds");
  const holds = [...state.holds.values()].reverse();
  const existing = new Map([...body.children].map((row) => [row.dataset.holdId, row]));
  holds.forEach((hold, index) => {
    const row = existing.get(hold.hold_id) || holdRow(hold.hold_id);
    fillHoldRow(row, hold);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
}

function fillHoldRow(row, hold) {
  row.querySelector(".product").textContent = hold.product_id;
  row.querySelector(".quantity").textContent = String(hold.quantity);
  const status = row.querySelector(".status");
  status.textContent = hold.status;
  status.dataset.status = hold.status;
  const expires = row.querySelector(".expires");
  expires.textContent = hold.expires_at ? new Date(hold.expires_at).toLocaleTimeString() : "";
  expires.title = hold.expires_at || "";
  const cell = row.querySelector(".actions-cell");
  const checkout = cell.querySelector("button.checkout");
  if (hold.status === facts.activeHold && !checkout) {
    const button = el("button", { type: "button", className: "checkout", "aria-label": `Check out hold ${shortId(hold.hold_id)}` }, "Check out");
    button.addEventListener("click", () => checkoutHold(hold.hold_id, button));
    cell.append(button);
  } else if (hold.status !== facts.activeHold && checkout) {
    checkout.remove();
  }
}

async function checkoutHold(holdId, button) {
  button.disabled = true;
  setText("hold-error", "");
  const answer = await api("/orders", {
    method: "POST",
    token: state.user.token,
    body: { idempotency_key: newKey(), hold_id: holdId },
  });
  if (answer.status === 201 || answer.status === 200) {
    rememberOrder(answer.body.data);
  } else {
    button.disabled = false;
    setText("hold-error", errorText(answer));
  }
  const hold = await api(`/holds/${encodeURIComponent(holdId)}`, { token: state.user.token });
  if (hold.status === 200) rememberHold(hold.body.data);
}
