// Buttons that ask before they act. <button data-confirm-dialog="promote-dialog"> inside a form
// opens <dialog id="promote-dialog"> instead of submitting; the dialog carries its own form
// (confirmed=1) and a "Cancel" button in a <form method="dialog">. Without script the button
// submits its form and the server answers with a confirmation page.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-confirm-dialog]").forEach(function (button) {
      const dialog = document.getElementById(button.dataset.confirmDialog);
      if (!dialog || typeof dialog.showModal !== "function") return;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.showModal();
      });
    });
  });
})();
