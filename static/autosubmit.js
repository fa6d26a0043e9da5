// Submits SAML POST-binding forms at once; without JavaScript the visible button does it.
document.querySelectorAll("form[data-autosubmit]").forEach(function (f) { f.submit(); });
