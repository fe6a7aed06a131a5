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

// The example request as a curl command: the JSON body as it is, form fields one by one, a GET's
// fields in the query string.
function curl(path, method, operation) {
  // Every /rest call carries a token; the token endpoint takes the app's keys instead.
  const url = "http://localhost:8000" + path + (path.startsWith("/rest/") ? "?access_token=$TOKEN" : "");
  const content = (operation.requestBody || {}).content || {};
  if (method === "get" || !Object.keys(content).length) {
    const fields = operation["x-example"] ||
      Object.fromEntries((operation.parameters || []).filter((p) => p.example !== undefined).map((p) => [p.name, p.example]));
    const query = Object.entries(fields).map(([name, value]) => " \\\n  --data-urlencode " + quote(name + "=" + value)).join("");
    return "curl -s" + (method === "get" ? "G " : " ") + quote(url) + query;
  }
  if (content["application/json"]) {
    const body = JSON.stringify(content["application/json"].example, null, 2);
    return "curl -s " + quote(url) + " \\\n  -H 'Content-Type: application/json' \\\n  -d " + quote(body);
  }
  const fields = Object.entries(content["application/x-www-form-urlencoded"].example)
    .map(([name, value]) => " \\\n  --data-urlencode " + quote(name + "=" + value)).join("");
  return "curl -s " + quote(url) + fields;
}

function quote(text) {
  return "'" + String(text).replace(/'/g, "'\\''") + "'";
}

function examples(path, method, operation) {
  const answer = ((operation.responses["200"].content || {})["application/json"] || {}).example;
  const parts = [element("h3", {}, "Example"), element("p", { class: "meta" },
    "Placeholders in <angle brackets> stand for your own values: a photo's base64, a face_token from an earlier answer. ",
    "tests/console/test_reference.py runs this example against a real server.")];
  parts.push(element("pre", { class: "example-request" }, curl(path, method, operation)));
  if (answer !== undefined) parts.push(element("p", {}, "Answer:"), element("pre", { class: "example-answer" }, JSON.stringify(answer, null, 2)));
  return parts;
}

function errorTable(operation) {
  return table(["error_code", "error_msg"], (operation["x-errors"] || []).map((error) => [String(error.code), error.message]));
}

function render(spec) {
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  main.replaceChildren();
  const groups = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const id = operation.operationId;
      const tag = (operation.tags || [""])[0];
      // The method in every label: a path served by GET and POST has two entries, told apart.
      const link = element("a", { href: "#" + id }, method.toUpperCase() + " " + path.replace("/rest/2.0/face/", ""));
      (groups[tag] = groups[tag] || []).push(link);
      const body = (operation.requestBody || {}).content || {};
      const answer = operation.responses["200"];
      const codes = operation["x-errors"] ? [element("h3", {}, "Error codes"), errorTable(operation)] : [];
      const section = element("section", { id },
        element("h2", {}, element("span", { class: "method" }, method.toUpperCase()), " ", path),
        element("p", {}, operation.summary),
        element("p", { class: "meta" }, "operationId ", element("code", {}, id), Object.keys(body).length ? " · body: " + Object.keys(body).join(" or ") : ""),
        table(["parameter", "in", "type", "required", "limits", "notes"], parameterRows(operation)),
        ...examples(path, method, operation),
        element("p", {}, operation["x-errors"] ? "HTTP 200 for every answer, errors too (error_code, error_msg)." : answer.description),
        ...codes,
        element("details", {}, element("summary", {}, "answer schema"), element("pre", {}, JSON.stringify(((answer.content || {})["application/json"] || {}).schema || {}, null, 2))));
      main.append(section);
    }
  }
  toc.replaceChildren(...Object.entries(groups).map(([tag, links]) =>
    element("div", { class: "toc-group" }, element("strong", {}, tag), " ", ...links.flatMap((link) => [link, " "]))));
}

fetch("/openapi.json").then((response) => response.json()).then(render).catch((error) => {
  document.getElementById("operations").textContent = "Could not load /openapi.json: " + error;
});
