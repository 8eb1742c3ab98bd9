// The album page (its copy and Share buttons are share.js's): the time in the reader's own
// time zone, and Delete for the browser that made the album (it kept the album's delete
// token) or an admin's browser; with "its pictures too", the pictures go as well.
"use strict";
(() => {
  const article = document.querySelector(".album[data-album]");
  if (!article) return;
  const token = article.dataset.album;

  const time = document.getElementById("uploaded");
  const when = time ? new Date(time.dateTime) : null;
  if (when && !Number.isNaN(when.getTime())) {
    time.textContent = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(when);
    time.title = time.dateTime;
  }

  // A link made by an upload (this page with #delete=<album delete token>) hands this browser
  // the token; it leaves the address bar at once, so it is not shared by accident.
  const key = `kitteh:album-delete:${token}`;
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("delete");
  if (fromLink) {
    try { localStorage.setItem(key, fromLink); } catch { /* storage disabled */ }
    history.replaceState(null, "", location.pathname + location.search);
  }
  let secret = fromLink;
  try { secret = localStorage.getItem(key) || fromLink; } catch { /* storage disabled */ }
  const owner = document.getElementById("owner");
  const button = document.getElementById("delete");
  const withPictures = document.getElementById("delete-pictures");
  const dialog = document.getElementById("confirm-delete");
  const problem = document.getElementById("delete-error");
  if (secret) {
    owner.hidden = false;
  } else {
    let uploadKey = null;
    try { uploadKey = localStorage.getItem("kitteh:upload-key"); } catch { /* storage disabled */ }
    if (uploadKey) {
      fetch("/api/keys/me", { headers: { Authorization: `Bearer ${uploadKey}`, Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : null))
        .then((me) => {
          if (!me || !me.admin) return;
          secret = uploadKey;
          owner.querySelector("p").textContent = `You moderate this Kitteh (admin key “${me.name}”), so you can delete this album.`;
          owner.hidden = false;
        })
        .catch(() => {});
    }
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

  function show(message) {
    problem.textContent = message;
    problem.hidden = false;
    button.disabled = false;
  }

  async function remove() {
    button.disabled = true;
    const query = withPictures.checked ? "?images=1" : "";
    let response;
    try {
      response = await fetch(`/api/albums/${encodeURIComponent(token)}${query}`, {
        method: "DELETE", headers: { Authorization: `Bearer ${secret}` },
      });
    } catch {
      show("The connection was lost. Try again.");
      return;
    }
    if (response.status === 204) {
      try { localStorage.removeItem(key); } catch { /* storage disabled */ }
      try { sessionStorage.setItem("kitteh:notice", "The album was deleted."); } catch { /* no notice */ }
      location.replace("/");
    } else if (response.status === 403) {
      owner.querySelector("p").textContent = "This browser's delete key does not match this album any more.";
      button.hidden = true;
      show("Nothing was deleted.");
    } else {
      show("Kitteh could not delete it right now. Try again in a moment.");
    }
  }
})();
