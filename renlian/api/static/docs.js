// Renders /openapi.json as a plain reference: no framework, nothing fetched but the spec itself.
"use strict";

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function limits(schema) {
  const parts = [];
  if (schema.enum) parts.push("one of " + schema.enum.join(", "));
  if (schema.minimum !== undefined) parts.push("≥ " + schema.minimum);
  if (schema.maximum !== undefined) parts.push("≤ " + schema.maximum);
  if (schema.maxLength !== undefined) parts.push("at most " + schema.maxLength + " bytes");
  if (schema.pattern) parts.push("matches " + schema.pattern);
  if (schema.default !== undefined) parts.push("default " + schema.default);
  return parts.join("; ");
}

function parameterRows(operation) {
  const rows = [];
  for (const parameter of operation.parameters || []) {
    rows.push([parameter.name, parameter.in, parameter.schema.type, parameter.required ? "yes" : "", limits(parameter.schema), parameter.description || ""]);
  }
  const content = (operation.requestBody || {}).content || {};
  const first = Object.keys(content)[0];
  if (first) {
    let schema = content[first].schema;
    const array = schema.type === "array";
    if (array) schema = schema.items;
    const required = new Set(schema.required || []);
    for (const [name, property] of Object.entries(schema.properties || {})) {
      rows.push([name, array ? "body (each element)" : "body", property.type, required.has(name) ? "yes" : "", limits(property), property.description || ""]);
    }
  }
  return rows;
}

function table(headings, rows) {
  return element("table", {},
    element("thead", {}, element("tr", {}, ...headings.map((h) => element("th", {}, h)))),
    element("tbody", {}, ...rows.map((row) => element("tr", {}, ...row.map((cell) => element("td", {}, cell))))));
}

function render(spec) {
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  main.replaceChildren();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const id = operation.operationId;
      toc.append(element("a", { href: "#" + id }, (operation.tags || [""])[0] + " " + path.replace("/rest/2.0/face/", "")), " ");
      const body = (operation.requestBody || {}).content || {};
      const answer = operation.responses["200"];
      const section = element("section", { id },
        element("h2", {}, element("span", { class: "method" }, method.toUpperCase()), " ", path),
        element("p", {}, operation.summary),
        element("p", { class: "meta" }, "operationId ", element("code", {}, id), Object.keys(body).length ? " · body: " + Object.keys(body).join(" or ") : ""),
        table(["parameter", "in", "type", "required", "limits", "notes"], parameterRows(operation)),
        element("p", {}, answer.description),
        element("details", {}, element("summary", {}, "answer schema"), element("pre", {}, JSON.stringify(((answer.content || {})["application/json"] || {}).schema || {}, null, 2))));
      main.append(section);
    }
  }
}

fetch("/openapi.json").then((response) => response.json()).then(render).catch((error) => {
  document.getElementById("operations").textContent = "Could not load /openapi.json: " + error;
});
