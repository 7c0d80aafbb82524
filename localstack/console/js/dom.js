// Small helpers for the DOM, timing and ids.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
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

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const jitter = (min, max) => min + Math.random() * (max - min);
export const shortId = (id) => (id ? String(id).slice(0, 8) : "");

export function newKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Outside a secure context (e.g. the page opened through a LAN address) randomUUID is missing.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function setText(id, text) {
  const node = $(id);
  if (node.textContent !== String(text)) node.textContent = String(text);
}
