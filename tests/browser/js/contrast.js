// WCAG 2 contrast of every visible piece of text against what is really behind it (the
// first opaque background up the tree, with translucent layers blended in).
() => {
  const parse = (value) => {
    const m = value.match(/^rgba?\(([^)]+)\)$/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const luminance = ({ r, g, b }) => {
    const [R, G, B] = [r, g, b].map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const color = parse(getComputedStyle(e).backgroundColor);
      if (color === null) return null;
      if (color.a > 0) layers.push(color);
      if (color.a === 1) break;
    }
    let result = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const problems = [];
  const checked = new Set();
  const candidates = [...document.body.querySelectorAll("*")].filter((e) =>
    e.matches("input[type=text]") ||
    [...e.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim()));
  for (const element of candidates) {
    if (element.closest("[aria-hidden=true], .visually-hidden, script, style, template")) continue;
    if (!element.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const style = getComputedStyle(element);
    const color = parse(style.color);
    const behind = background(element);
    if (color === null || behind === null) { problems.push(`unreadable colours on ${element.outerHTML.slice(0, 80)}`); continue; }
    const fg = over(color, behind);
    const [hi, lo] = [luminance(fg), luminance(behind)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    checked.add(element);
    if (ratio < needed) {
      problems.push(`${ratio.toFixed(2)} < ${needed}: "${(element.value || element.textContent).trim().slice(0, 40)}" (${style.color} on ${JSON.stringify(behind)})`);
    }
  }
  return { checked: checked.size, problems };
}
