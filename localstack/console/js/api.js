// The HTTP API: one call that never throws, rate-limit pauses, errors in one line, tokens.

import { $, setText } from "./dom.js";
import { state } from "./state.js";

function apiBase() {
  return $("api-url").value.trim().replace(/\/+$/, "");
}

export function wsBase() {
  return $("ws-url").value.trim().replace(/\/+$/, "");
}

export function errorText(answer) {
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
export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return null;
  }
}

/**
 * One API call. Never throws: answers {status, body, headers}, or {status: 0, network} when the
 * request did not get an answer. A 429 pauses the pollers of that caller for Retry-After.
 */
export async function api(path, { method = "GET", token = null, body, base = apiBase() } = {}) {
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

export function retryAfterMs(headers) {
  const seconds = Number(headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000;
}

function noteRateLimit(token, headers) {
  const until = Date.now() + retryAfterMs(headers);
  state.pausedUntil.set(token || "", until);
  const who = token ? "this user" : "anonymous requests from this address";
  setText("api-status", `Rate limited (429): ${who} paused for ${Math.ceil((until - Date.now()) / 1000)} s.`);
}

export function isPaused(token) {
  return (state.pausedUntil.get(token || "") || 0) > Date.now();
}

/** POST /console/dev-token on the page's own origin: the local stack mints, never a Lambda. */
export async function mintToken(sub, admin) {
  const answer = await api("/console/dev-token", { method: "POST", body: { sub, admin }, base: "" });
  if (answer.status !== 200) throw new Error(`dev token for ${sub}: ${errorText(answer)}`);
  return answer.body.token;
}
