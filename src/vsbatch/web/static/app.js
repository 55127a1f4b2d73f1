// vsbatch web: follow the live counters (server-sent events) and write them into the page.
// Values are written with textContent and properties only: data never becomes markup.
"use strict";
(function () {
  const live = document.getElementById("live");
  const say = (text) => { if (live) live.textContent = text; };

  function setText(root, field, value) {
    for (const el of root.querySelectorAll('[data-field="' + field + '"]')) {
      el.textContent = String(value);
    }
  }

  const listed = document.getElementById("batches");
  const newer = document.getElementById("new-batches");

  function showBatch(b) {
    const shown = [...document.querySelectorAll("[data-batch]")].some((r) => r.dataset.batch === b.id);
    if (listed && newer && !shown) newer.hidden = false;
    for (const root of document.querySelectorAll("[data-batch]")) {
      if (root.dataset.batch !== b.id) continue;
      setText(root, "terminal", b.terminal);
      setText(root, "total", b.total);
      setText(root, "state", b.state);
      setText(root, "rate", b.rate);
      for (const [outcome, n] of Object.entries(b.counts)) setText(root, "count-" + outcome, n);
      for (const bar of root.querySelectorAll('[data-field="progress"]')) {
        bar.max = Math.max(b.total, 1);
        bar.value = b.terminal;
      }
    }
  }

  function showAccounts(accounts) {
    for (const a of accounts) {
      for (const li of document.querySelectorAll("[data-account]")) {
        if (li.dataset.account !== a.account) continue;
        setText(li, "rate", a.rate);
        if (a.current !== null) setText(li, "current", a.current);
      }
    }
  }

  let ticks = 0;
  const source = new EventSource("/events");
  source.addEventListener("counters", (event) => {
    const data = JSON.parse(event.data);
    data.batches.forEach(showBatch);
    showAccounts(data.accounts);
    const workers = document.getElementById("workers");
    if (workers) workers.textContent = String(data.workers);
    ticks += 1;
    document.body.dataset.ticks = String(ticks);
    say("live: updated " + new Date().toLocaleTimeString());
  });
  source.addEventListener("trouble", (event) => say("live: " + JSON.parse(event.data).error));
  source.onerror = () => say("live: reconnecting");
})();
