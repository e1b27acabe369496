// The app's texts in the middleware's six languages. The app works offline from the service
// worker's cache, so its texts travel with it instead of coming from the server's catalogs.
(function (root) {
  "use strict";
  var TEXTS = {
    en: {
      title: "Authenticator",
      accounts: "Accounts",
      no_accounts: "No accounts yet. Add one from the sign-in page's QR code.",
      add_heading: "Add an account",
      add_label: "Link from the sign-in page",
      add_button: "Add account",
      confirm_heading: "Add this account?",
      confirm_text: "{account} at {issuer}",
      device_name: "Name of this device",
      default_device_name: "My phone",
      cancel: "Cancel",
      adding: "Adding the account…",
      added: "Account added. Go back to the sign-in page.",
      bad_link: "This is not a link from the sign-in page.",
      other_server: "This link is for another server than the one this app belongs to.",
      expired_link: "This link was used already or has expired. Ask the sign-in page for a new one.",
      limit_reached: "This account has the most devices it may have. Remove one on the security info page.",
      network_error: "The server cannot be reached. Try again when you are online.",
      server_error: "The server refused the request ({error}).",
      requests: "Sign-in requests",
      request_heading: "Are you trying to sign in?",
      request_account: "Account",
      request_app: "Application",
      request_network: "Network",
      request_time: "Time",
      number_label: "Enter the number shown on the sign-in screen",
      approve: "Approve",
      deny: "Deny",
      report: "This wasn't me",
      number_needed: "Enter the two-digit number shown on the sign-in screen.",
      approved: "Approved.",
      denied: "Denied.",
      wrong_number: "The number did not match: the sign-in was denied.",
      reported: "Reported and denied. Someone may know your password: change it now, and tell your helpdesk if you did not try to sign in.",
      request_gone: "This request is no longer waiting (expired or answered).",
      code_label: "One-time code for {account}",
      seconds_left: "{seconds} s left",
      remove: "Remove",
      remove_confirm: "Remove {account} from this app? You can no longer sign in with it from this device.",
      removed: "Account removed.",
      replace_first: "This device is a sign-in method you still need. Add another sign-in method on the security info page first, then remove this one.",
      offline: "Offline: codes still work, sign-in requests arrive when you are back online."
    }
  };
  var SUPPORTED = ["en", "de", "fr", "es", "ja", "ar"];
  var RTL = { ar: true };

  function pick(preferred) {
    for (var i = 0; i < preferred.length; i++) {
      var base = String(preferred[i] || "").toLowerCase().split("-")[0];
      if (SUPPORTED.indexOf(base) >= 0 && TEXTS[base]) { return base; }
    }
    return "en";
  }

  var lang = pick(root.navigator.languages || [root.navigator.language]);

  function t(key, values) {
    var text = (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.en[key] || key;
    return text.replace(/\{(\w+)\}/g, function (_, name) {
      return values && name in values ? String(values[name]) : "";
    });
  }

  root.AppI18n = { t: t, lang: lang, dir: RTL[lang] ? "rtl" : "ltr", texts: TEXTS };
})(self);
