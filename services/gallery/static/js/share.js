// Copy buttons (page link, direct link, Markdown, BBCode, HTML: the same strings as the
// JSON's `embed`) and the Share button (the system share sheet, where there is one) of the
// image and album pages.
"use strict";
(() => {
  const copyStatus = document.getElementById("copy-status");
  if (!copyStatus) return;

  for (const id of ["page-link", "image-link"]) {
    const field = document.getElementById(id);
    if (!field) continue;
    field.value = new URL(field.value, location.href).href;
  }
  document.querySelectorAll(".copy-row input").forEach((field) => {
    field.addEventListener("focus", () => field.select());
  });

  async function copy(field) {
    try {
      await navigator.clipboard.writeText(field.value);
      return true;
    } catch {
      // Plain-http sites have no async clipboard: select the text and use the old command.
      field.focus();
      field.select();
      try { return document.execCommand("copy"); } catch { return false; }
    }
  }

  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const field = document.getElementById(button.dataset.copy);
    const text = button.querySelector(".copy-text");
    const what = button.dataset.what;
    let timer = 0;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const ok = await copy(field);
      text.textContent = ok ? "Copied" : "Press Ctrl+C";
      button.classList.toggle("copied", ok);
      copyStatus.textContent = ok ? `The ${what} is on your clipboard.` : `The ${what} is selected: press Ctrl+C to copy it.`;
      clearTimeout(timer);
      timer = setTimeout(() => {
        text.textContent = "Copy";
        button.classList.remove("copied");
      }, 2000);
    });
  });

  // ---- the system share sheet (Web Share API: phones, some desktops) ------------------------

  const shareButton = document.getElementById("share-button");
  const pageLink = document.getElementById("page-link");
  if (shareButton && pageLink && typeof navigator.share === "function") {
    const title = document.querySelector("h1").textContent.trim();
    shareButton.hidden = false;
    shareButton.addEventListener("click", async () => {
      try {
        await navigator.share({ title, url: pageLink.value });
      } catch { /* dismissed, or not allowed: nothing to do */ }
    });
  }
})();
