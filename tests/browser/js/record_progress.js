// Seen by the test, not by the page: every upload progress event the browser fires.
window.__uploads = [];
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  const record = { file: body instanceof FormData ? body.get("file").name : null, loaded: [], total: 0 };
  window.__uploads.push(record);
  this.upload.addEventListener("progress", (e) => { record.loaded.push(e.loaded); record.total = e.total; });
  return send.call(this, body);
};
