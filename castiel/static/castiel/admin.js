/* Castiel's fixes to the Django admin's own widgets, for screen readers (axe-core clean):
   - the split date/time inputs (AdminSplitDateTime) have no label of their own: each gets
     "<field label> date" / "<field label> time";
   - the filter_horizontal widget's search icons carry aria-label on a bare span: they are
     images, so they get role="img".
   The widgets are built on window load, so this runs after the admin's own load handlers. */
(function () {
  "use strict";
  function fieldLabel(input) {
    var row = input.closest(".form-row, .fieldBox, td, .form-group") || document;
    var label = row.querySelector("label");
    return label ? label.textContent.replace(/[:*]\s*$/, "").trim() : input.name;
  }
  function fix() {
    document.querySelectorAll("p.datetime input").forEach(function (input) {
      if (input.labels && input.labels.length) { return; }
      if (input.getAttribute("aria-label")) { return; }
      var part = /_1$/.test(input.name || input.id) ? "time" : "date";
      input.setAttribute("aria-label", fieldLabel(input) + " " + part);
    });
    document.querySelectorAll("span.help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }
  window.addEventListener("load", function () { window.setTimeout(fix, 0); });
})();
