// The viewer's live half: follow /share/<id>/events and put each item's server-rendered,
// sanitized fragment in its place; fetch a long share's later messages as the reader nears the
// end; the theme and diff-view switches. Text from the share only ever reaches the page through
// HTML built by the server's escaping templates, or textContent.
(() => {
  "use strict";
  const root = document.documentElement;

  // theme: the reader's setting unless they chose one here
  const themeButton = document.getElementById("theme");
  const dark = () => (root.dataset.theme ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")) === "dark";
  function showTheme() {
    if (!themeButton) return;
    themeButton.setAttribute("aria-pressed", String(dark()));
    themeButton.textContent = dark() ? "Light theme" : "Dark theme";
  }
  try { const t = localStorage.getItem("theme"); if (t === "light" || t === "dark") root.dataset.theme = t; } catch { /* storage off */ }
  if (themeButton) {
    themeButton.hidden = false;
    themeButton.addEventListener("click", () => {
      root.dataset.theme = dark() ? "light" : "dark";
      try { localStorage.setItem("theme", root.dataset.theme); } catch { /* storage off */ }
      showTheme();
    });
    showTheme();
  }

  // diffs: unified as rendered, or split (old | new) built from the same rows
  const diffButton = document.getElementById("diff-mode");
  let split = false;
  function splitTable(table) {
    const out = document.createElement("table");
    out.className = "diff diff-split";
    const cols = document.createElement("colgroup");
    for (const cls of ["ln", "", "ln", ""]) { const c = document.createElement("col"); if (cls) c.className = cls; cols.append(c); }
    out.append(cols);
    const body = document.createElement("tbody");
    const cell = (src, cls) => {
      const td = src ? src.cloneNode(true) : document.createElement("td");
      if (!src) td.className = cls;
      return td;
    };
    const row = (kind, left, right) => {
      const tr = document.createElement("tr");
      tr.className = kind;
      tr.append(cell(left?.cells[0], "ln"), cell(left?.cells[2], "src empty"), cell(right?.cells[1], "ln"), cell(right?.cells[2], "src empty"));
      if (left && right && left !== right) { tr.cells[1].classList.add("del"); tr.cells[3].classList.add("add"); }
      else if (left && !right) tr.cells[1].classList.add("del");
      else if (right && !left) tr.cells[3].classList.add("add");
      body.append(tr);
    };
    const rows = [...table.tBodies[0].rows];
    for (let i = 0; i < rows.length;) {
      const r = rows[i];
      if (r.classList.contains("hunk")) {
        const tr = document.createElement("tr");
        tr.className = "hunk";
        const td = r.cells[0].cloneNode(true);
        td.colSpan = 4;
        tr.append(td);
        body.append(tr);
        i++;
      } else if (r.classList.contains("ctx")) {
        row("ctx", r, r);
        i++;
      } else {
        const dels = [], adds = [];
        while (i < rows.length && rows[i].classList.contains("del")) dels.push(rows[i++]);
        while (i < rows.length && rows[i].classList.contains("add")) adds.push(rows[i++]);
        for (let k = 0; k < Math.max(dels.length, adds.length); k++) row("change", dels[k], adds[k]);
      }
    }
    out.append(body);
    return out;
  }
  function applyDiffMode(scope) {
    document.body.classList.toggle("split", split);
    if (!split) return;
    for (const t of scope.querySelectorAll("table.diff:not(.diff-split)")) {
      if (t.nextElementSibling?.classList.contains("diff-split")) continue;
      t.after(splitTable(t));
    }
  }
  if (diffButton) {
    diffButton.hidden = false;
    diffButton.addEventListener("click", () => {
      split = !split;
      diffButton.setAttribute("aria-pressed", String(split));
      applyDiffMode(document);
    });
  }

  const main = document.getElementById("share");
  if (!main) return;
  const status = document.getElementById("status");
  const messages = document.getElementById("messages");
  const say = (text) => { status.textContent = text; };

  // A long share: messages from `next` on are not on the page yet; live items for them wait in
  // `pending` (newest per key) until their messages are fetched.
  let next = main.dataset.next ?? null;
  const pending = new Map();
  const loaded = (mid) => next === null || mid < next;
  let loading = null;
  function loadMore() {
    if (next === null) return Promise.resolve();
    if (loading) return loading;
    const from = next;
    loading = fetch(`${location.pathname}?from=${encodeURIComponent(from)}`, { headers: { accept: "application/json" } })
      .then((r) => { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then((chunk) => {
        if (next !== from) return;
        const t = document.createElement("template");
        t.innerHTML = chunk.html;
        for (const el of [...t.content.children]) {
          el.dataset.seq = String(chunk.seq); // what it holds already (appends up to it are in)
          const existing = document.getElementById(el.id);
          if (existing) existing.replaceWith(el); else messages.append(el);
        }
        next = chunk.next ?? null;
        applyDiffMode(messages);
        for (const [key, u] of pending) {
          if (loaded(u.mid)) { pending.delete(key); if (u.seq > chunk.seq) apply(u); }
        }
        if (next === null) document.getElementById("more")?.remove();
      })
      .then(() => {
        loading = null;
        // still near the end (the observer only reports changes): bring the next ones too
        const more = document.getElementById("more");
        if (more && more.getBoundingClientRect().top < innerHeight + 1500) loadMore();
      })
      .catch(() => { loading = null; say("could not load more messages; scroll to retry"); });
    return loading;
  }
  const more = document.getElementById("more");
  if (more && typeof IntersectionObserver !== "undefined") {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Load more messages";
    button.addEventListener("click", () => loadMore());
    more.replaceChildren(button);
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); }, { rootMargin: "1500px" }).observe(more);
  }
  // the prompts' navigation: fetch until the target message is on the page
  document.getElementById("nav")?.addEventListener("click", async (e) => {
    const a = e.target.closest?.("a[data-target]");
    if (!a) return;
    e.preventDefault();
    const id = `m/${a.dataset.target}`;
    while (!document.getElementById(id) && next !== null) {
      const before = next;
      await loadMore();
      if (next === before) break;
    }
    const el = document.getElementById(id);
    if (el) { el.scrollIntoView(); history.replaceState(null, "", `#${id}`); }
  });

  function insertSorted(parent, el) {
    const id = el.dataset.id;
    for (const child of parent.children) {
      if (child !== el && child.dataset.id > id) { parent.insertBefore(el, child); return; }
    }
    parent.appendChild(el);
  }

  function article(mid) {
    let el = document.getElementById(`m/${mid}`);
    if (el) return el;
    el = document.createElement("article");
    el.className = "message role-other";
    el.id = `m/${mid}`;
    el.dataset.id = mid;
    const head = document.createElement("div");
    head.className = "msg-head";
    head.id = `h/${mid}`;
    const parts = document.createElement("div");
    parts.className = "parts";
    parts.id = `ps/${mid}`;
    el.append(head, parts);
    insertSorted(messages, el);
    return el;
  }

  function part(mid, pid) {
    const id = `p/${mid}/${pid}`;
    let el = document.getElementById(id);
    if (el) return el;
    article(mid);
    el = document.createElement("div");
    el.id = id;
    el.dataset.id = pid;
    insertSorted(document.getElementById(`ps/${mid}`), el);
    return el;
  }

  // Replaces an element's content in place; the reader's view stays where it was, unless they
  // were at the bottom: then it follows the growing end.
  function replaceKeepingView(el, html, after) {
    const atBottom = innerHeight + scrollY >= document.documentElement.scrollHeight - 4;
    const top = el.getBoundingClientRect().top;
    const oldHeight = el.getBoundingClientRect().height;
    el.innerHTML = html;
    after?.();
    if (atBottom) { scrollTo(0, document.documentElement.scrollHeight); return; }
    if (top < 0) scrollBy(0, el.getBoundingClientRect().height - oldHeight);
  }

  // a new prompt joins the navigation, named by its first words (as text)
  function navigate(mid) {
    const list = document.querySelector("#nav ol");
    const el = document.getElementById(`m/${mid}`);
    if (!list || !el?.classList.contains("role-user") || list.querySelector(`a[data-target="${CSS.escape(mid)}"]`)) return;
    const words = el.querySelector(".part-text")?.textContent.trim().replace(/\s+/g, " ");
    if (!words) return;
    const a = document.createElement("a");
    a.href = `#m/${mid}`;
    a.dataset.target = mid;
    a.textContent = words.length > 80 ? `${words.slice(0, 80)}…` : words;
    const li = document.createElement("li");
    li.append(a);
    const after = [...list.querySelectorAll("a[data-target]")].find((x) => x.dataset.target > mid);
    if (after) list.insertBefore(li, after.parentElement); else list.append(li);
  }

  function apply(u) {
    main.dataset.seq = String(Math.max(Number(main.dataset.seq || "0"), u.seq));
    if ((u.kind === "message" || u.kind === "part") && !loaded(u.mid)) {
      pending.set(u.kind === "part" ? `p/${u.mid}/${u.pid}` : `h/${u.mid}`, u);
      return;
    }
    switch (u.kind) {
      case "session":
        document.getElementById("session").innerHTML = u.html;
        document.title = `${u.title} · opencode share`;
        break;
      case "message": {
        const el = article(u.mid);
        el.className = `message role-${u.role}`;
        replaceKeepingView(document.getElementById(`h/${u.mid}`), u.html);
        navigate(u.mid);
        break;
      }
      case "part": {
        const el = part(u.mid, u.pid);
        // keep a folded or unfolded <details> as the reader left it
        const open = [...el.querySelectorAll("details")].map((d) => d.open);
        el.className = `part part-${u.class}`;
        replaceKeepingView(el, u.html, () => {
          el.querySelectorAll("details").forEach((d, i) => { if (i < open.length) d.open = open[i]; });
          applyDiffMode(el);
          if (u.tail) tail(el).append(u.tail); // text appended while it waited
        });
        navigate(u.mid);
        break;
      }
      case "session_diff": {
        const diffs = document.getElementById("diffs");
        replaceKeepingView(diffs, u.html, () => applyDiffMode(diffs));
        break;
      }
      case "model":
        document.getElementById("models").innerHTML = u.html;
        break;
    }
  }

  // A streamed text part's new text (the server sends an `append` only to a stream that got
  // the version it extends): added in place as plain text after the rendered text, until the
  // part's next whole item renders it all. A part still waiting in `pending` keeps it as its tail.
  const BLOCKS = new Set(["P", "UL", "OL", "LI", "PRE", "CODE", "BLOCKQUOTE", "H1", "H2", "H3", "H4", "H5", "H6"]);
  function tail(el) {
    let t = el.querySelector(".live-tail");
    if (!t) {
      t = document.createElement("span");
      t.className = "live-tail";
      // at the end of the text's last block, so it reads on as the same paragraph
      const texts = el.querySelectorAll(".markdown");
      const last = texts[texts.length - 1];
      let at = last ?? el;
      while (at.lastElementChild && BLOCKS.has(at.lastElementChild.tagName)) at = at.lastElementChild;
      // the rendered text ended in whitespace that markdown dropped: keep one space
      if (last?.dataset.trail) t.textContent = " ";
      at.append(t);
    }
    return t;
  }

  function appendText(u) {
    main.dataset.seq = String(Math.max(Number(main.dataset.seq || "0"), u.seq));
    const key = `p/${u.mid}/${u.pid}`;
    const waiting = pending.get(key);
    if (waiting) {
      waiting.tail = (waiting.tail ?? "") + u.text;
      waiting.seq = u.seq;
      return;
    }
    const el = document.getElementById(key);
    const held = Number(document.getElementById(`m/${u.mid}`)?.dataset.seq ?? "0");
    if (!el || held >= u.seq) return;
    const atBottom = innerHeight + scrollY >= document.documentElement.scrollHeight - 4;
    tail(el).append(u.text);
    if (atBottom) scrollTo(0, document.documentElement.scrollHeight);
  }

  if (typeof EventSource === "undefined") return;
  // under the server's --base-path (data-base), the sub-path a reverse proxy serves it at
  const source = new EventSource(`${main.dataset.base || ""}/share/${encodeURIComponent(main.dataset.id)}/events?after=${Number(main.dataset.seq || "0")}`);
  source.addEventListener("open", () => say("live"));
  source.addEventListener("error", () => say("reconnecting…"));
  source.addEventListener("item", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("append", (e) => appendText(JSON.parse(e.data)));
  source.addEventListener("deleted", () => {
    source.close();
    messages.replaceChildren();
    pending.clear();
    next = null;
    document.getElementById("more")?.remove();
    document.getElementById("diffs").replaceChildren();
    document.getElementById("session").textContent = "This share was deleted.";
    say("deleted");
  });
})();
