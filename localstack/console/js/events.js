// The WebSocket API: a reconnecting socket, the signed-in user's event log, and the order
// versions that keep a late push from taking an order back in time.

import { wsBase } from "./api.js";
import { $, el, shortId } from "./dom.js";
import { renderOrders, scheduleOrderRefresh } from "./orders.js";
import { state } from "./state.js";

const LOG_MAX = 300;

/**
 * A WebSocket that reconnects with backoff until closed. `onMessage` gets each parsed JSON
 * message; `onState` gets "open" | "retrying" | "closed".
 */
export function openSocket(token, onMessage, onState) {
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

export function showSocketState(socketState, detail) {
  const node = $("ws-status");
  node.dataset.state = socketState;
  const words = { open: "connected", retrying: "disconnected", closed: "not connected" };
  node.textContent = detail ? `${words[socketState]} (${detail})` : words[socketState];
}

/** An event older than the newest state seen of its order is logged as stale and changes nothing. */
export function onUserEvent(message) {
  const current = !message.order_id || state.orderVersions.accept(message.order_id, message.version, message.status);
  logEvent(message, !current);
  if (!current) return;
  const order = state.orders.get(message.order_id);
  if (order && message.status) {
    order.status = message.status;
    order.version = message.version;
    renderOrders();
  }
  scheduleOrderRefresh();
}

/** Adds the event to the log; a stale one is listed (marked) so a late push can be seen. */
function logEvent(message, stale) {
  const time = message.timestamp ? new Date(message.timestamp) : new Date();
  const item = el(
    "li",
    {
      "data-event": message.event || "message",
      "data-order-id": message.order_id,
      "data-status": message.status,
      "data-version": message.version,
      "data-stale": stale ? "true" : null,
    },
    el("time", { datetime: time.toISOString() }, time.toLocaleTimeString()),
    el("span", { className: "event" }, message.event || "message"),
    el("span", { className: "mono", title: message.order_id }, shortId(message.order_id)),
    el("span", { className: "status" }, message.status || ""),
    message.reason ? el("span", { className: "reason" }, message.reason) : null,
    stale ? el("span", { className: "stale", title: "older than an event already shown for this order; ignored" }, "stale") : null,
  );
  const log = $("event-log");
  log.prepend(item);
  while (log.children.length > LOG_MAX) log.lastElementChild.remove();
}
