// The pages that wait for a call, a text or the mobile app: asks the form's status address
// every two seconds and submits the form once the call, text or request is decided, or once
// a request to the app expired unanswered (the page then offers to send another; a page
// already saying so carries `data-expired`). Without JavaScript the form's button does the
// same. When the status names an outcome and the form has an `outcome` field, the form
// carries it.
(function () {
  'use strict';
  var form = document.querySelector('form[data-status-url]');
  if (!form) {
    return;
  }
  var url = form.getAttribute('data-status-url');
  var shownExpired = form.hasAttribute('data-expired');
  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (status && (status.decided || (status.expired && !shownExpired))) {
          var outcome = form.querySelector('input[name="outcome"]');
          if (outcome && status.outcome) {
            outcome.value = status.outcome;
          }
          form.submit();
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }
  window.setTimeout(poll, 2000);
})();
