// The home page: drag and drop, paste and several files at once, each with a real progress
// bar (the browser's upload progress events) and an answer in plain words. Without this
// script the form still posts one file to /upload and lands on its page.
"use strict";
(() => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("file");
  const list = document.getElementById("upload-list");
  const grid = document.getElementById("grid");
  const rowTemplate = document.getElementById("upload-row");
  const tileTemplate = document.getElementById("tile-template");
  const PARALLEL = 3; // uploads on the wire at once; the rest wait their turn
  const olderPage = new URLSearchParams(location.search).has("before");
  const unlisted = document.getElementById("unlisted");
  const expiresIn = document.getElementById("expires-in");

  // ---- the upload key (KITTEH_UPLOADS=keys): asked once, then kept in this browser ---------

  const KEY_STORE = "kitteh:upload-key";
  const keyInput = document.getElementById("upload-key");
  const keyRow = document.getElementById("key-row");
  const forgetKey = document.getElementById("forget-key");
  const readKey = () => { try { return localStorage.getItem(KEY_STORE); } catch { return null; } };
  function showKeyField(show) {
    if (!keyInput) return;
    keyInput.hidden = !show;
    keyInput.required = show;
    keyRow.querySelector("label").hidden = !show;
    keyRow.querySelector(".key-help").hidden = !show;
    forgetKey.hidden = show;
  }
  function keepKey(key) { try { localStorage.setItem(KEY_STORE, key); } catch { /* private mode */ } showKeyField(false); }
  function dropKey() { try { localStorage.removeItem(KEY_STORE); } catch { /* private mode */ } showKeyField(true); }
  // The key sent with uploads: the one kept, else the one typed; null when none is needed.
  const currentKey = () => readKey() || (keyInput && keyInput.value.trim()) || null;
  // The ShareX file carries the key when asked with one: fetch it with the kept key.
  const sharex = document.getElementById("sharex-link");
  if (sharex && keyInput) {
    sharex.addEventListener("click", async (event) => {
      const key = readKey();
      if (!key) return; // no key kept yet: the plain file, without one
      event.preventDefault();
      const response = await fetch(sharex.href, { headers: { Authorization: `Bearer ${key}` } });
      if (!response.ok) return;
      const save = document.createElement("a");
      save.href = URL.createObjectURL(await response.blob());
      save.download = "kitteh.sxcu";
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(save.href), 10_000);
    });
  }
  if (keyInput) {
    showKeyField(!readKey());
    forgetKey.addEventListener("click", () => { dropKey(); keyInput.value = ""; keyInput.focus(); });
  }

  // The limits in force, as the server publishes them (GET /api/limits); the numbers the
  // page was rendered with stand in if that request fails.
  const limits = {
    max_upload_bytes: Number(form.dataset.maxBytes),
    max_side: Number(form.dataset.maxSide),
    max_pixels: Number(form.dataset.maxPixels),
    max_frames: Number(form.dataset.maxFrames),
    max_video_bytes: Number(form.dataset.maxVideoBytes),
    max_video_seconds: Number(form.dataset.maxVideoSeconds),
  };
  // The formats Kitteh accepts, in words, from the server's format registry.
  const formats = form.dataset.formats;
  const limitsKnown = fetch("/api/limits", { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : null))
    .then((published) => { if (published) Object.assign(limits, published); })
    .catch(() => {});

  // ---- words ----------------------------------------------------------------------------

  const oneDecimal = (x) => String(Math.round(x * 10) / 10);
  function size(bytes) {
    for (const [unit, scale] of [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]]) {
      if (bytes >= scale) return `${oneDecimal(bytes / scale)} ${unit}`;
    }
    return `${bytes} bytes`;
  }
  const count = (n) => Number(n).toLocaleString("en");
  const CODE_BY_STATUS = { 400: "bad_request", 401: "unauthorized", 408: "too_slow", 413: "too_large", 415: "unsupported_image",
                           422: "over_limits", 429: "rate_limited", 502: "busy", 503: "busy", 504: "busy",
                           507: "storage_full" };
  const RETRYABLE = new Set(["too_slow", "rate_limited", "busy", "network", "unauthorized", "no_key"]);

  function message(code, serverMessage) {
    switch (code) {
      case "unauthorized": return "This upload key was not accepted (mistyped or revoked). Paste a valid key, then try again.";
      case "no_key": return "Paste your upload key first: this Kitteh takes uploads with a key only.";
      case "too_large": return `Too large: the limit is ${size(limits.max_upload_bytes)}.`;
      case "video_too_large": return `Too large: the limit for a video is ${size(limits.max_video_bytes)}.`;
      case "unsupported_image": return `Not a picture or video Kitteh can read. Choose a ${formats} file.`;
      case "over_limits":
        return `Too many pixels: the limit is ${count(limits.max_side)} px a side, ` +
               `${oneDecimal(limits.max_pixels / 1e6)} megapixels and ${count(limits.max_frames)} frames.`;
      case "rate_limited": return "Too many uploads in a short time. Wait a minute, then try again.";
      case "busy": return "Kitteh is busy right now. Try again in a moment.";
      case "storage_full": return "Kitteh's storage is full, so this picture was not kept. Try again later.";
      case "too_slow": return "The upload was too slow and timed out. Try again.";
      case "network": return "The connection was lost. Check your network and try again.";
      case "empty": return "This file is empty.";
      case "not_image": return `Not a picture or video: choose a ${formats} file.`;
      case "link": return serverMessage || "Kitteh could not fetch that link.";
      default: return serverMessage || "The upload did not work. Try again.";
    }
  }

  // ---- one row per file ------------------------------------------------------------------

  function addRow(file) {
    const li = rowTemplate.content.firstElementChild.cloneNode(true);
    const part = (selector) => li.querySelector(selector);
    const ui = {
      li, bar: part(".upload-bar"), message: part(".upload-message"), progress: part(".upload-progress"),
      copy: part(".copy-link"), retry: part(".retry"), dismiss: part(".dismiss"),
    };
    part(".upload-name").textContent = file.name;
    part(".upload-name").title = file.name;
    part(".upload-size").textContent = size(file.size);
    ui.bar.setAttribute("aria-label", `Upload of ${file.name}`);
    preview(file, part(".upload-thumb img"));
    ui.dismiss.addEventListener("click", () => {
      li.remove();
      if (!list.children.length) list.hidden = true;
      input.focus();
    });
    list.hidden = false;
    list.append(li);
    return ui;
  }

  function preview(file, img) {
    if (!file.type.startsWith("image/")) return;
    const url = URL.createObjectURL(file);
    img.addEventListener("load", () => { img.hidden = false; URL.revokeObjectURL(url); }, { once: true });
    img.addEventListener("error", () => URL.revokeObjectURL(url), { once: true });
    img.src = url;
  }

  function setState(ui, state, text = "") {
    ui.li.dataset.state = state;
    ui.message.textContent = text;
    ui.progress.textContent = "";
  }

  function showProgress(ui, loaded, total) {
    ui.bar.max = total;
    ui.bar.value = loaded;
    ui.li.dataset.loaded = loaded;
    ui.li.dataset.total = total;
    ui.progress.textContent = `${Math.floor((loaded / total) * 100)}% · ${size(loaded)} of ${size(total)}`;
  }

  function fail(ui, code, serverMessage) {
    setState(ui, "error", message(code, serverMessage));
    ui.retry.hidden = !RETRYABLE.has(code);
    ui.dismiss.hidden = false;
  }

  function succeed(ui, image, created, prefix = null) {
    if (!ui.li.dataset.total) showProgress(ui, ui.bar.max, ui.bar.max); // no progress event came
    setState(ui, "done");
    const link = document.createElement("a");
    link.href = image.page_url;
    link.textContent = image.title || image.name;
    ui.message.append(prefix || (created ? "Uploaded as " : "Already here: "), link);
    ui.copy.hidden = false;
    ui.copy.addEventListener("click", async () => {
      const ok = await copyText(new URL(image.page_url, location.href).href);
      const label = ui.copy.querySelector("span");
      label.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(() => { label.textContent = "Copy link"; }, 2000);
    });
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Plain-http sites have no async clipboard: the old way still works there.
      const area = document.createElement("textarea");
      area.value = text;
      area.className = "visually-hidden";
      document.body.append(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch { ok = false; }
      area.remove();
      return ok;
    }
  }

  // ---- the queue -------------------------------------------------------------------------

  const queue = [];
  let running = 0;

  // A video may be larger than a picture (the server tells them apart by their bytes; the
  // browser's type is good enough to refuse early here).
  const isVideo = (file) => file.type.startsWith("video/");

  function check(file) {
    if (file.size === 0) return "empty";
    if (file.type && !file.type.startsWith("image/") && !isVideo(file)) return "not_image";
    if (isVideo(file) && file.size > limits.max_video_bytes) return "video_too_large";
    if (!isVideo(file) && file.size > limits.max_upload_bytes) return "too_large";
    if (keyInput && !currentKey()) return "no_key";
    return null;
  }

  async function enqueue(file, batch = null, index = 0) {
    const ui = addRow(file);
    await limitsKnown;
    const problem = check(file);
    if (problem) {
      if (batch) batch.settle(index, null);
      return fail(ui, problem);
    }
    const job = { file, ui, batch, index };
    ui.retry.addEventListener("click", () => {
      ui.retry.hidden = true;
      ui.dismiss.hidden = true;
      wait(job);
    });
    wait(job);
  }

  function wait(job) {
    setState(job.ui, "queued", "Waiting…");
    queue.push(job);
    pump();
  }

  function pump() {
    while (running < PARALLEL && queue.length) send(queue.shift());
  }

  function send(job) {
    const { file, ui } = job;
    const batch = job.batch;
    job.batch = null; // a retry after the album was made uploads on its own
    const settle = (image) => { if (batch) batch.settle(job.index, image); };
    running += 1;
    setState(ui, "uploading", "Uploading");
    // Options before the file: the server checks them before it stores a byte.
    const data = new FormData();
    if (unlisted && unlisted.checked) data.append("visibility", "unlisted");
    if (expiresIn && expiresIn.value) data.append("expires_in", expiresIn.value);
    data.append("file", file, file.name);
    const key = currentKey();
    if (keyInput && !key) { running -= 1; fail(ui, "no_key"); settle(null); pump(); return; }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    xhr.responseType = "json";
    xhr.setRequestHeader("Accept", "application/json");
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) showProgress(ui, e.loaded, e.total);
    });
    xhr.upload.addEventListener("load", () => {
      if (ui.li.dataset.state === "uploading") setState(ui, "processing", "Sent. Making the sizes…");
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if ((xhr.status === 200 || xhr.status === 201) && body && body.token) {
        if (body.delete_token) remember(body);
        if (keyInput && key) keepKey(key);
        succeed(ui, body, xhr.status === 201);
        if (body.visibility !== "unlisted" && !batch) addTile(body, true);
        settle(body);
      } else {
        if (xhr.status === 401 && keyInput) dropKey();
        const error = (body && body.error) || {};
        fail(ui, error.code || CODE_BY_STATUS[xhr.status] || "unknown", error.message);
        settle(null);
      }
    });
    xhr.addEventListener("error", () => { fail(ui, "network"); settle(null); });
    xhr.addEventListener("loadend", () => { running -= 1; pump(); });
    xhr.send(data);
  }

  function remember(image) {
    // Only this browser can delete the picture: it keeps the token the upload returned.
    try { localStorage.setItem(`kitteh:delete:${image.token}`, image.delete_token); } catch { /* private mode */ }
  }

  function uploadAll(files) {
    const chosen = [...files];
    // Several pictures at once become one album (each keeps its own page too).
    const batch = chosen.length > 1 ? newBatch(chosen.length) : null;
    chosen.forEach((file, index) => enqueue(file, batch, index));
  }

  // ---- albums: one link for a multi-file upload ----------------------------------------------

  function newBatch(size) {
    const images = new Array(size).fill(null);
    let settled = 0;
    const visibility = unlisted && unlisted.checked ? "unlisted" : "public";
    const expires = expiresIn && expiresIn.value ? Number(expiresIn.value) : null;
    return {
      settle(index, image) { // in the order chosen, whichever finishes first
        images[index] = image;
        settled += 1;
        if (settled === size) makeAlbum(images.filter(Boolean), visibility, expires);
      },
    };
  }

  async function makeAlbum(images, visibility, expires) {
    const unique = [...new Map(images.map((i) => [i.token, i])).values()];
    if (unique.length < 2) {
      unique.forEach((image) => { if (image.visibility !== "unlisted") addTile(image, true); });
      return;
    }
    const ui = addRow({ name: `Album of ${unique.length} pictures`, size: 0, type: "" });
    ui.li.classList.add("album-row");
    ui.li.querySelector(".upload-size").textContent = "";
    setState(ui, "processing", "Making the album…");
    const body = { images: unique.map((i) => ({ token: i.token, ...(i.delete_token ? { delete_token: i.delete_token } : {}) })),
                   visibility, ...(expires ? { expires_in: expires } : {}) };
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const key = currentKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    let album = null;
    try {
      response = await fetch("/api/albums", { method: "POST", headers, body: JSON.stringify(body) });
      album = await response.json();
    } catch {
      return fail(ui, "network");
    }
    if (response.status !== 201 || !album.token) {
      const error = (album && album.error) || {};
      return fail(ui, error.code || CODE_BY_STATUS[response.status] || "unknown", error.message);
    }
    try { localStorage.setItem(`kitteh:album-delete:${album.token}`, album.delete_token); } catch { /* private mode */ }
    succeed(ui, album, true, "Album: ");
    if (album.visibility !== "unlisted") addAlbumTile(album);
  }

  // ---- upload from a link --------------------------------------------------------------------

  const link = document.getElementById("link");
  const linkGo = document.getElementById("link-go");

  function fetchLink() {
    const url = link.value.trim();
    if (!url) { link.focus(); return; }
    link.value = "";
    const ui = addRow({ name: url, size: 0, type: "" });
    ui.li.querySelector(".upload-size").textContent = "";
    const key = currentKey();
    if (keyInput && !key) return fail(ui, "no_key");
    setState(ui, "processing", "Fetching the picture…");
    const body = { url };
    if (unlisted && unlisted.checked) body.visibility = "unlisted";
    if (expiresIn && expiresIn.value) body.expires_in = Number(expiresIn.value);
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (key) headers.Authorization = `Bearer ${key}`;
    fetch("/api/images", { method: "POST", headers, body: JSON.stringify(body) })
      .then(async (response) => {
        const answer = await response.json().catch(() => null);
        if ((response.status === 200 || response.status === 201) && answer && answer.token) {
          if (answer.delete_token) remember(answer);
          if (keyInput && key) keepKey(key);
          succeed(ui, answer, response.status === 201);
          if (answer.visibility !== "unlisted") addTile(answer, true);
        } else {
          if (response.status === 401 && keyInput) dropKey();
          const error = (answer && answer.error) || {};
          // A link's refusals say what happened to the link: show the server's words.
          const code = ["fetch_refused", "unreachable", "bad_request"].includes(error.code) ? "link" : error.code;
          fail(ui, code || CODE_BY_STATUS[response.status] || "unknown", error.message);
        }
      })
      .catch(() => fail(ui, "network"));
  }
  if (link && linkGo) {
    linkGo.addEventListener("click", fetchLink);
    link.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); fetchLink(); }
    });
  }

  // ---- a share from the phone's share sheet, waiting for the upload key -----------------------

  const shareForm = document.getElementById("share-form");
  if (shareForm) {
    const wrongKey = new URLSearchParams(location.search).get("key") === "wrong";
    if (wrongKey) dropKey();
    const kept = readKey();
    if (kept && !wrongKey) {
      shareForm.querySelector("#share-key").value = kept;
      shareForm.requestSubmit();
    }
    shareForm.addEventListener("submit", () => {
      const typed = shareForm.querySelector("#share-key").value.trim();
      if (typed && keyInput) keepKey(typed);
    });
  }

  // ---- the newest grid -------------------------------------------------------------------

  function addTile(image, fresh) {
    if (!grid || (fresh && olderPage)) return null;
    if (grid.querySelector(`[data-token="${CSS.escape(image.token)}"]`)) return null;
    const li = tileTemplate.content.firstElementChild.cloneNode(true);
    li.dataset.token = image.token;
    li.querySelector("a").href = image.page_url;
    const img = li.querySelector("img");
    const { tiny } = image.variants;
    // An animation's tile is its tiny still poster only: its large variant moves.
    const large = image.original.frames > 1 ? null : image.variants.large;
    img.srcset = [tiny, large].filter(Boolean).map((v) => `${v.url} ${v.width}w`).join(", ");
    img.width = tiny.width;
    img.height = tiny.height;
    img.alt = image.name;
    img.src = tiny.url;
    li.querySelector(".tile-name").textContent = image.name;
    if (image.kind === "video") {  // as the server draws a video's tile: a play mark
      const mark = document.createElement("span");
      mark.className = "play-mark";
      mark.setAttribute("aria-hidden", "true");
      li.querySelector("a").append(mark);
    }
    document.getElementById("empty").hidden = true;
    if (fresh) {
      li.classList.add("fresh");
      grid.prepend(li);
    } else {
      grid.append(li);
    }
    return li;
  }

  function addAlbumTile(album) {
    const cover = album.images[0];
    if (!cover) return;
    const li = addTile({ ...cover, token: album.token, page_url: album.page_url,
                         name: album.title || album.name }, true);
    if (!li) return;
    li.classList.add("album-tile");
    li.querySelector("img").alt = `${album.title || album.name}, an album of ${album.images.length} pictures`;
    const count = document.createElement("span");
    count.className = "tile-count";
    count.setAttribute("aria-hidden", "true");
    count.textContent = String(album.images.length);
    li.querySelector("a").append(count);
  }

  const more = document.getElementById("more");
  if (more) {
    more.addEventListener("click", async (event) => {
      event.preventDefault();
      if (more.getAttribute("aria-disabled") === "true") return;
      more.setAttribute("aria-disabled", "true");
      more.textContent = "Loading…";
      try {
        // The next page of the grid as the server draws it (albums are one tile each there).
        const response = await fetch(`/?before=${encodeURIComponent(more.dataset.next)}`,
                                     { headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const added = [...doc.querySelectorAll("#grid > li")].filter((li) =>
          !grid.querySelector(`[data-token="${CSS.escape(li.dataset.token)}"]`));
        added.forEach((li) => grid.append(document.adoptNode(li)));
        if (added.length) added[0].querySelector("a").focus({ preventScroll: true });
        const next = doc.getElementById("more");
        const page = { next: next ? next.dataset.next : null };
        if (page.next) {
          more.dataset.next = page.next;
          more.href = `/?before=${encodeURIComponent(page.next)}#recent-title`;
          more.textContent = "Load more";
        } else {
          more.parentElement.remove();
        }
      } catch {
        more.textContent = "Could not load more. Try again";
      } finally {
        more.removeAttribute("aria-disabled");
      }
    });
  }

  // ---- ways in: chooser, drop anywhere, paste ------------------------------------------------

  form.classList.add("enhanced");
  input.multiple = true;
  // The page is drawn for this script from the start (css/nojs.css, in <noscript>, draws it
  // for no script): nothing moves when it starts (CLS 0).
  if (/Mac|iPhone|iPad/.test(navigator.platform)) document.querySelector("#paste-hint kbd").textContent = "⌘";

  input.addEventListener("change", () => {
    uploadAll(input.files);
    input.value = "";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (link && link.value.trim()) fetchLink();
    if (input.files.length) uploadAll(input.files);
    input.value = "";
  });
  form.addEventListener("click", (event) => {
    if (!event.target.closest("a, button, label, input, select")) input.click();
  });

  let depth = 0;
  const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  const endDrag = () => { depth = 0; form.classList.remove("dragging"); };
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    form.classList.add("dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // dropping anywhere on the page uploads, never opens the file
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) endDrag();
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    endDrag();
    uploadAll(event.dataTransfer.files);
  });

  document.addEventListener("paste", (event) => {
    const files = [...((event.clipboardData && event.clipboardData.files) || [])];
    if (!files.length) return;
    event.preventDefault();
    uploadAll(files.map(pastedName));
  });

  function pastedName(file) {
    // Browsers call every pasted screenshot "image.png"; give each its own name.
    if (file.name && file.name !== "image.png") return file;
    const stamp = new Date().toISOString().slice(0, 19).replace("T", "-").replaceAll(":", "");
    const extension = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
    return new File([file], `pasted-${stamp}.${extension}`, { type: file.type });
  }

  // A notice left by the page we came from (the image page after a delete).
  try {
    const notice = sessionStorage.getItem("kitteh:notice");
    if (notice) {
      sessionStorage.removeItem("kitteh:notice");
      const box = document.getElementById("page-notice");
      box.textContent = notice;
      box.hidden = false;
    }
  } catch { /* storage disabled */ }
})();
