// The version page's input example, pretty-printed from its json_script element.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var data = document.getElementById("input-example-data");
  var out = document.getElementById("input-example-text");
  if (data && out) out.textContent = JSON.stringify(JSON.parse(data.textContent), null, 2);
});
