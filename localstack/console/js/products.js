// Products: live stock, the product pickers, and the admin's new-product form.

import { api, errorText, isPaused } from "./api.js";
import { $, el, setText, shortId } from "./dom.js";
import { state } from "./state.js";

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

export async function refreshProducts() {
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

export async function createProduct(token, product) {
  return api("/products", { method: "POST", token, body: product });
}

export function wireNewProduct() {
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
