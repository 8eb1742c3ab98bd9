// The image page (its copy and Share buttons are share.js's): the upload time in the reader's
// own time zone, and Delete for the browser that uploaded the picture (it kept the delete
// token in localStorage).
"use strict";
(() => {
  const article = document.querySelector(".kitty[data-token]");
  if (!article) return;
  const { token, name } = article.dataset;
  // ---- the upload time, local --------------------------------------------------------------

  const time = document.getElementById("uploaded");
  const when = time ? new Date(time.dateTime) : null;
  if (when && !Number.isNaN(when.getTime())) {
    const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(when);
    time.textContent = `${local} · ${ago(when)}`;
    time.title = time.dateTime;
  }

  function ago(moment) {
    const seconds = (moment.getTime() - Date.now()) / 1000;
    const words = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
    for (const [unit, length] of [["year", 31536000], ["month", 2592000], ["day", 86400],
                                  ["hour", 3600], ["minute", 60]]) {
      if (Math.abs(seconds) >= length) return words.format(Math.round(seconds / length), unit);
    }
    return "just now";
  }

  // ---- delete, for the uploader's browser only -----------------------------------------------

  // A deletion link (ShareX's DeletionURL: this page with #delete=<delete_token>) hands this
  // browser the token; it leaves the address bar at once, so it is not shared by accident.
  const key = `kitteh:delete:${token}`;
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("delete");
  if (fromLink) {
    try { localStorage.setItem(key, fromLink); } catch { /* storage disabled */ }
    history.replaceState(null, "", location.pathname + location.search);
  }
  let secret = fromLink;
  try { secret = localStorage.getItem(key) || fromLink; } catch { /* storage disabled */ }
  const owner = document.getElementById("owner");
  const button = document.getElementById("delete");
  const dialog = document.getElementById("confirm-delete");
  const problem = document.getElementById("delete-error");
  if (secret) {
    owner.hidden = false;
  } else {
    // An admin's browser (it kept an admin upload key) may delete any picture: ask the
    // server whether the kept key is one; the server decides again on the delete itself.
    let uploadKey = null;
    try { uploadKey = localStorage.getItem("kitteh:upload-key"); } catch { /* storage disabled */ }
    if (!uploadKey) return;
    fetch("/api/keys/me", { headers: { Authorization: `Bearer ${uploadKey}`, Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((me) => {
        if (!me || !me.admin) return;
        secret = uploadKey;
        owner.querySelector("p").textContent = `You moderate this Kitteh (admin key “${me.name}”), so you can delete this picture.`;
        owner.hidden = false;
      })
      .catch(() => {});
  }

  button.addEventListener("click", () => {
    problem.hidden = true;
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "delete") remove();
    else button.focus();
  });

  function forget() {
    if (secret !== readDeleteToken()) return; // an admin key is not this picture's to forget
    try { localStorage.removeItem(key); } catch { /* storage disabled */ }
  }

  function readDeleteToken() {
    try { return localStorage.getItem(key) || fromLink; } catch { return fromLink; }
  }

  function show(message) {
    problem.textContent = message;
    problem.hidden = false;
    button.disabled = false;
  }

  async function remove() {
    button.disabled = true;
    let response;
    try {
      response = await fetch(`/api/images/${encodeURIComponent(token)}`, {
        method: "DELETE", headers: { Authorization: `Bearer ${secret}` },
      });
    } catch {
      show("The connection was lost. Try again.");
      return;
    }
    if (response.status === 204) {
      forget();
      try { sessionStorage.setItem("kitteh:notice", `${name} was deleted.`); } catch { /* no notice */ }
      location.replace("/");
    } else if (response.status === 403 || response.status === 404) {
      forget();
      owner.querySelector("p").textContent = "This browser's delete key does not match this picture any more.";
      button.hidden = true;
      show("Nothing was deleted.");
    } else {
      show("Kitteh could not delete it right now. Try again in a moment.");
    }
  }
})();
