// What the browser hands the page when a person drops a file on it or pastes one: the same
// events with a DataTransfer holding a File.
({ kind, target, base64, name, type }) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const element = document.querySelector(target);
  const options = { dataTransfer: data, clipboardData: data, bubbles: true, cancelable: true };
  const events = {
    enter: [new DragEvent("dragenter", options), new DragEvent("dragover", options)],
    drop: [new DragEvent("drop", options)],
    paste: [new ClipboardEvent("paste", options)],
  }[kind];
  return events.map((event) => element.dispatchEvent(event));
}
