// authtrail Stream tab: platform cards, a setup form drawn from each platform's settings
// schema, "Send test event", and the configured destinations with live status and actions.
// Uses api(), el() and API from app.js.
"use strict";

const Stream = (() => {
  const s = { types: [], byPlatform: {}, admin: false, timer: null, editing: null, letters: null };
  const STATES = {
    healthy: "Healthy", failing: "Failing", stalled: "Stalled", auth_failed: "Auth failed", paused: "Paused",
    suspended: "Suspended",
    starting: "Starting", "not running": "Not running", stopped: "Stopped",
  };

  function label(key) {
    const words = key.replace(/_/g, " ").replace(/\bapi\b/, "API").replace(/\burl\b/, "URL")
      .replace(/\btls\b/, "TLS").replace(/\bid\b/, "ID");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // The PII rules' fields, as the API names them; raw cannot be masked.
  const PII_FIELDS = ["actor.email", "actor.id", "ip", "user_agent", "account.name", "raw"];

  function typeOf(property) {
    const types = property.type ? [property.type] : (property.anyOf || []).map((t) => t.type);
    return types.filter((t) => t && t !== "null")[0] || "string";
  }

  // ---- cards ----------------------------------------------------------------------------
  function drawCards() {
    const cards = $("platforms");
    cards.replaceChildren();
    for (const type of s.types) {
      const card = el("article", { class: "platform", "data-platform": type.platform },
        el("img", { src: type.icon, alt: "", width: "40", height: "40" }),
        el("div", {}, el("h3", {}, type.name), el("p", { class: "muted" }, type.description)));
      if (s.admin) {
        const button = el("button", { type: "button", class: "primary" }, `Set up ${type.name}`);
        button.addEventListener("click", () => openForm(type.platform, null));
        card.append(button);
      }
      cards.append(card);
    }
  }

  // ---- the setup form ------------------------------------------------------------------
  function field(key, property, required, secret, value) {
    const id = `setting-${key}`;
    const kind = typeOf(property);
    let input;
    // A choice, or a choice that may be left unset (an enum beside null: "—").
    const choices = property.enum || (property.anyOf || []).find((t) => t.enum)?.enum;
    if (choices) {
      input = el("select", { id, name: key });
      const optional = !property.enum;
      if (optional) input.append(el("option", { value: "" }, "—"));
      for (const option of choices) input.append(el("option", { value: option }, option));
      input.value = value ?? property.default ?? (optional ? "" : choices[0]);
    } else if (kind === "boolean") {
      input = el("input", { id, name: key, type: "checkbox" });
      input.checked = value ?? property.default ?? false;
    } else if (property["x-multiline"]) {
      // Saved: only the names are shown (the values are write-only).
      input = el("textarea", { id, name: key, rows: "3", autocomplete: "off", spellcheck: "false" });
      if (value && typeof value === "object") {
        input.placeholder = Object.keys(value).map((name) => `${name}: ••••`).join("\n") + "\n(leave empty to keep)";
      }
    } else {
      input = el("input", { id, name: key, type: secret ? "password" : "text", autocomplete: "off" });
      if (secret && value) input.placeholder = `${value} (leave empty to keep)`;
      else if (value != null) input.value = value;
      else if (property.default != null && property.default !== "") input.placeholder = String(property.default);
    }
    const help = property.description || "";
    return el("div", { class: "field", "data-setting": key },
      el("label", { for: id }, label(key) + (required ? " *" : "")),
      input,
      help ? el("small", { class: "muted" }, help) : "",
      el("small", { class: "field-error", role: "alert" }));
  }

  function openForm(platform, destination) {
    const type = s.byPlatform[platform];
    s.editing = destination;
    $("setup-title").textContent = destination ? `Edit ${destination.name}` : `Set up ${type.name}`;
    $("setup-icon").src = type.icon;
    $("setup-description").textContent = type.description;
    const fields = $("setup-fields");
    fields.replaceChildren(
      el("div", { class: "field", "data-setting": "name" },
        el("label", { for: "setting-name" }, "Name *"),
        el("input", { id: "setting-name", name: "name", type: "text", value: destination ? destination.name : type.name }),
        el("small", { class: "field-error", role: "alert" })));
    const schema = type.settings_schema;
    const required = new Set(schema.required || []);
    const order = Object.keys(schema.properties).sort((a, b) =>
      (required.has(b) - required.has(a)) || (a === "endpoint") - (b === "endpoint"));
    for (const key of order) {
      const secret = type.secrets.includes(key);
      const value = destination ? destination.settings[key] : undefined;
      fields.append(field(key, schema.properties[key], required.has(key), secret, value));
    }
    drawTransform(destination ? destination.transform : {});
    const f = destination ? destination.filter : { event_keys: [], outcomes: [], accounts: [] };
    $("filter-event-keys").value = f.event_keys.join(", ");
    $("filter-accounts").value = f.accounts.join(", ");
    for (const box of document.querySelectorAll("input[name=filter-outcome]")) {
      box.checked = f.outcomes.includes(box.value);
    }
    if (destination) {
      for (const key of type.address) {
        const input = document.getElementById(`setting-${key}`);
        if (input) input.addEventListener(input.type === "checkbox" ? "change" : "input", () => markSecrets(type));
      }
      markSecrets(type);
    }
    $("setup").dataset.platform = platform;
    $("test-reply").textContent = "";
    $("test-reply").className = "test-reply";
    $("setup-error").textContent = "";
    $("setup").hidden = false;
    $("setting-name").focus();
  }

  function drawTransform(rules) {
    const holder = $("transform-fields");
    holder.replaceChildren();
    for (const name of PII_FIELDS) {
      const id = `transform-${name}`;
      const select = el("select", { id, name: id },
        el("option", { value: "" }, name === "raw" ? "drop once any rule is set" : "send as is"),
        el("option", { value: "drop" }, "drop"));
      if (name !== "raw") select.append(el("option", { value: "mask" }, "mask"));
      select.append(el("option", { value: "hash" }, "hash"));
      select.value = rules[name] || "";
      holder.append(el("div", { class: "field", "data-setting": `transform-${name}` },
        el("label", { for: id }, name), select, el("small", { class: "field-error", role: "alert" })));
    }
    $("transform-attributes").value = Object.entries(rules)
      .filter(([name]) => name.startsWith("attributes.")).map(([name, verb]) => `${name}=${verb}`).join(", ");
  }

  function transformBody() {
    const rules = {};
    for (const name of PII_FIELDS) {
      const verb = document.getElementById(`transform-${name}`).value;
      if (verb) rules[name] = verb;
    }
    for (const item of $("transform-attributes").value.split(",").map((v) => v.trim()).filter(Boolean)) {
      const [name, verb] = item.split("=").map((v) => (v || "").trim());
      rules[name.startsWith("attributes.") ? name : `attributes.${name}`] = verb;
    }
    return rules;
  }

  // The address settings changed in the form, compared with the saved destination.
  function movedFields(type) {
    if (!s.editing) return [];
    const body = formBody();
    return type.address.filter((key) => {
      const input = document.getElementById(`setting-${key}`);
      if (!input) return false;
      const saved = s.editing.settings[key];
      if (input.type === "checkbox") return input.checked !== (saved ?? false);
      return (body.settings[key] ?? null) !== (saved ?? null);
    });
  }

  // A stored secret is only sent where it was saved for: once the address changes, the
  // server needs every secret again, and the form says so beside each one.
  function markSecrets(type) {
    const moved = movedFields(type).map(label);
    for (const key of type.secrets) {
      const holder = document.querySelector(`#setup [data-setting="${key}"]`);
      if (!holder) continue;
      const input = holder.querySelector("input");
      const saved = s.editing.settings[key];
      let note = holder.querySelector(".secret-again");
      if (!note) {
        note = el("small", { class: "secret-again" });
        holder.querySelector(".field-error").before(note);
      }
      if (moved.length && saved) {
        input.placeholder = "enter it again";
        note.textContent = `${moved.join(", ")} changed: enter it again. A saved secret is only sent to the address it was saved for.`;
      } else {
        if (saved) input.placeholder = `${saved} (leave empty to keep)`;
        note.textContent = "";
      }
    }
  }

  function formBody() {
    const platform = $("setup").dataset.platform;
    const type = s.byPlatform[platform];
    const settings = {};
    for (const [key, property] of Object.entries(type.settings_schema.properties)) {
      const input = document.getElementById(`setting-${key}`);
      if (typeOf(property) === "boolean") { settings[key] = input.checked; continue; }
      const value = input.value.trim();
      if (value !== "") settings[key] = value;
      else if (s.editing && !type.secrets.includes(key)) settings[key] = null;  // back to default
    }
    const list = (text) => text.split(",").map((v) => v.trim()).filter(Boolean);
    const filter = {
      event_keys: list($("filter-event-keys").value),
      outcomes: [...document.querySelectorAll("input[name=filter-outcome]:checked")].map((b) => b.value),
      accounts: list($("filter-accounts").value),
    };
    return { platform, name: $("setting-name").value.trim(), settings, filter, transform: transformBody() };
  }

  function showFieldError(error) {
    for (const node of document.querySelectorAll("#setup .field-error")) node.textContent = "";
    let parameter = (error.parameter || "").replace(/^settings\./, "").replace(/^filter\./, "filter-");
    if (parameter.startsWith("transform.attributes.")) parameter = "transform-attributes";
    else parameter = parameter.replace(/^transform\./, "transform-");
    const holder = document.querySelector(`#setup [data-setting="${parameter}"] .field-error`);
    if (holder) holder.textContent = error.message;
    $("setup-error").textContent = holder ? "" : error.text;
  }

  function apiError(error) {
    const match = /^([\w.-]+): (.*)$/.exec(error.message);
    return { parameter: match ? match[1] : "", message: match ? match[2] : error.message, text: error.message };
  }

  async function sendTest() {
    const reply = $("test-reply");
    reply.className = "test-reply";
    reply.textContent = "Sending a test event…";
    const body = formBody();
    try {
      // Editing at the same address: the saved settings (secrets included) are what can
      // be tested. At a new address the form's own settings are, secrets given again.
      const saved = s.editing && movedFields(s.byPlatform[body.platform]).length === 0;
      const path = saved ? `${API}/destinations/${s.editing.id}/test`
        : `${API}/destination-types/${body.platform}/test`;
      // Unsaved settings: an emptied field is left out (null means "back to the default"
      // only to a change of a saved destination).
      const settings = Object.fromEntries(Object.entries(body.settings).filter(([, v]) => v !== null));
      const result = await api(path, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: saved ? undefined : JSON.stringify({ ...body, settings }),
      });
      const said = [result.status != null ? `HTTP ${result.status}` : "no reply",
        result.code && `code ${result.code}`, result.message].filter(Boolean).join(" · ");
      reply.className = `test-reply ${result.ok ? "ok" : "failed"}`;
      reply.textContent = result.ok ? `Delivered. The platform said: ${said}` : `Not delivered (${result.result}): ${said}`;
    } catch (error) {
      reply.className = "test-reply failed";
      reply.textContent = "";
      showFieldError(apiError(error));
    }
  }

  async function save(event) {
    event.preventDefault();
    const body = formBody();
    try {
      if (s.editing) {
        await api(`${API}/destinations/${s.editing.id}`, {
          method: "PATCH", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: body.name, settings: body.settings, filter: body.filter, transform: body.transform }),
        });
      } else {
        const created = await api(`${API}/destinations`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        showSecret(created);
      }
      $("setup").hidden = true;
      await refresh();
    } catch (error) {
      showFieldError(apiError(error));
    }
  }

  // A secret authtrail made (a webhook's signing secret) is in one reply only: shown here
  // until dismissed, never fetched again.
  function showSecret(destination) {
    const made = destination.generated_secrets || {};
    const [key] = Object.keys(made);
    if (!key) return;
    $("secret-notice-title").textContent = `${label(key)} of ${destination.name}`;
    $("secret-notice-value").textContent = made[key];
    $("secret-notice").hidden = false;
  }

  async function rotate(destination) {
    if (!window.confirm(`Give "${destination.name}" a new signing secret? The current one keeps signing beside it for 24 hours.`)) return;
    const rotated = await api(`${API}/destinations/${destination.id}/rotate-secret`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ grace_seconds: 86400 }),
    });
    showSecret(rotated);
    await refresh();
  }

  // ---- configured destinations ---------------------------------------------------------
  function badge(state) {
    return el("span", { class: `state ${state.replace(" ", "-")}`, "data-state": state }, STATES[state] || state);
  }

  function action(text, handler, attrs = {}) {
    const button = el("button", Object.assign({ type: "button", class: "link" }, attrs), text);
    button.addEventListener("click", handler);
    return button;
  }

  async function refresh() {
    const destinations = await api(`${API}/destinations`);
    const statuses = await Promise.all(destinations.map((d) =>
      api(`${API}/destinations/${d.id}/status`).catch(() => null)));
    const byId = {};
    for (const status of statuses) if (status) byId[status.id] = status;
    const rows = $("destinations-body");
    rows.replaceChildren();
    $("destinations-empty").hidden = destinations.length > 0;
    for (const d of destinations) {
      const status = byId[d.id] || { state: d.paused ? "paused" : d.suspended_at ? "suspended" : "not running" };
      const actions = el("td", { class: "actions" });
      if (s.admin) {
        actions.append(
          action("Edit", () => openForm(d.platform, d)),
          d.paused || d.suspended_at ? action("Resume", () => change(d.id, "resume")) : action("Pause", () => change(d.id, "pause")),
          action("Replay", () => openReplay(d)),
          ...(s.byPlatform[d.platform].generated.length ? [action("Rotate secret", () => rotate(d))] : []),
          action("Dead letters", () => openLetters(d)),
          action("Delete", () => remove(d), { class: "link danger" }));
      } else {
        actions.append(action("Dead letters", () => openLetters(d)));
      }
      const type = s.byPlatform[d.platform];
      rows.append(el("tr", { "data-id": d.id },
        el("td", {}, el("span", { class: "dest" },
          el("img", { src: type.icon, alt: "", width: "20", height: "20" }),
          el("span", {}, el("strong", {}, d.name), el("br"), el("small", { class: "muted" }, type.name)))),
        el("td", { class: "status" }, badge(status.state)),
        el("td", { class: "num" }, status.lag == null ? "—" : status.lag.toLocaleString()),
        el("td", { class: "num" }, (status.delivered || 0).toLocaleString()),
        el("td", { class: "num" }, status.events_per_s ? status.events_per_s.toLocaleString() : "0"),
        el("td", { class: "num" }, (status.dead_lettered || 0).toLocaleString()),
        el("td", { class: "last-error" }, status.last_error || "—"),
        actions));
    }
  }

  async function change(id, verb) {
    await api(`${API}/destinations/${id}/${verb}`, { method: "POST" });
    await refresh();
  }

  async function remove(destination) {
    if (!window.confirm(`Delete "${destination.name}"? Its dead letters stay in Kafka.`)) return;
    await api(`${API}/destinations/${destination.id}`, { method: "DELETE" });
    await refresh();
  }

  function openReplay(destination) {
    $("replay").dataset.id = destination.id;
    $("replay-title").textContent = `Replay ${destination.name}`;
    $("replay-reply").textContent = "";
    const hour = new Date(Date.now() - 3600e3);
    $("replay-from").value = toLocalInput(hour.toISOString());
    $("replay").hidden = false;
  }

  async function replay(event) {
    event.preventDefault();
    const id = $("replay").dataset.id;
    $("replay-reply").textContent = "Moving the destination back…";
    try {
      const result = await api(`${API}/destinations/${id}/replay`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from: fromLocalInput($("replay-from").value) }),
      });
      $("replay-reply").textContent = `${result.events.toLocaleString()} events will be delivered again.`;
      await refresh();
    } catch (error) {
      $("replay-reply").textContent = error.message;
    }
  }

  async function openLetters(destination, cursor = null) {
    s.letters = destination;
    $("letters-title").textContent = `Dead letters of ${destination.name}`;
    $("redrive").hidden = !s.admin;
    $("redrive-reply").textContent = "";
    const params = new URLSearchParams({ limit: "50" });
    if (cursor) params.set("cursor", cursor);
    const page = await api(`${API}/destinations/${destination.id}/dead-letters?${params}`);
    const body = $("letters-body");
    if (!cursor) body.replaceChildren();
    for (const item of page.items) {
      const event = typeof item.event === "object" && item.event ? item.event : {};
      body.append(el("tr", {},
        el("td", {}, friendlyTime(item.dead_lettered_at)),
        el("td", {}, event.event_key || "—", el("br"), el("small", { class: "muted mono" }, event.event_id || "")),
        el("td", {}, item.reason),
        el("td", {}, [item.platform_status && `HTTP ${item.platform_status}`, item.platform_code, item.platform_reply].filter(Boolean).join(" · ") || "—")));
    }
    $("letters-empty").hidden = body.children.length > 0;
    const more = $("letters-more");
    more.hidden = !page.next_cursor;
    more.onclick = () => openLetters(destination, page.next_cursor);
    $("letters").hidden = false;
  }

  async function redrive() {
    $("redrive-reply").textContent = "Re-sending…";
    try {
      const result = await api(`${API}/destinations/${s.letters.id}/dead-letters/redrive`, { method: "POST" });
      $("redrive-reply").textContent = `${result.redriven} re-sent: ${result.delivered} delivered, ` +
        `${result.dead_lettered_again} refused again${result.remaining ? `, ${result.remaining} left` : ""}.`;
    } catch (error) {
      $("redrive-reply").textContent = error.message;
    }
  }

  function bind() {
    $("setup-form").addEventListener("submit", save);
    // A field's error goes as soon as the field is edited.
    $("setup-form").addEventListener("input", (event) => {
      const holder = event.target.closest(".field");
      const error = holder && holder.querySelector(".field-error");
      if (error) error.textContent = "";
    });
    $("send-test").addEventListener("click", sendTest);
    for (const id of ["setup", "replay", "letters"]) {
      $(`${id}-close`).addEventListener("click", () => { $(id).hidden = true; });
    }
    $("replay-form").addEventListener("submit", replay);
    $("redrive").addEventListener("click", redrive);
    $("channel-form").addEventListener("submit", addChannel);
    $("secret-notice-done").addEventListener("click", () => {
      $("secret-notice-value").textContent = "";
      $("secret-notice").hidden = true;
    });
  }

  // ---- notification channels (admins) ------------------------------------------------------
  async function drawChannels() {
    $("notifications").hidden = !s.admin;
    if (!s.admin) return;
    const channels = await api(`${API}/notification-channels`);
    const rows = $("channels-body");
    rows.replaceChildren();
    for (const c of channels) {
      let where = c.settings.url;
      try { where = new URL(c.settings.url).host; } catch (_) { /* shown as saved */ }
      rows.append(el("tr", { "data-id": c.id },
        el("td", {}, el("strong", {}, c.name)),
        el("td", { class: "mono" }, where),
        el("td", { class: "actions" },
          action("Send test", () => testChannel(c)),
          action("Remove", () => removeChannel(c), { class: "link danger" }))));
    }
  }

  async function addChannel(event) {
    event.preventDefault();
    const reply = $("channel-reply");
    reply.className = "test-reply";
    try {
      const made = await api(`${API}/notification-channels`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("channel-name").value.trim(), settings: { url: $("channel-url").value.trim() } }),
      });
      reply.textContent = "";
      showSecret(made);
      $("channel-url").value = "";
      await drawChannels();
    } catch (error) {
      reply.className = "test-reply failed";
      reply.textContent = error.message;
    }
  }

  async function testChannel(channel) {
    const reply = $("channel-reply");
    const result = await api(`${API}/notification-channels/${channel.id}/test`, { method: "POST" });
    reply.className = `test-reply ${result.ok ? "ok" : "failed"}`;
    reply.textContent = result.ok ? `${channel.name}: delivered` : `${channel.name}: not delivered (${result.message})`;
  }

  async function removeChannel(channel) {
    if (!window.confirm(`Remove the notification channel "${channel.name}"?`)) return;
    await api(`${API}/notification-channels/${channel.id}`, { method: "DELETE" });
    await drawChannels();
  }

  async function show(who) {
    s.admin = who.role === "admin";
    if (!s.types.length) {
      s.types = await api(`${API}/destination-types`);
      for (const type of s.types) s.byPlatform[type.platform] = type;
    }
    drawCards();
    await refresh();
    await drawChannels();
    clearInterval(s.timer);
    s.timer = setInterval(() => { if (!$("stream-tab").hidden) refresh().catch(() => {}); }, 3000);
  }

  return { bind, show };
})();
