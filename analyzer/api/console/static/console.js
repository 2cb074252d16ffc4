// chainotel console: a little progressive enhancement; every page works without it.
"use strict";
(function () {
  // selects marked data-autosubmit submit their form on change (the Apply buttons stay for keyboards)
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => {
      if (select.name === "range" && select.value === "custom") {
        const custom = select.form.querySelector(".custom");
        if (custom) {
          custom.hidden = false;
          for (const input of custom.querySelectorAll("input")) input.disabled = false;
          custom.querySelector("input").focus();
          return;
        }
      }
      if (select.name === "baseline" && select.value === "custom") {
        const custom = select.form.querySelector(".baseline-custom");
        if (custom) { custom.hidden = false; custom.querySelector("input").focus(); return; }
      }
      if (select.name === "range") {
        for (const input of select.form.querySelectorAll(".custom input")) input.disabled = true;
      }
      select.form.requestSubmit();
    });
  }
  // auto-refresh: the page reloads itself while it is visible (presets move with the clock)
  const main = document.querySelector("main[data-refresh]");
  if (main) {
    const seconds = Number(main.dataset.refresh);
    if (seconds > 0) {
      setTimeout(function reload() {
        const typing = document.activeElement && document.activeElement.tagName === "INPUT";
        if (document.visibilityState === "visible" && !typing) {
          location.reload();
        } else {
          setTimeout(reload, 5000);
        }
      }, seconds * 1000);
    }
  }
})();
