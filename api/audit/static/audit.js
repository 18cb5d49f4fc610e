/* AZR audit page: a tiny Python highlighter, the pager's "newer" link, the key prompt. No dependencies. */
(function () {
  "use strict";
  var KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else except " +
    "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case").split(" "));
  var BUILTINS = new Set(("abs all any bool bytes callable chr dict dir divmod enumerate eval exec filter float format " +
    "frozenset getattr globals hasattr hash hex id input int isinstance issubclass iter len list locals map max min " +
    "next object oct open ord pow print range repr reversed round set setattr slice sorted str sum super tuple type vars zip __import__").split(" "));
  var TOKEN = /(#.*$)|([rRbBuUfF]{0,2}(?:'''|"""))|([rRbBuUfF]{0,2}(?:'(?:[^'\\\n]|\\.)*'?|"(?:[^"\\\n]|\\.)*"?))|(\b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?\b|\b0[xXoObB][\da-fA-F_]+\b)|(@?[A-Za-z_][A-Za-z0-9_]*)|(\s+)|([^\sA-Za-z0-9_#'"]+)/gy;

  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function span(cls, text) { return '<span class="tok-' + cls + '">' + esc(text) + "</span>"; }

  /* Highlight one line; `open` is the triple quote still open from earlier lines (or null). */
  function highlightLine(text, open, state) {
    var out = "", i = 0;
    if (open) {
      var end = text.indexOf(open);
      if (end < 0) { return { html: span("str", text), open: open }; }
      out += span("str", text.slice(0, end + 3));
      i = end + 3;
    }
    var prev = state.prev;
    while (i < text.length) {
      TOKEN.lastIndex = i;
      var m = TOKEN.exec(text);
      if (!m) { out += esc(text.slice(i)); break; }
      var t = m[0];
      if (m[1]) { out += span("com", t); }
      else if (m[2]) {
        var quote = t.slice(-3), close = text.indexOf(quote, i + t.length);
        if (close < 0) { out += span("str", text.slice(i)); state.prev = prev; return { html: out, open: quote }; }
        t = text.slice(i, close + 3); out += span("str", t);
      }
      else if (m[3]) { out += span("str", t); }
      else if (m[4]) { out += span("num", t); }
      else if (m[5]) {
        if (t[0] === "@") { out += span("dec", t); }
        else if (KEYWORDS.has(t)) { out += span("kw", t); }
        else if (prev === "def" || prev === "class") { out += span("def", t); }
        else if (BUILTINS.has(t)) { out += span("bi", t); }
        else { out += esc(t); }
        prev = t;
      }
      else { out += esc(t); if (!m[6]) { prev = t; } }
      i += t.length;
    }
    state.prev = prev;
    return { html: out, open: null };
  }

  function highlight(pre) {
    var open = null, state = { prev: null };
    pre.querySelectorAll(".ln .src").forEach(function (src) {
      var result = highlightLine(src.textContent, open, state);
      src.innerHTML = result.html || " ";
      open = result.open;
    });
    pre.classList.add("highlighted");
    var marked = pre.querySelector(".ln.marked");
    if (marked) { marked.scrollIntoView({ block: "center" }); }
  }

  window.azrHighlightLine = highlightLine;
  document.querySelectorAll("pre.code").forEach(highlight);

  var newer = document.getElementById("newer");
  if (newer) { newer.addEventListener("click", function (e) { e.preventDefault(); history.back(); }); }

  var select = document.getElementById("f-verdict");
  if (select) { select.addEventListener("change", function () { document.getElementById("filters").submit(); }); }

  document.querySelectorAll("tr.rec").forEach(function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.closest("a")) { return; }
      location.href = "/audit/record/" + encodeURIComponent(row.dataset.id);
    });
  });

  var login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", function (e) {
      e.preventDefault();
      document.cookie = "azr_key=" + encodeURIComponent(document.getElementById("key").value) + "; path=/; SameSite=Strict";
      location.reload();
    });
  }
})();
