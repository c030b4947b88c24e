/* Zoom for the ID documents on the case pages (app/templates/mynumber/_documents.html).
   A static file, so the portal's CSP (script-src 'self') holds; the image data never leaves
   the page. Buttons 縮小 / 幅に合わせる / 拡大, or click the image to toggle 2.5x. */
(function () {
  "use strict";
  var STEP = 1.5, MIN = 0.5, MAX = 8;
  function setup(box) {
    var img = box.querySelector(".mnv-zoom-img");
    var scale = 1;
    function apply(next) {
      scale = Math.min(MAX, Math.max(MIN, next));
      img.style.width = (scale * 100) + "%";
      box.setAttribute("data-zoom", String(Math.round(scale * 100) / 100));
      box.classList.toggle("mnv-zoomed", scale > 1);
    }
    box.querySelector(".mnv-zoom-in").addEventListener("click", function () { apply(scale * STEP); });
    box.querySelector(".mnv-zoom-out").addEventListener("click", function () { apply(scale / STEP); });
    box.querySelector(".mnv-zoom-fit").addEventListener("click", function () { apply(1); });
    img.addEventListener("click", function () { apply(scale > 1 ? 1 : 2.5); });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".mnv-zoom"), setup);
})();
