// The API reference, rendered from GET /console/openapi.json.

import { api } from "./api.js";
import { $, el } from "./dom.js";

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

export async function loadApiDocs() {
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
