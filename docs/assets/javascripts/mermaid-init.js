// Render the site's Mermaid blocks (`div.xbd-mermaid`, from the `mermaid` fences) with the
// vendored mermaid.js, into the page itself rather than Material's closed shadow root,
// so that `make docs-check` can count the SVGs in headless Chromium.
(function () {
  "use strict";
  function render() {
    var nodes = document.querySelectorAll("div.xbd-mermaid:not([data-processed])");
    if (nodes.length === 0) {
      return;
    }
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
    mermaid.run({ nodes: nodes }).catch(function (error) {
      document.documentElement.setAttribute(
        "data-mermaid-error",
        error && error.message ? error.message : String(error)
      );
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(render);
  } else {
    document.addEventListener("DOMContentLoaded", render);
  }
})();
