// authtrail Privacy tab (admins): each account's retention and the erasures of people.
// Uses api(), el(), $() and API from app.js.
"use strict";

const Privacy = (() => {
  function when(text) {
    return text ? new Date(text).toISOString().replace("T", " ").slice(0, 16) + "Z" : "";
  }

  function reply(id, text, ok) {
    const node = $(id);
    node.className = `test-reply ${ok ? "ok" : "failed"}`;
    node.textContent = text;
  }

  async function drawRetention() {
    const overview = await api(`${API}/retention`);
    $("retention-default").textContent = String(overview.default_days);
    const rows = $("retention-body");
    rows.replaceChildren();
    for (const r of overview.accounts) {
      const remove = el("button", { type: "button", class: "link" }, "Use the default");
      remove.addEventListener("click", async () => {
        await api(`${API}/accounts/${encodeURIComponent(r.account)}/retention`, { method: "DELETE" });
        await drawRetention();
      });
      rows.append(el("tr", { "data-account": r.account },
        el("td", { class: "mono" }, r.account), el("td", { class: "num" }, String(r.days)),
        el("td", {}, r.set_by), el("td", {}, when(r.set_at)), el("td", { class: "actions" }, remove)));
    }
  }

  async function drawErasures() {
    const erasures = await api(`${API}/erasures`);
    const rows = $("erasures-body");
    rows.replaceChildren();
    for (const e of erasures) {
      rows.append(el("tr", { "data-id": e.id },
        el("td", { class: "mono" }, e.subject), el("td", {}, e.account || "every account"),
        el("td", {}, e.requested_by), el("td", {}, when(e.requested_at)),
        el("td", {}, e.state === "applied" ? "Applied" : "Pending"),
        el("td", { class: "num" }, String(e.events)), el("td", { class: "num" }, String(e.dead_letters))));
    }
  }

  async function setRetention(event) {
    event.preventDefault();
    const account = $("retention-account").value.trim();
    try {
      const done = await api(`${API}/accounts/${encodeURIComponent(account)}/retention`, {
        method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ days: Number($("retention-days").value) }),
      });
      reply("retention-reply", `${done.account}: ${done.days} days${done.applied ? "" : " (applying)"}`, true);
      $("retention-account").value = "";
      await drawRetention();
    } catch (error) {
      reply("retention-reply", error.message, false);
    }
  }

  async function erase(event) {
    event.preventDefault();
    const user = $("erasure-user").value.trim();
    const account = $("erasure-account").value.trim();
    const where = account ? ` in account ${account}` : " in every account";
    if (!user || !window.confirm(`Erase ${user}${where}? This cannot be undone.`)) return;
    $("erasure-run").disabled = true;
    try {
      const done = await api(`${API}/erasures`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(account ? { user, account } : { user }),
      });
      reply("erasure-reply", `${done.subject}: ${done.state}, ${done.events} events`, true);
      $("erasure-user").value = "";  // the identifier leaves the page
      await drawErasures();
    } catch (error) {
      reply("erasure-reply", error.message, false);
    } finally {
      $("erasure-run").disabled = false;
    }
  }

  function bind() {
    $("retention-form").addEventListener("submit", setRetention);
    $("erasure-form").addEventListener("submit", erase);
  }

  async function show() {
    await Promise.all([drawRetention(), drawErasures()]);
  }

  return { bind, show };
})();
