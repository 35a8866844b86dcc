// The viewer's live half: follow /share/<id>/events and put each item's server-rendered,
// sanitized fragment in its place. Text from the share only ever reaches the page through
// those fragments (built by the server's escaping template) or textContent.
(() => {
  "use strict";
  const main = document.getElementById("share");
  if (!main || typeof EventSource === "undefined") return;
  const status = document.getElementById("status");
  const messages = document.getElementById("messages");
  const after = Number(main.dataset.seq || "0");
  const url = `/share/${encodeURIComponent(main.dataset.id)}/events?after=${after}`;
  const source = new EventSource(url);
  const say = (text) => { status.textContent = text; };

  function insertSorted(parent, el) {
    const id = el.dataset.id;
    for (const child of parent.children) {
      if (child.dataset.id > id) { parent.insertBefore(child === el ? child.nextSibling : el, child); return; }
    }
    parent.appendChild(el);
  }

  function article(mid) {
    let el = document.getElementById(`m-${mid}`);
    if (el) return el;
    el = document.createElement("article");
    el.className = "message role-other";
    el.id = `m-${mid}`;
    el.dataset.id = mid;
    const head = document.createElement("div");
    head.className = "msg-head";
    head.id = `h-${mid}`;
    const parts = document.createElement("div");
    parts.className = "parts";
    parts.id = `ps-${mid}`;
    el.append(head, parts);
    insertSorted(messages, el);
    return el;
  }

  function part(mid, pid) {
    const id = `p-${mid}-${pid}`;
    let el = document.getElementById(id);
    if (el) return el;
    article(mid);
    el = document.createElement("div");
    el.id = id;
    el.dataset.id = pid;
    insertSorted(document.getElementById(`ps-${mid}`), el);
    return el;
  }

  function apply(u) {
    switch (u.kind) {
      case "session":
        document.getElementById("session").innerHTML = u.html;
        document.title = `${u.title} · opencode share`;
        break;
      case "message": {
        const el = article(u.mid);
        el.className = `message role-${u.role}`;
        document.getElementById(`h-${u.mid}`).innerHTML = u.html;
        break;
      }
      case "part": {
        const el = part(u.mid, u.pid);
        // keep a folded or unfolded <details> as the reader left it
        const open = [...el.querySelectorAll("details")].map((d) => d.open);
        el.className = `part part-${u.class}`;
        el.innerHTML = u.html;
        el.querySelectorAll("details").forEach((d, i) => { if (i < open.length) d.open = open[i]; });
        break;
      }
      case "session_diff":
        document.getElementById("diffs").innerHTML = u.html;
        break;
      case "model":
        document.getElementById("models").innerHTML = u.html;
        break;
    }
    main.dataset.seq = String(u.seq);
  }

  source.addEventListener("open", () => say("live"));
  source.addEventListener("error", () => say("reconnecting…"));
  source.addEventListener("item", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("deleted", () => {
    source.close();
    messages.replaceChildren();
    document.getElementById("diffs").replaceChildren();
    document.getElementById("session").textContent = "This share was deleted.";
    say("deleted");
  });
})();
