/* Optional help while typing the number: the server checks again and decides.
   Works on the value in the page only; nothing is sent anywhere by this script. */
(function () {
  "use strict";
  var WEIGHTS = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

  function normalize(text) {
    return text
      .replace(/[０-９]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xfee0); })
      .replace(/[\s\-‐‑‒–—―−ー－ｰ]/g, "");
  }

  function checkDigit(first11) {
    var total = 0;
    for (var i = 0; i < 11; i++) { total += Number(first11[i]) * WEIGHTS[i]; }
    var r = total % 11;
    return r <= 1 ? 0 : 11 - r;
  }

  function problem(value) {
    if (!value) { return ""; }
    if (!/^[0-9]+$/.test(value)) { return "数字以外の文字が含まれています"; }
    if (value.length !== 12) { return "12桁で入力してください（いま" + value.length + "桁）"; }
    if (checkDigit(value.slice(0, 11)) !== Number(value[11])) {
      return "番号の数字がどこか違っているようです。お手元の書類と見比べてください";
    }
    return null;
  }

  function update(input) {
    var out = document.querySelector('.js-check[data-for="' + input.id + '"]');
    if (!out) { return; }
    var value = normalize(input.value);
    var message = problem(value);
    var other = input.getAttribute("data-confirm-of");
    if (message === null && other) {
      var first = document.getElementById(other);
      if (first && normalize(first.value) !== value) { message = "1回目の入力と一致しません"; }
    }
    out.className = "js-check" + (message ? " bad" : message === null ? " good" : "");
    out.textContent = message === null ? "形式は正しいです" : message;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll("input[data-mynumber]");
    Array.prototype.forEach.call(inputs, function (input) {
      input.addEventListener("input", function () {
        update(input);
        Array.prototype.forEach.call(inputs, function (o) { if (o !== input && o.value) { update(o); } });
      });
    });
  });
})();
