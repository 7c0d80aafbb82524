// The business metrics as the functions wrote them: GET /_local/metrics (the sums of their EMF
// lines, docs/deploy.md "Business metrics"), polled once a second. Orders/s is the change of
// OrdersPlaced between two polls.

import { api } from "./api.js";
import { $, el, setText } from "./dom.js";

const METRICS_POLL_MS = 1000;

let previous = null;

const sumOf = (metrics, name) => (metrics[name] ? metrics[name].sum : 0);

async function refreshMetrics() {
  const answer = await api("/_local/metrics");
  if (answer.status !== 200 || !answer.body || !answer.body.metrics) {
    setText("metrics-state", `GET /_local/metrics: ${answer.status || answer.network}`);
    return;
  }
  const metrics = answer.body.metrics;
  const now = Date.now();
  const placed = sumOf(metrics, "OrdersPlaced");
  if (previous && now > previous.at) {
    const perSecond = ((placed - previous.placed) * 1000) / (now - previous.at);
    setText("metrics-orders-per-second", Math.max(0, Math.round(perSecond)));
  }
  previous = { at: now, placed };
  setText("metrics-orders-placed", placed);
  setText("metrics-orders-refused", sumOf(metrics, "OrdersRefused"));
  setText("metrics-payments", `${sumOf(metrics, "PaymentsPaid")} / ${sumOf(metrics, "PaymentsFailed")}`);
  const lag = metrics.SettleLag || { count: 0, sum: 0, max: 0 };
  setText("metrics-settle-lag-mean", lag.count ? Math.round(lag.sum / lag.count) : 0);
  setText("metrics-settle-lag-max", Math.round(lag.max));
  setText(
    "metrics-pushes",
    `${sumOf(metrics, "PushesSent")} / ${sumOf(metrics, "PushesGone")} / ${sumOf(metrics, "PushesFailed")}`,
  );
  const reasons = ((metrics.OrdersRefused || {}).dimensions || {}).Reason || {};
  const items = Object.entries(reasons)
    .sort(([, a], [, b]) => b.sum - a.sum)
    .map(([reason, figures]) => el("li", { "data-reason": reason }, `${reason}: ${figures.sum}`));
  $("metrics-refusals").replaceChildren(...(items.length ? items : [el("li", null, "none")]));
  setText(
    "metrics-state",
    `${answer.body.lines} lines read${answer.body.malformed_lines ? `, ${answer.body.malformed_lines} not EMF` : ""}`,
  );
}

/** Starts polling; a failed poll shows its status and the next one tries again. */
export function wireMetrics() {
  const run = async () => {
    try {
      await refreshMetrics();
    } catch (error) {
      setText("metrics-state", `GET /_local/metrics failed: ${error.message}`);
    }
    setTimeout(run, METRICS_POLL_MS);
  };
  run();
}
