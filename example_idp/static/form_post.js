// OAuth 2.0 Form Post Response Mode: send the authorization response to the client at once.
// A file, not an inline script, so the page's Content-Security-Policy needs no 'unsafe-inline';
// without JavaScript the form's button does the same.
document.getElementById("form-post").submit();
