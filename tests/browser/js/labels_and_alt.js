// Every form control named, every image with alt text (empty only where decorative),
// and nothing wider than the screen.
() => {
  const problems = [];
  for (const control of document.querySelectorAll("input, select, textarea, button")) {
    const named = control.labels?.length || control.getAttribute("aria-label") ||
                  control.getAttribute("aria-labelledby") || (control.tagName === "BUTTON" && control.textContent.trim());
    if (!named) problems.push(`unnamed ${control.outerHTML.slice(0, 80)}`);
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`no alt: ${img.outerHTML.slice(0, 80)}`);
  }
  if (document.documentElement.scrollWidth > window.innerWidth) {
    problems.push(`scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  return problems;
}
