// The token import's page: asks the import's status address every second, moves the progress
// bar, and loads the page again once the import is over (it then shows the result). Without
// JavaScript the page's "Refresh" link does the same.
(function () {
  'use strict';
  var box = document.getElementById('import');
  if (!box || box.hasAttribute('data-finished')) {
    return;
  }
  var url = box.getAttribute('data-status-url');
  var bar = document.getElementById('import-progress');
  var count = document.getElementById('import-count');
  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (status && status.finished) {
          window.location.reload();
          return;
        }
        if (status && status.total > 0) {
          bar.max = status.total;
          bar.value = status.done;
          if (count) {
            count.textContent = status.done + ' / ' + status.total;
          }
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 1000);
})();
