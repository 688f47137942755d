// Photo comparison overlay: the later photo lies over the earlier one and the range input
// moves the edge of its clip. Without this script the page shows the two photos side by side
// (the overlay stays hidden). Styles are set through the CSSOM: the Content-Security-Policy
// forbids style attributes in the markup, not this.
(function () {
  "use strict";

  document.querySelectorAll("[data-photo-slider]").forEach(function (slider) {
    var after = slider.querySelector(".slider-after");
    var range = slider.querySelector("input[type='range']");
    if (!after || !range) {
      return;
    }
    function clip() {
      after.style.clipPath = "inset(0 0 0 " + range.value + "%)";
    }
    range.addEventListener("input", clip);
    clip();
    slider.hidden = false;
  });
})();
