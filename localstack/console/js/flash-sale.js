// The flash sale: many buyers ordering one unit at a time until sold out, then the settlement
// wait and the stock conservation check.

import { api, errorText, isPaused, mintToken, retryAfterMs } from "./api.js";
import { $, jitter, newKey, setText, sleep } from "./dom.js";
import { openSocket } from "./events.js";
import { facts, holdsStock, oneOf } from "./facts.js";
import { createProduct } from "./products.js";
import { countSince, drawCharts, percentile, pushPoint } from "./sale-charts.js";
import { OrderVersions, state } from "./state.js";

const SALE_TICK_MS = 500;
const SETTLE_TIMEOUT_MS = 60000;

function setSaleState(name, message) {
  const node = $("sale-state");
  node.dataset.state = name;
  node.textContent = name;
  if (message !== undefined) setText("sale-message", message);
}

/** An admin token for creating the sale product: the user's own if admin, else a background one. */
async function adminToken() {
  if (state.user && state.user.admin) return state.user.token;
  if (!state.saleAdminToken) state.saleAdminToken = await mintToken("admin", true);
  return state.saleAdminToken;
}

async function saleProduct(runId) {
  const chosen = $("sale-product").value;
  if (chosen !== "__new__") return chosen;
  const answer = await createProduct(await adminToken(), {
    name: `Flash sale ${runId}`,
    price: "19.99",
    stock: Number($("sale-stock").value),
  });
  if (answer.status !== 201) throw new Error(`creating the sale product: ${errorText(answer)}`);
  return answer.body.data.id;
}

async function readStock(productId, token) {
  const answer = await api(`/products/${encodeURIComponent(productId)}`, { token });
  return answer.status === 200 ? answer.body.data.stock : null;
}

function newSale(runId, productId, buyerCount) {
  return {
    runId,
    productId,
    buyerCount,
    buyers: [],
    stockBefore: null,
    stockNow: null,
    created: [], // ms timestamps of 201s
    refusals: [], // ms timestamps of LOCK_CONFLICT and INSUFFICIENT_STOCK answers
    sold: 0,
    lockConflicts: 0,
    insufficient: 0,
    unavailable: 0,
    failed: 0,
    errors: [],
    orders: new Map(), // order id -> {answeredAt, settledAt, status}
    versions: new OrderVersions(), // of the buyers' orders, from their pushes
    lags: [],
    series: { rate: [], stock: [], lag: [], refusals: [] },
    tick: 0,
  };
}

async function startSale() {
  if (state.sale && state.sale.running) return;
  if (!state.devTokens) {
    setSaleState("idle", "The flash sale needs development tokens (one per buyer): run it against the local stack.");
    return;
  }
  const buyerCount = Math.min(50, Math.max(1, Math.round(Number($("sale-buyers").value) || 10)));
  const runId = Date.now().toString(36).slice(-6);
  $("sale-start").disabled = true;
  resetConservation();
  resetFigures();
  setSaleState("running", "Preparing the product and the buyers\u2026");
  let sale;
  try {
    const productId = await saleProduct(runId);
    sale = newSale(runId, productId, buyerCount);
    sale.running = true;
    state.sale = sale;
    await prepareBuyers(sale);
    sale.stockBefore = await readStock(productId, sale.buyers[0].token);
    if (sale.stockBefore === null) throw new Error(`cannot read product ${productId}`);
    sale.stockNow = sale.stockBefore;
    setText("sale-message", `${buyerCount} buyers ordering product ${productId} (stock before: ${sale.stockBefore}).`);
    sale.ticker = setInterval(() => saleTick(sale), SALE_TICK_MS);
    saleTick(sale);
    await Promise.all(sale.buyers.map((buyer) => buyerLoop(sale, buyer)));
    setSaleState("settling", "Every buyer was refused for stock; waiting for every sale order to settle\u2026");
    await settle(sale);
    await checkConservation(sale);
    setSaleState("done", saleSummary(sale));
  } catch (error) {
    setSaleState("done", `The sale stopped: ${error.message}`);
  } finally {
    if (sale) finishSale(sale);
    $("sale-start").disabled = false;
  }
}

function resetFigures() {
  for (const id of ["sale-orders-per-second", "sale-sold", "sale-stock-now", "sale-lock-conflicts", "sale-insufficient", "sale-lag-p50", "sale-lag-p95"]) {
    setText(id, 0);
  }
  for (const line of document.querySelectorAll(".spark polyline")) line.remove();
}

async function prepareBuyers(sale) {
  setText("sale-message", `Minting ${sale.buyerCount} buyer tokens and opening their WebSockets\u2026`);
  const tokens = await Promise.all(
    Array.from({ length: sale.buyerCount }, (_, i) => mintToken(`sale-${sale.runId}-${i}`, false)),
  );
  sale.buyers = tokens.map((token, i) => ({ index: i, token, socket: null }));
  for (const buyer of sale.buyers) {
    buyer.socket = openSocket(buyer.token, (message) => onBuyerEvent(sale, message), () => {});
  }
  // Wait (briefly) for the sockets, so no push of a first order is missed.
  await Promise.race([Promise.all(sale.buyers.map((b) => b.socket.opened)), sleep(3000)]);
}


/** A buyer's push: a terminal one settles its order; one older than seen (late) counts for nothing. */
function onBuyerEvent(sale, message) {
  if (!message.order_id || !sale.versions.accept(message.order_id, message.version, message.status)) return;
  if (!facts.terminal.has(message.status)) return;
  const entry = sale.orders.get(message.order_id) || { answeredAt: null, settledAt: null };
  entry.status = message.status;
  if (entry.settledAt === null) {
    if (message.status === "FAILED") sale.failed += 1;
    entry.settledAt = performance.now();
    if (entry.answeredAt !== null) sale.lags.push(Math.max(0, entry.settledAt - entry.answeredAt));
  }
  sale.orders.set(message.order_id, entry);
}

function recordCreated(sale, order, status) {
  const now = performance.now();
  const entry = sale.orders.get(order.id) || { answeredAt: null, settledAt: null, status: order.status };
  if (entry.answeredAt === null) {
    entry.answeredAt = now;
    // The push can beat the HTTP answer to the page: then the lag is (about) zero.
    if (entry.settledAt !== null) sale.lags.push(Math.max(0, entry.settledAt - now));
  }
  sale.orders.set(order.id, entry);
  if (status === 201) {
    sale.created.push(now);
    sale.sold += order.items.reduce((sum, item) => sum + item.quantity, 0);
  }
}

/** One buyer: quantity 1 with a fresh key, again and again, until refused for stock. */
async function buyerLoop(sale, buyer) {
  for (;;) {
    const outcome = await orderOne(sale, buyer);
    if (outcome !== "ordered") return;
  }
}

async function orderOne(sale, buyer) {
  const body = { idempotency_key: newKey(), items: [{ product_id: sale.productId, quantity: 1 }] };
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const answer = await api("/orders", { method: "POST", token: buyer.token, body });
    const code = answer.body && answer.body.error_code;
    if (answer.status === 201 || answer.status === 200) {
      recordCreated(sale, answer.body.data, answer.status);
      return "ordered";
    }
    if (answer.status === 409 && code === "INSUFFICIENT_STOCK") {
      sale.insufficient += 1;
      sale.refusals.push(performance.now());
      return "sold out";
    }
    if (answer.status === 409 && code === "LOCK_CONFLICT") {
      sale.lockConflicts += 1;
      sale.refusals.push(performance.now());
      await sleep(jitter(20, 120));
    } else if (answer.status === 503 || answer.status === 0 || code === "IDEMPOTENCY_IN_PROGRESS") {
      sale.unavailable += 1;
      await sleep(jitter(50, 250));
    } else if (answer.status === 429) {
      await sleep(retryAfterMs(answer.headers) + jitter(0, 200));
    } else {
      sale.errors.push(`buyer ${buyer.index}: ${errorText(answer)}`);
      return "error";
    }
  }
  sale.errors.push(`buyer ${buyer.index}: gave up after 200 retries`);
  return "error";
}

async function saleTick(sale) {
  sale.tick += 1;
  const now = performance.now();
  const rate = countSince(sale.created, now - 1000);
  const refusals = countSince(sale.refusals, now - 1000);
  const p50 = percentile(sale.lags, 50);
  setText("sale-orders-per-second", rate);
  setText("sale-sold", sale.sold);
  setText("sale-lock-conflicts", sale.lockConflicts);
  setText("sale-insufficient", sale.insufficient);
  setText("sale-lag-p50", p50);
  setText("sale-lag-p95", percentile(sale.lags, 95));
  pushPoint(sale.series.rate, rate);
  pushPoint(sale.series.refusals, refusals);
  pushPoint(sale.series.lag, p50);
  pushPoint(sale.series.stock, sale.stockNow ?? 0);
  drawCharts(sale);
  await refreshSaleStock(sale);
}

/** GET /products/{id}, round-robin over the buyers' tokens so no one caller hits its rate limit. */
async function refreshSaleStock(sale) {
  if (sale.stockInFlight || sale.buyers.length === 0) return;
  const buyer = sale.buyers[sale.tick % sale.buyers.length];
  if (isPaused(buyer.token)) return;
  sale.stockInFlight = true;
  const stock = await readStock(sale.productId, buyer.token);
  sale.stockInFlight = false;
  if (stock !== null) {
    sale.stockNow = stock;
    setText("sale-stock-now", stock);
  }
}

/** Until every sale order is terminal (pushes, or each buyer's listing as a fallback) or 60 s. */
async function settle(sale) {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let lastListing = performance.now();
  while (performance.now() < deadline) {
    if (unsettled(sale) === 0) return;
    if (performance.now() - lastListing > 3000) {
      lastListing = performance.now();
      await readSaleOrders(sale);
      if (unsettled(sale) === 0) return;
    }
    setText("sale-message", `Waiting for ${unsettled(sale)} sale orders to settle\u2026`);
    await sleep(250);
  }
}

function unsettled(sale) {
  let count = 0;
  for (const entry of sale.orders.values()) if (!facts.terminal.has(entry.status)) count += 1;
  return count;
}

/** Every order of every buyer (GET /orders as that buyer, following cursors). */
async function readSaleOrders(sale) {
  const all = [];
  for (const buyer of sale.buyers) {
    let cursor = null;
    do {
      const query = cursor ? `?limit=50&cursor=${encodeURIComponent(cursor)}` : "?limit=50";
      const answer = await api(`/orders${query}`, { token: buyer.token });
      if (answer.status === 429) {
        await sleep(retryAfterMs(answer.headers));
        continue;
      }
      if (answer.status !== 200) throw new Error(`reading buyer ${buyer.index}'s orders: ${errorText(answer)}`);
      all.push(...answer.body.data);
      cursor = answer.body.next_cursor;
    } while (cursor);
  }
  for (const order of all) {
    const entry = sale.orders.get(order.id);
    if (entry && facts.terminal.has(order.status)) entry.status = order.status;
  }
  return all;
}

function resetConservation() {
  const node = $("sale-conservation");
  for (const name of ["result", "stockBefore", "stockNow", "liveUnits", "productId"]) delete node.dataset[name];
  node.textContent = "The conservation check runs when the sale has settled.";
}

async function checkConservation(sale) {
  const orders = await readSaleOrders(sale);
  const stockNow = await readStock(sale.productId, sale.buyers[0].token);
  if (stockNow === null) throw new Error("cannot read the stock for the conservation check");
  sale.stockNow = stockNow;
  setText("sale-stock-now", stockNow);
  let liveUnits = 0;
  for (const order of orders) {
    if (!holdsStock(order.status)) continue;
    for (const item of order.items) if (item.product_id === sale.productId) liveUnits += item.quantity;
  }
  const passed = sale.stockBefore === stockNow + liveUnits;
  const node = $("sale-conservation");
  Object.assign(node.dataset, {
    result: passed ? "passed" : "failed",
    stockBefore: String(sale.stockBefore),
    stockNow: String(stockNow),
    liveUnits: String(liveUnits),
    productId: sale.productId,
  });
  node.textContent = passed
    ? `Conservation check passed: stock before ${sale.stockBefore} = stock now ${stockNow} + ${liveUnits} units in ${oneOf(facts.stockHolding)} sale orders.`
    : `Conservation check FAILED: stock before ${sale.stockBefore} \u2260 stock now ${stockNow} + ${liveUnits} units in ${oneOf(facts.stockHolding)} sale orders.`;
}

function saleSummary(sale) {
  const parts = [
    `${sale.sold} units sold to ${sale.buyerCount} buyers on product ${sale.productId}`,
    `${sale.lockConflicts} lock conflicts and ${sale.unavailable} unavailable answers retried`,
  ];
  if (sale.failed > 0) {
    parts.push(`${sale.failed} payments failed and gave their units back (units sold can exceed the stock)`);
  }
  const left = unsettled(sale);
  if (left > 0) parts.push(`${left} orders still unsettled after 60 s`);
  if (sale.errors.length) parts.push(`errors: ${sale.errors.slice(0, 3).join("; ")}`);
  return `${parts.join("; ")}.`;
}

function finishSale(sale) {
  sale.running = false;
  clearInterval(sale.ticker);
  saleTick(sale);
  for (const buyer of sale.buyers) if (buyer.socket) buyer.socket.close();
}

export function wireSale() {
  $("sale-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startSale();
  });
  $("sale-product").addEventListener("change", () => {
    $("sale-stock").disabled = $("sale-product").value !== "__new__";
  });
}
