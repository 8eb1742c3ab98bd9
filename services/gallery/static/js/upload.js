// Drag-and-drop, paste and multi-file uploads with real progress; the form works without this.
"use strict";
(() => {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file");
  const list = document.getElementById("upload-list");
  const grid = document.getElementById("grid");
  if (!form) return;
  form.classList.add("js");
  const maxBytes = Number(form.dataset.maxBytes);
  const mib = (n) => `${Math.round((n / 1048576) * 10) / 10} MiB`;

  function row(file) {
    const li = document.createElement("li");
    li.className = "upload-item";
    const img = document.createElement("img");
    img.alt = "";
    if (file.type.startsWith("image/")) img.src = URL.createObjectURL(file);
    const body = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = file.name || "pasted image";
    const bar = document.createElement("progress");
    bar.max = file.size || 1; bar.value = 0;
    bar.setAttribute("aria-label", `Uploading ${name.textContent}`);
    const status = document.createElement("div");
    body.append(name, bar, status);
    li.append(img, body);
    list.prepend(li);
    return { li, bar, status };
  }

  function fail(ui, message) {
    ui.status.className = "error";
    ui.status.textContent = message;
    ui.bar.remove();
  }

  function upload(file) {
    const ui = row(file);
    if (file.size > maxBytes) return fail(ui, `Too large: the limit is ${mib(maxBytes)}.`);
    const data = new FormData();
    data.append("file", file, file.name || "pasted.png");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) { ui.bar.max = e.total; ui.bar.value = e.loaded; } });
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status === 200 || xhr.status === 201) {
        ui.bar.value = ui.bar.max;
        if (body.delete_token) localStorage.setItem(`kitteh:delete:${body.token}`, body.delete_token);
        ui.status.className = "done";
        const link = document.createElement("a");
        link.href = body.page_url; link.textContent = body.name;
        ui.status.append(xhr.status === 201 ? "Uploaded: " : "Already here: ", link);
        addTile(body, true);
      } else {
        fail(ui, (body.error && body.error.message) || `Upload failed (${xhr.status}).`);
      }
    });
    xhr.addEventListener("error", () => fail(ui, "The connection failed. Try again."));
    xhr.send(data);
  }

  function addTile(image, first) {
    if (!grid || grid.querySelector(`[data-token="${image.token}"]`)) return;
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = "tile"; li.dataset.token = image.token;
    const a = document.createElement("a"); a.href = image.page_url;
    const img = document.createElement("img");
    const tiny = image.variants.tiny;
    img.src = tiny.url; img.width = tiny.width; img.height = tiny.height;
    img.loading = "lazy"; img.alt = image.name;
    const span = document.createElement("span"); span.textContent = image.name;
    a.append(img, span); li.append(a);
    if (first) grid.prepend(li); else grid.append(li);
  }

  const send = (files) => [...files].forEach(upload);
  input.addEventListener("change", () => { send(input.files); input.value = ""; });
  form.addEventListener("submit", (e) => { e.preventDefault(); send(input.files); });
  ["dragenter", "dragover"].forEach((t) => form.addEventListener(t, (e) => { e.preventDefault(); form.classList.add("dragging"); }));
  ["dragleave", "drop"].forEach((t) => form.addEventListener(t, () => form.classList.remove("dragging")));
  form.addEventListener("drop", (e) => { e.preventDefault(); send(e.dataTransfer.files); });
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData || {}).files || []];
    if (files.length) send(files);
  });

  const more = document.getElementById("more");
  if (more) more.addEventListener("click", async () => {
    more.disabled = true;
    const response = await fetch(`/api/images?limit=24&before=${encodeURIComponent(more.dataset.next)}`);
    const body = await response.json();
    body.images.forEach((image) => addTile(image, false));
    if (body.next) { more.dataset.next = body.next; more.disabled = false; } else more.remove();
  });
})();
