// What the page knows: the signed-in user, the listings it shows, the running flash sale.

export const state = {
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
