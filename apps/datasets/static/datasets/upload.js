// Dataset upload with a real progress bar: the form posts to the API with
// XMLHttpRequest (upload.onprogress), then opens the new version's page, where
// progress.js follows the validation. Without JavaScript the form posts to the
// browser view instead.
(function () {
  "use strict";
  function init() {
    const form = document.getElementById("upload-form");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    const box = document.getElementById("upload-progress");
    const bar = box.querySelector(".progress > div");
    const text = box.querySelector("[data-upload-text]");
    const error = document.getElementById("upload-error");
    const button = document.getElementById("upload-button");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const data = new FormData(form);
      if (!data.get("parent")) data.delete("parent");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.apiUrl);
      xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        const pct = Math.round((100 * e.loaded) / e.total);
        bar.style.width = pct + "%";
        text.textContent = "Uploading… " + pct + "% of " + Math.round(e.total / 1024) + " KiB";
      });
      xhr.addEventListener("load", function () {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 200 || xhr.status === 201) {
          bar.style.width = "100%";
          text.textContent = body.created === false
            ? "The same content already is v" + body.version + "; opening it…"
            : "Uploaded as v" + body.version + "; validating…";
          window.location.href = form.dataset.versionUrl.replace(/0\/$/, body.id + "/");
          return;
        }
        box.hidden = true;
        button.disabled = false;
        error.hidden = false;
        error.textContent = (body.error && body.error.message) || ("Upload failed (HTTP " + xhr.status + ").");
      });
      xhr.addEventListener("error", function () {
        box.hidden = true;
        button.disabled = false;
        error.hidden = false;
        error.textContent = "The upload was interrupted; check the connection and try again.";
      });
      error.hidden = true;
      box.hidden = false;
      button.disabled = true;
      bar.style.width = "0%";
      xhr.send(data);
    });
  }
  document.addEventListener("DOMContentLoaded", init);
})();
