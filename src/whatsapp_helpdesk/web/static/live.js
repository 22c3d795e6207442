// Keeps the page's [data-live] sections up to date without a reload (issue 6): every few
// seconds the page is fetched again and each live section whose HTML changed is swapped in.
// No build step, no framework; the page works the same without it (post/redirect/get).
(function () {
  "use strict";
  const EVERY_MS = 3000;

  // A section the user is working in or reading is left as it is: a focused control, an
  // opened "why" panel, selected text.
  function inUse(section) {
    const active = document.activeElement;
    if (active && active !== document.body && section.contains(active)) return true;
    if (section.querySelector("details[open]")) return true;
    const selection = window.getSelection();
    return Boolean(selection && !selection.isCollapsed && section.contains(selection.anchorNode));
  }

  async function refresh() {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(window.location.href, {cache: "no-store", redirect: "manual",
                                                    headers: {"X-Live-Refresh": "1"}});
    } catch (error) {
      return; // the service is restarting: try again at the next tick
    }
    if (!response.ok) return; // signed out, or the page moved: leave the page as it is
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const section of document.querySelectorAll("[data-live][id]")) {
      if (inUse(section)) continue;
      const next = fresh.getElementById(section.id);
      if (next && next.innerHTML !== section.innerHTML) section.innerHTML = next.innerHTML;
    }
  }
  setInterval(refresh, EVERY_MS);
})();
