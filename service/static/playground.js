// lrsched playground: pick an example from the OpenAPI document, edit it, see the curve.
//
// No framework and no build step. The page is a client of the public API like any other:
// the examples come from GET /openapi.json, the picture from POST /v1/schedules/plot, and a
// 422's detail[].loc is mapped back onto the edited JSON to put each message next to its field.
"use strict";

(() => {
  const DEBOUNCE_MS = 350;
  const SCHEDULES_PATH = "/v1/schedules";
  const PLOT_PATH = "/v1/schedules/plot";

  const $ = (id) => document.getElementById(id);
  const ui = {
    example: $("example"),
    description: $("example-description"),
    scale: $("scale"),
    draw: $("draw"),
    body: $("body"),
    bodyError: $("body-error"),
    fields: $("field-list"),
    errors: $("errors"),
    errorList: $("error-list"),
    plot: $("plot"),
    status: $("status"),
    curl: $("curl-snippet"),
    python: $("python-snippet"),
    copyStatus: $("copy-status"),
    apiKey: $("api-key"),
  };

  let examples = {}; // option value -> request body
  let doc = null; // the parsed request body, or null while the JSON does not parse
  let timer = 0;
  let inFlight = null; // AbortController of the running plot request
  let drawn = 0; // plot requests answered, for tests and screen readers

  // ---- examples -------------------------------------------------------------------------

  async function loadExamples() {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`GET /openapi.json: HTTP ${response.status}`);
    const openapi = await response.json();
    const found = [];
    const add = (path, filter) => {
      const content = openapi.paths?.[path]?.post?.requestBody?.content?.["application/json"];
      for (const [name, example] of Object.entries(content?.examples ?? {})) {
        if (filter(name)) found.push([name, example]);
      }
    };
    add(SCHEDULES_PATH, () => true);
    add(PLOT_PATH, (name) => name === "comparison");
    ui.example.replaceChildren();
    for (const [name, example] of found) {
      examples[name] = example;
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name === "comparison" ? "Compare several schedules" : name;
      ui.example.append(option);
    }
    ui.example.disabled = found.length === 0;
    const wanted = decodeURIComponent(location.hash.slice(1));
    ui.example.value = wanted in examples ? wanted : "OneCycleLR" in examples ? "OneCycleLR" : found[0]?.[0];
    selectExample();
  }

  function selectExample() {
    const example = examples[ui.example.value];
    if (!example) return;
    ui.description.textContent = (example.description || "").replace(/``/g, "");
    setBody(structuredClone(example.value));
    history.replaceState(null, "", `#${encodeURIComponent(ui.example.value)}`);
  }

  // ---- the body and its fields ----------------------------------------------------------

  function setBody(value) {
    doc = value;
    ui.body.value = JSON.stringify(doc, null, 2);
    ui.bodyError.textContent = "";
    ui.body.removeAttribute("aria-invalid");
    renderFields();
    changed();
  }

  function onBodyInput() {
    try {
      doc = JSON.parse(ui.body.value);
    } catch (error) {
      doc = null;
      ui.bodyError.textContent = `Not valid JSON: ${error.message}`;
      ui.body.setAttribute("aria-invalid", "true");
      return;
    }
    ui.bodyError.textContent = "";
    ui.body.removeAttribute("aria-invalid");
    renderFields();
    changed();
  }

  // Every scalar (or list of scalars) in the body, with its path: [["schedule", "T_max"], 900].
  function leaves(value, path = [], out = []) {
    const isScalar = (v) => v === null || typeof v !== "object";
    if (Array.isArray(value) && value.every(isScalar)) {
      out.push([path, value]);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => leaves(item, [...path, index], out));
    } else if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) leaves(item, [...path, key], out);
    } else {
      out.push([path, value]);
    }
    return out;
  }

  function pathText(path) {
    return path
      .map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`))
      .join("");
  }

  function renderFields() {
    ui.fields.replaceChildren();
    if (doc === null || typeof doc !== "object") return;
    leaves(doc).forEach(([path, value], index) => {
      const name = pathText(path);
      const isType = path[path.length - 1] === "type";
      const row = document.createElement("div");
      row.className = "field";
      row.dataset.path = name;
      const label = document.createElement("label");
      label.htmlFor = `field-${index}`;
      label.textContent = name;
      const input = document.createElement("input");
      input.id = `field-${index}`;
      input.name = name;
      input.type = "text";
      input.autocomplete = "off";
      input.spellcheck = false;
      input.value = typeof value === "string" ? value : JSON.stringify(value);
      input.dataset.kind = typeof value === "string" ? "string" : "json";
      input.setAttribute("aria-describedby", `field-${index}-error`);
      if (isType) {
        input.readOnly = true;
        input.title = "Pick another type from the list above";
      }
      input.addEventListener("input", () => onFieldInput(path, input));
      const message = document.createElement("p");
      message.className = "field-error";
      message.id = `field-${index}-error`;
      row.append(label, input, message);
      ui.fields.append(row);
    });
  }

  function onFieldInput(path, input) {
    let value = input.value;
    if (input.dataset.kind === "json") {
      try {
        value = JSON.parse(value);
      } catch {
        // Keep the text: the server will say what it expected, next to this field.
      }
    }
    let parent = doc;
    for (const part of path.slice(0, -1)) parent = parent[part];
    parent[path[path.length - 1]] = value;
    ui.body.value = JSON.stringify(doc, null, 2);
    changed();
  }

  // ---- drawing --------------------------------------------------------------------------

  function changed() {
    updateSnippets();
    clearTimeout(timer);
    timer = setTimeout(draw, DEBOUNCE_MS);
  }

  function headers(accept) {
    const result = { "Content-Type": "application/json", Accept: accept };
    if (ui.apiKey.value) result["X-API-Key"] = ui.apiKey.value;
    return result;
  }

  async function draw() {
    clearTimeout(timer);
    if (doc === null) return;
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    const width = Math.max(400, Math.min(1200, Math.round(ui.plot.clientWidth || 800)));
    const height = Math.max(250, Math.round(width * 0.56));
    const query = new URLSearchParams({ scale: ui.scale.value, width, height });
    const started = performance.now();
    ui.status.textContent = "Drawing…";
    ui.plot.setAttribute("aria-busy", "true");
    let response;
    try {
      response = await fetch(`${PLOT_PATH}?${query}`, {
        method: "POST",
        headers: headers("image/svg+xml"),
        body: JSON.stringify(doc),
        signal: controller.signal,
      });
    } catch (error) {
      if (error.name !== "AbortError") finish(`Could not reach the server: ${error.message}`);
      return;
    }
    if (controller !== inFlight) return; // a newer request was started meanwhile
    if (response.ok) {
      const text = await response.text();
      if (controller !== inFlight) return;
      showPicture(text);
      showErrors([]);
      const ms = Math.round(performance.now() - started);
      finish(`Drawn ${describe(doc)} in ${ms} ms.`);
      return;
    }
    const detail = await response.json().then((data) => data.detail).catch(() => null);
    if (controller !== inFlight) return;
    if (response.status === 422 && Array.isArray(detail)) {
      showErrors(detail);
      ui.plot.classList.add("stale");
      finish(`Not drawn: the server found ${detail.length} problem(s) in the request.`);
    } else {
      showErrors([]);
      const message = typeof detail === "string" ? detail : response.statusText;
      finish(`Not drawn: HTTP ${response.status}: ${message}`);
    }
  }

  function finish(message) {
    inFlight = null;
    drawn += 1;
    ui.plot.dataset.drawn = String(drawn);
    ui.plot.removeAttribute("aria-busy");
    ui.status.textContent = message;
  }

  function describe(body) {
    const kinds = body.schedules ? body.schedules.map((s) => s?.type) : [body.schedule?.type];
    return `${kinds.join(" vs ")}, ${body.steps} steps`;
  }

  function showPicture(text) {
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = parsed.documentElement;
    if (svg.nodeName !== "svg" || parsed.querySelector("parsererror")) {
      ui.status.textContent = "The server answered with something that is not an SVG.";
      return;
    }
    for (const script of svg.querySelectorAll("script")) script.remove();
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Learning-rate curve: ${describe(doc)}`);
    ui.plot.replaceChildren(document.importNode(svg, true));
    ui.plot.classList.remove("stale");
  }

  // ---- validation errors ----------------------------------------------------------------

  // Walk a 422 loc through the body. Segments that are not keys of the body (pydantic's union
  // tags such as "CosineAnnealingLR" or "constrained-int") are skipped. Returns the deepest
  // path found in the body and, when it ends at an object, the missing key the error names.
  function resolve(loc) {
    const parts = loc[0] === "body" ? loc.slice(1) : loc;
    let node = doc;
    const path = [];
    let pending = [];
    for (const part of parts) {
      const has =
        node !== null &&
        typeof node === "object" &&
        (Array.isArray(node) ? Number.isInteger(part) && part < node.length : Object.hasOwn(node, part));
      if (has) {
        node = node[part];
        path.push(part);
        pending = [];
      } else {
        pending.push(part);
      }
    }
    const isObject = node !== null && typeof node === "object" && !Array.isArray(node);
    const missing = isObject && pending.length ? pending[pending.length - 1] : null;
    return { path, missing, where: loc[0] };
  }

  function showErrors(detail) {
    for (const row of ui.fields.querySelectorAll(".field")) {
      row.classList.remove("invalid");
      row.querySelector("input").removeAttribute("aria-invalid");
      row.querySelector(".field-error").textContent = "";
    }
    ui.errorList.replaceChildren();
    ui.errors.hidden = detail.length === 0;
    for (const error of detail) {
      const { path, missing, where } = resolve(error.loc || []);
      const full = where === "body" ? (missing === null ? path : [...path, missing]) : error.loc.slice(1);
      const name = (where === "body" ? "" : `${where} `) + pathText(full);
      const last = full.length ? full[full.length - 1] : null;
      const own = last === null ? "" : typeof last === "number" ? `[${last}]` : String(last);
      const row = missing === null && where === "body" ? fieldRow(pathText(path)) : null;
      const item = document.createElement("li");
      const code = document.createElement("code");
      const mark = document.createElement("mark"); // the field's own name stands out
      mark.textContent = own || "(body)";
      code.append(name.slice(0, name.length - own.length), mark);
      item.append(code, `: ${error.msg}`);
      if (row) {
        const input = row.querySelector("input");
        row.classList.add("invalid");
        input.setAttribute("aria-invalid", "true");
        const message = row.querySelector(".field-error");
        message.textContent = message.textContent ? `${message.textContent} / ${error.msg}` : error.msg;
        const jump = document.createElement("button");
        jump.type = "button";
        jump.className = "link";
        jump.textContent = "Go to field";
        jump.addEventListener("click", () => input.focus());
        item.append(" ", jump);
      }
      ui.errorList.append(item);
    }
  }

  function fieldRow(name) {
    for (const row of ui.fields.querySelectorAll(".field")) {
      if (row.dataset.path === name) return row;
    }
    return null;
  }

  // ---- snippets -------------------------------------------------------------------------

  function shellQuote(text) {
    return `'${text.replace(/'/g, "'\\''")}'`;
  }

  function updateSnippets() {
    if (doc === null) return;
    const comparison = doc.schedules !== undefined;
    const url = `${location.origin}${comparison ? PLOT_PATH : SCHEDULES_PATH}`;
    const key = ui.apiKey.value !== "";
    const curl = [`curl -s ${url}`, "-H 'Content-Type: application/json'"];
    if (key) curl.push('-H "X-API-Key: $LRSCHED_API_KEY"');
    curl.push(`-d ${shellQuote(JSON.stringify(doc))}`);
    if (comparison) curl.push("-o schedules.svg");
    ui.curl.textContent = curl.join(" \\\n  ");

    const lines = key ? ["import os", "", "import httpx", ""] : ["import httpx", ""];
    lines.push(`body = ${python(doc, 0)}`);
    const extra = key ? `, headers={"X-API-Key": os.environ["LRSCHED_API_KEY"]}` : "";
    lines.push(`response = httpx.post(${python(url, 0)}, json=body${extra})`);
    lines.push("response.raise_for_status()");
    if (comparison) {
      lines.push('with open("schedules.svg", "wb") as file:', "    file.write(response.content)");
    } else {
      lines.push("curve = response.json()");
      lines.push('lr = curve["lr"][0]  # param group 0, at steps range(start, steps, stride)');
      lines.push("print(len(lr), lr[:3])");
    }
    ui.python.textContent = lines.join("\n");
  }

  // A JSON value as a Python literal, wrapped like black would at 88 columns.
  function python(value, indent) {
    const flat = pythonFlat(value);
    if (flat.length + indent <= 80 || value === null || typeof value !== "object") return flat;
    const pad = " ".repeat(indent + 4);
    const items = Array.isArray(value)
      ? value.map((item) => `${pad}${python(item, indent + 4)},`)
      : Object.entries(value).map(([k, v]) => `${pad}${JSON.stringify(k)}: ${python(v, indent + 4)},`);
    const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    return `${open}\n${items.join("\n")}\n${" ".repeat(indent)}${close}`;
  }

  function pythonFlat(value) {
    if (value === null) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (Array.isArray(value)) return `[${value.map(pythonFlat).join(", ")}]`;
    if (typeof value === "object") {
      return `{${Object.entries(value)
        .map(([k, v]) => `${JSON.stringify(k)}: ${pythonFlat(v)}`)
        .join(", ")}}`;
    }
    return JSON.stringify(value);
  }

  async function copy(button) {
    const source = $(button.dataset.copy);
    const text = source.textContent;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard API");
      await navigator.clipboard.writeText(text);
    } catch {
      // Plain http on another host: fall back to selecting the text and the copy command.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (!document.execCommand("copy")) {
        ui.copyStatus.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
        return;
      }
    }
    ui.copyStatus.textContent = `Copied the ${button.textContent.replace(/^Copy /, "")}.`;
  }

  // ---- wiring ---------------------------------------------------------------------------

  ui.example.addEventListener("change", selectExample);
  ui.scale.addEventListener("change", draw);
  ui.draw.addEventListener("click", draw);
  ui.body.addEventListener("input", onBodyInput);
  ui.apiKey.addEventListener("input", changed);
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copy(button));
  }
  loadExamples().catch((error) => {
    ui.status.textContent = `Could not load the examples: ${error.message}`;
  });
})();
