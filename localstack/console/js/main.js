// The console's entry point: loads the stack's configuration and facts, wires every panel and
// starts the pollers.

import { loadApiDocs } from "./api-docs.js";
import { api } from "./api.js";
import { $, setText } from "./dom.js";
import { facts, loadFacts } from "./facts.js";
import { wireSale } from "./flash-sale.js";
import { refreshHolds, wireHoldForm } from "./holds.js";
import { wireMetrics } from "./metrics.js";
import { refreshOrders, wireOrderForm } from "./orders.js";
import { refreshProducts, wireNewProduct } from "./products.js";
import { wireSignIn } from "./sign-in.js";
import { state } from "./state.js";

const PRODUCT_POLL_MS = 1000;
const ORDER_POLL_MS = 2000;

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

/** The form limits the domain defines: quantities and the product name's length. */
function applyLimits() {
  for (const id of ["order-quantity", "hold-quantity"]) $(id).max = String(facts.maxQuantity);
  $("new-product-name").maxLength = facts.maxProductNameChars;
}

async function start() {
  try {
    await loadFacts();
  } catch (error) {
    // Without the statuses the page cannot tell a settled order from a live one: stop here.
    setText("sign-in-error", `The console cannot start: ${error.message}`);
    return;
  }
  applyLimits();
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
  wireMetrics();
  loadApiDocs();
}

// A module runs once the document is parsed, like a deferred script.
start();
