// Copy buttons, and Delete for the browser that uploaded the image (it holds the token).
"use strict";
(() => {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const url = new URL(button.dataset.copy, location.href).href;
      const label = button.textContent;
      try { await navigator.clipboard.writeText(url); button.textContent = "Copied!"; }
      catch { window.prompt("Copy this link:", url); }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
  const article = document.querySelector("[data-token]");
  const remove = document.getElementById("delete");
  if (!article || !remove) return;
  const key = `kitteh:delete:${article.dataset.token}`;
  const token = localStorage.getItem(key);
  if (!token) return;
  remove.hidden = false;
  remove.addEventListener("click", async () => {
    if (!window.confirm("Delete this image for everyone?")) return;
    const response = await fetch(`/api/images/${article.dataset.token}`, {
      method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 204) { localStorage.removeItem(key); location.href = "/"; }
    else remove.textContent = "Delete failed";
  });
})();
