// The console: talks only to the public HTTP API and the WebSocket API (plus the local stack's
// /console/config.json and /console/dev-token), so it also works against a deployed stack.
"use strict";

const TERMINAL = new Set(["PAID", "FAILED", "CANCELLED"]);
const LIVE = new Set(["PENDING", "PROCESSING", "PAID"]);
const PRODUCT_POLL_MS = 1000;
const ORDER_POLL_MS = 2000;
const SALE_TICK_MS = 500;
const SETTLE_TIMEOUT_MS = 60000;
const CHART_POINTS = 120;
const LOG_MAX = 300;

const state = {
  devTokens: false,
  user: null, // {token, sub, admin}
  userSocket: null,
  products: new Map(), // id -> product
  productOrder: [],
  orders: new Map(),
  holds: new Map(), // hold_id -> hold
  pausedUntil: new Map(), // token ("" = anonymous) -> ms timestamp after a 429
  sale: null,
  saleAdminToken: null,
};

// ---------- small helpers ----------

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (min, max) => min + Math.random() * (max - min);
const shortId = (id) => (id ? String(id).slice(0, 8) : "");

function newKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Outside a secure context (e.g. the page opened through a LAN address) randomUUID is missing.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function apiBase() {
  return $("api-url").value.trim().replace(/\/+$/, "");
}

function wsBase() {
  return $("ws-url").value.trim().replace(/\/+$/, "");
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== String(text)) node.textContent = String(text);
}

function errorText(answer) {
  if (answer.network) return `network error: ${answer.network}`;
  const body = answer.body || {};
  const code = body.error_code ? `${body.error_code}: ` : "";
  return `${answer.status} ${code}${body.message || "request failed"}${detailsText(body.details)}`;
}

/** The error's `details` in one line: each field with its messages, or its value. */
function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  const parts = Object.entries(details).map(([field, value]) =>
    `${field}: ${Array.isArray(value) ? value.join(", ") : typeof value === "object" ? JSON.stringify(value) : value}`,
  );
  return parts.length ? ` (${parts.join("; ")})` : "";
}

/** Decodes a JWT's claims without verifying it (the API verifies); null when it is not a JWT. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return null;
  }
}

// ---------- HTTP ----------

/**
 * One API call. Never throws: answers {status, body, headers}, or {status: 0, network} when the
 * request did not get an answer. A 429 pauses the pollers of that caller for Retry-After.
 */
async function api(path, { method = "GET", token = null, body, base = apiBase() } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    return { status: 0, body: null, headers: new Headers(), network: error.message };
  }
  let parsed = null;
  const text = await response.text().catch(() => "");
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: text.slice(0, 200) };
    }
  }
  if (response.status === 429) noteRateLimit(token, response.headers);
  return { status: response.status, body: parsed, headers: response.headers };
}

function retryAfterMs(headers) {
  const seconds = Number(headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000;
}

function noteRateLimit(token, headers) {
  const until = Date.now() + retryAfterMs(headers);
  state.pausedUntil.set(token || "", until);
  const who = token ? "this user" : "anonymous requests from this address";
  setText("api-status", `Rate limited (429): ${who} paused for ${Math.ceil((until - Date.now()) / 1000)} s.`);
}

function isPaused(token) {
  return (state.pausedUntil.get(token || "") || 0) > Date.now();
}

/** POST /console/dev-token on the page's own origin: the local stack mints, never a Lambda. */
async function mintToken(sub, admin) {
  const answer = await api("/console/dev-token", { method: "POST", body: { sub, admin }, base: "" });
  if (answer.status !== 200) throw new Error(`dev token for ${sub}: ${errorText(answer)}`);
  return answer.body.token;
}

// ---------- WebSocket ----------

/**
 * A WebSocket that reconnects with backoff until closed. `onMessage` gets each parsed JSON
 * message; `onState` gets "open" | "retrying" | "closed".
 */
function openSocket(token, onMessage, onState) {
  const handle = { socket: null, closed: false, attempts: 0, opened: null };
  let resolveOpened;
  handle.opened = new Promise((resolve) => (resolveOpened = resolve));
  const connect = () => {
    if (handle.closed) return;
    let socket;
    try {
      socket = new WebSocket(`${wsBase()}/?token=${encodeURIComponent(token)}`);
    } catch (error) {
      onState("closed", `cannot open: ${error.message}`);
      resolveOpened(false);
      return;
    }
    handle.socket = socket;
    socket.onopen = () => {
      handle.attempts = 0;
      onState("open");
      resolveOpened(true);
    };
    socket.onmessage = (frame) => {
      let message;
      try {
        message = JSON.parse(frame.data);
      } catch {
        return;
      }
      onMessage(message);
    };
    socket.onclose = () => {
      if (handle.closed) return;
      const delay = Math.min(15000, 1000 * 2 ** handle.attempts);
      handle.attempts += 1;
      onState("retrying", `reconnecting in ${Math.round(delay / 1000)} s`);
      resolveOpened(false);
      setTimeout(connect, delay);
    };
  };
  handle.close = () => {
    handle.closed = true;
    if (handle.socket) handle.socket.close(1000);
    onState("closed");
  };
  connect();
  return handle;
}

function showSocketState(socketState, detail) {
  const node = $("ws-status");
  node.dataset.state = socketState;
  const words = { open: "connected", retrying: "disconnected", closed: "not connected" };
  node.textContent = detail ? `${words[socketState]} (${detail})` : words[socketState];
}

// ---------- sign-in ----------

function signIn(token) {
  const claims = claimsOf(token);
  if (!claims || !claims.sub) {
    setText("sign-in-error", "That does not look like a JWT with a sub claim.");
    return;
  }
  setText("sign-in-error", "");
  if (state.userSocket) state.userSocket.close();
  state.user = { token, sub: String(claims.sub), admin: claims.role === "admin" };
  state.orders.clear();
  $("orders").replaceChildren();
  state.holds.clear();
  $("holds").replaceChildren();
  setText("signed-in-as", state.user.admin ? `${state.user.sub} (admin)` : state.user.sub);
  if (wsBase()) {
    state.userSocket = openSocket(token, onUserEvent, showSocketState);
  } else {
    showSocketState("closed", "no WebSocket URL");
  }
  refreshOrders();
}

async function signInWithDevToken(sub, admin) {
  setText("sign-in-error", "");
  try {
    signIn(await mintToken(sub, admin));
  } catch (error) {
    setText("sign-in-error", error.message);
  }
}

function wireSignIn() {
  $("sign-in-user").addEventListener("click", () => {
    const sub = $("user-sub").value.trim();
    signInWithDevToken(sub, false);
  });
  $("sign-in-admin").addEventListener("click", () => signInWithDevToken("admin", true));
  $("use-token").addEventListener("click", () => {
    const token = $("token").value.trim();
    if (token) signIn(token);
    else setText("sign-in-error", "Paste a token first.");
  });
}

// ---------- event log ----------

function onUserEvent(message) {
  logEvent(message);
  const order = state.orders.get(message.order_id);
  if (order && message.status) {
    order.status = message.status;
    renderOrders();
  }
  scheduleOrderRefresh();
}

function logEvent(message) {
  const time = message.timestamp ? new Date(message.timestamp) : new Date();
  const item = el(
    "li",
    {
      "data-event": message.event || "message",
      "data-order-id": message.order_id,
      "data-status": message.status,
    },
    el("time", { datetime: time.toISOString() }, time.toLocaleTimeString()),
    el("span", { className: "event" }, message.event || "message"),
    el("span", { className: "mono", title: message.order_id }, shortId(message.order_id)),
    el("span", { className: "status" }, message.status || ""),
    message.reason ? el("span", { className: "reason" }, message.reason) : null,
  );
  const log = $("event-log");
  log.prepend(item);
  while (log.children.length > LOG_MAX) log.lastElementChild.remove();
}

// ---------- products ----------

async function fetchAllProducts() {
  const products = [];
  let cursor = null;
  do {
    const query = cursor ? `?limit=50&cursor=${encodeURIComponent(cursor)}` : "?limit=50";
    const answer = await api(`/products${query}`);
    if (answer.status !== 200) return null;
    products.push(...answer.body.data);
    cursor = answer.body.next_cursor;
  } while (cursor);
  return products;
}

async function refreshProducts() {
  if (isPaused("")) return;
  const products = await fetchAllProducts();
  if (!products) return;
  state.productOrder = products.map((p) => p.id);
  state.products = new Map(products.map((p) => [p.id, p]));
  renderProducts();
  renderProductSelects();
}

function productRow(product) {
  const row = el("tr", { "data-product-id": product.id });
  row.append(
    el("td", { className: "name" }),
    el("td", { className: "price" }),
    el("td", { className: "stock" }),
    el("td", { className: "shards" }),
  );
  return row;
}

function renderProducts() {
  const body = $("products");
  const existing = new Map([...body.children].map((row) => [row.dataset.productId, row]));
  const rows = state.productOrder.map((id) => {
    const product = state.products.get(id);
    const row = existing.get(id) || productRow(product);
    fillProductRow(row, product);
    return row;
  });
  rows.forEach((row, index) => {
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
}

function fillProductRow(row, product) {
  row.querySelector(".name").textContent = product.name;
  row.querySelector(".price").textContent = product.price;
  row.querySelector(".shards").textContent = String(product.stock_shards ?? 1);
  const stock = row.querySelector(".stock");
  const text = String(product.stock);
  if (stock.textContent !== text) {
    const changed = stock.textContent !== "";
    stock.textContent = text;
    if (changed) flash(stock);
  }
}

function flash(cell) {
  cell.classList.add("changed");
  clearTimeout(cell.flashTimer);
  cell.flashTimer = setTimeout(() => cell.classList.remove("changed"), 700);
}

function renderProductSelects() {
  fillSelect($("order-product"), []);
  fillSelect($("hold-product"), []);
  fillSelect($("sale-product"), [["__new__", "new sale product"]]);
}

function fillSelect(select, extra) {
  const wanted = [
    ...extra,
    ...state.productOrder.map((id) => [id, `${state.products.get(id).name} (${id.length > 20 ? shortId(id) : id})`]),
  ];
  const current = [...select.options].map((o) => `${o.value}\u0000${o.textContent}`).join("\u0001");
  const next = wanted.map(([v, t]) => `${v}\u0000${t}`).join("\u0001");
  if (current === next) return;
  const selected = select.value;
  select.replaceChildren(...wanted.map(([value, text]) => el("option", { value }, text)));
  if (wanted.some(([value]) => value === selected)) select.value = selected;
}

async function createProduct(token, product) {
  return api("/products", { method: "POST", token, body: product });
}

function wireNewProduct() {
  $("new-product-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setText("new-product-error", "");
    if (!state.user) return setText("new-product-error", "Sign in as admin first.");
    const answer = await createProduct(state.user.token, {
      name: $("new-product-name").value.trim(),
      price: $("new-product-price").value.trim(),
      stock: Number($("new-product-stock").value),
    });
    if (answer.status !== 201) return setText("new-product-error", errorText(answer));
    $("new-product-name").value = "";
    refreshProducts();
  });
}

// ---------- orders ----------

function wireOrderForm() {
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

function rememberOrder(order) {
  const known = state.orders.get(order.id);
  // A pushed terminal status may be newer than a listing read a moment before it.
  if (known && TERMINAL.has(known.status) && !TERMINAL.has(order.status)) order.status = known.status;
  state.orders.set(order.id, order);
  renderOrders();
}

let orderRefreshTimer = null;
function scheduleOrderRefresh() {
  if (orderRefreshTimer) return;
  orderRefreshTimer = setTimeout(() => {
    orderRefreshTimer = null;
    refreshOrders();
  }, 250);
}

async function refreshOrders() {
  const user = state.user;
  if (!user || isPaused(user.token)) return;
  const answer = await api("/orders?limit=50", { token: user.token });
  if (state.user !== user) return;
  if (answer.status !== 200) return setText("orders-error", errorText(answer));
  setText("orders-error", "");
  const listed = answer.body.data;
  const fresh = new Map(listed.map((order) => [order.id, order]));
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

function renderOrders() {
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
  if (order.status === "PENDING" && !cancel) {
    const button = el("button", { type: "button", className: "cancel", "aria-label": `Cancel order ${shortId(order.id)}` }, "Cancel");
    button.addEventListener("click", () => cancelOrder(order.id, button));
    cell.append(button);
  } else if (order.status !== "PENDING" && cancel) {
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

// ---------- holds ----------

function wireHoldForm() {
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

async function refreshHolds() {
  const user = state.user;
  if (!user || isPaused(user.token)) return;
  const active = [...state.holds.values()].filter((hold) => hold.status === "ACTIVE");
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
  if (hold.status === "ACTIVE" && !checkout) {
    const button = el("button", { type: "button", className: "checkout", "aria-label": `Check out hold ${shortId(hold.hold_id)}` }, "Check out");
    button.addEventListener("click", () => checkoutHold(hold.hold_id, button));
    cell.append(button);
  } else if (hold.status !== "ACTIVE" && checkout) {
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

// ---------- flash sale ----------

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


function onBuyerEvent(sale, message) {
  if (!message.order_id || !TERMINAL.has(message.status)) return;
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

function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, rank)]);
}

function countSince(times, since) {
  let count = 0;
  for (let i = times.length - 1; i >= 0 && times[i] > since; i -= 1) count += 1;
  return count;
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

function pushPoint(series, value) {
  series.push(value);
  if (series.length > CHART_POINTS) series.shift();
}

function drawCharts(sale) {
  drawSpark("sale-chart-rate", sale.series.rate, "Orders per second");
  drawSpark("sale-chart-stock", sale.series.stock, "Stock");
  drawSpark("sale-chart-lag", sale.series.lag, "Settlement lag p50 in ms");
  drawSpark("sale-chart-refusals", sale.series.refusals, "LOCK_CONFLICT and INSUFFICIENT_STOCK refusals per second");
}

/**
 * A sparkline: the series scaled into the 120 x 36 viewBox, newest on the right. The x axis
 * grows with the sale (at least 20 points, at most CHART_POINTS), so a short sale fills the chart.
 */
function drawSpark(id, series, label) {
  const svg = $(id);
  const max = Math.max(1, ...series);
  const width = Math.max(20, series.length);
  const step = 120 / (width - 1);
  const offset = width - series.length;
  const points = series
    .map((value, i) => `${((offset + i) * step).toFixed(1)},${(34 - (value / max) * 32).toFixed(1)}`)
    .join(" ");
  let line = svg.querySelector("polyline");
  if (!line) {
    line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    svg.append(line);
  }
  line.setAttribute("points", points);
  const latest = series.length ? series[series.length - 1] : 0;
  svg.querySelector("title").textContent = `${label}: now ${latest}, highest ${Math.max(0, ...series)}`;
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
  for (const entry of sale.orders.values()) if (!TERMINAL.has(entry.status)) count += 1;
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
    if (entry && TERMINAL.has(order.status)) entry.status = order.status;
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
    if (!LIVE.has(order.status)) continue;
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
    ? `Conservation check passed: stock before ${sale.stockBefore} = stock now ${stockNow} + ${liveUnits} units in PENDING, PROCESSING or PAID sale orders.`
    : `Conservation check FAILED: stock before ${sale.stockBefore} \u2260 stock now ${stockNow} + ${liveUnits} units in PENDING, PROCESSING or PAID sale orders.`;
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

function wireSale() {
  $("sale-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startSale();
  });
  $("sale-product").addEventListener("change", () => {
    $("sale-stock").disabled = $("sale-product").value !== "__new__";
  });
}

// ---------- API reference ----------

function resolveRef(document, node) {
  if (!node || typeof node.$ref !== "string" || !node.$ref.startsWith("#/")) return node;
  return node.$ref
    .slice(2)
    .split("/")
    .reduce((value, key) => (value ? value[key.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), document) || node;
}

/** A description's first sentence, on one line. */
function firstSentence(text) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  const end = flat.search(/\.\s/);
  return end === -1 ? flat : flat.slice(0, end + 1);
}

function schemaName(document, requestBody) {
  const body = resolveRef(document, requestBody);
  const content = body && body.content && body.content["application/json"];
  const schema = content && content.schema;
  if (!schema) return null;
  if (schema.$ref) return schema.$ref.split("/").pop();
  const options = schema.oneOf || schema.anyOf;
  if (options) return options.map((s) => (s.$ref ? s.$ref.split("/").pop() : s.type || "object")).join(" | ");
  return schema.type || "object";
}

function operationDetails(document, path, method, operation) {
  const details = el(
    "details",
    {},
    el("summary", {}, el("span", { className: "method" }, method.toUpperCase()), el("code", {}, path), ` \u2014 ${operation.summary || ""}`),
  );
  const list = el("dl");
  const parameters = (operation.parameters || []).map((p) => resolveRef(document, p)).filter((p) => p && p.name);
  if (parameters.length) {
    list.append(el("dt", {}, "Parameters"));
    const items = parameters.map((p) =>
      el("li", {}, el("code", {}, p.name), ` (${p.in}${p.required ? ", required" : ""})${p.description ? `: ${firstSentence(p.description)}` : ""}`),
    );
    list.append(el("dd", {}, el("ul", {}, ...items)));
  }
  const body = schemaName(document, operation.requestBody);
  if (body) list.append(el("dt", {}, "Request body"), el("dd", {}, el("code", {}, body)));
  const responses = Object.entries(operation.responses || {}).map(([code, response]) => {
    const resolved = resolveRef(document, response);
    return el("li", {}, el("code", {}, code), ` ${firstSentence((resolved && resolved.description) || "")}`);
  });
  list.append(el("dt", {}, "Responses"), el("dd", {}, el("ul", {}, ...responses)));
  details.append(list);
  return details;
}

async function loadApiDocs() {
  const target = $("api-docs");
  const answer = await api("/console/openapi.json", { base: "" });
  if (answer.status !== 200 || !answer.body || !answer.body.paths) {
    target.replaceChildren(el("p", {}, "The API description is at ", el("a", { href: "/openapi.yaml" }, "/openapi.yaml"), "."));
    return;
  }
  const document = answer.body;
  const methods = ["get", "post", "put", "patch", "delete"];
  const nodes = [el("p", { className: "hint" }, `${document.info.title} ${document.info.version}; the full document: `, el("a", { href: "/openapi.yaml" }, "openapi.yaml"), ".")];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of methods) if (item[method]) nodes.push(operationDetails(document, path, method, item[method]));
  }
  target.replaceChildren(...nodes);
}

// ---------- start ----------

async function loadConfig() {
  const answer = await api("/console/config.json", { base: "" });
  const config = answer.status === 200 && answer.body ? answer.body : {};
  $("api-url").value = config.api_url || "";
  $("ws-url").value = config.ws_url || "";
  state.devTokens = config.dev_tokens === true;
  $("sign-in-user").disabled = !state.devTokens;
  $("sign-in-admin").disabled = !state.devTokens;
  if (!state.devTokens) {
    setText("dev-token-note", "This stack mints no development tokens: paste a token below.");
  }
}

function poll(task, everyMs) {
  const run = async () => {
    try {
      await task();
    } catch (error) {
      setText("api-status", `Refresh failed: ${error.message}`);
    }
    setTimeout(run, everyMs);
  };
  run();
}

async function start() {
  wireSignIn();
  wireNewProduct();
  wireOrderForm();
  wireHoldForm();
  wireSale();
  await loadConfig();
  poll(refreshProducts, PRODUCT_POLL_MS);
  poll(async () => {
    await refreshOrders();
    await refreshHolds();
  }, ORDER_POLL_MS);
  setInterval(() => {
    if ([...state.pausedUntil.values()].every((until) => until <= Date.now())) setText("api-status", "");
  }, 1000);
  loadApiDocs();
}

document.addEventListener("DOMContentLoaded", start);
