// Connection and sign-in: development tokens or a pasted JWT.

import { claimsOf, mintToken, wsBase } from "./api.js";
import { $, setText } from "./dom.js";
import { onUserEvent, openSocket, showSocketState } from "./events.js";
import { refreshOrders } from "./orders.js";
import { state } from "./state.js";

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
  state.orderVersions.clear();
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

export function wireSignIn() {
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
