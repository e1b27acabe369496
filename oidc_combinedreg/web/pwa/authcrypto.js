// The authenticator app's cryptography, all WebCrypto: P-256 device keys (signatures converted
// to the protocol's DER form), TOTP (RFC 6238 over RFC 4226's HOTP, HMAC-SHA-1), and the seed
// kept encrypted under a non-extractable AES-GCM key. No secret ever leaves a CryptoKey except
// the TOTP seed, and that only inside this function's scope while a code is computed.
(function (root) {
  "use strict";
  var subtle = root.crypto.subtle;
  var encoder = new TextEncoder();

  function b64uEncode(bytes) {
    var text = "";
    var view = new Uint8Array(bytes);
    for (var i = 0; i < view.length; i++) { text += String.fromCharCode(view[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function base32Decode(text) {
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    var clean = String(text).toUpperCase().replace(/[\s=]/g, "");
    var bits = 0, value = 0, out = [];
    for (var i = 0; i < clean.length; i++) {
      var index = alphabet.indexOf(clean[i]);
      if (index < 0) { throw new Error("not base32"); }
      value = (value << 5) | index;
      bits += 5;
      if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
    }
    return new Uint8Array(out);
  }

  // One INTEGER of a DER signature: no superfluous leading zeros, a 0x00 before a high bit.
  function derInteger(bytes) {
    var start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) { start++; }
    var body = bytes.slice(start);
    if (body[0] & 0x80) {
      var padded = new Uint8Array(body.length + 1);
      padded.set(body, 1);
      body = padded;
    }
    var out = new Uint8Array(body.length + 2);
    out[0] = 0x02;
    out[1] = body.length;
    out.set(body, 2);
    return out;
  }

  // WebCrypto signs ECDSA in IEEE P1363 form (r || s, 32 bytes each for P-256); the protocol
  // (and Python's cryptography) wants the ASN.1 DER SEQUENCE of two INTEGERs (RFC 3279 2.2.3).
  // At most 2 + 2 * 35 = 72 bytes, so every length fits one byte.
  function p1363ToDer(signature) {
    var raw = new Uint8Array(signature);
    if (raw.length !== 64) { throw new Error("expected a 64-byte P-256 signature"); }
    var r = derInteger(raw.slice(0, 32));
    var s = derInteger(raw.slice(32));
    var out = new Uint8Array(2 + r.length + s.length);
    out[0] = 0x30;
    out[1] = r.length + s.length;
    out.set(r, 2);
    out.set(s, 2 + r.length);
    return out;
  }

  // The protocol's signed text: lines joined by \n, the first always combinedreg-push-v1.
  function message(parts) {
    for (var i = 0; i < parts.length; i++) {
      if (String(parts[i]).indexOf("\n") >= 0) { throw new Error("a field contains a line break"); }
    }
    return encoder.encode(["combinedreg-push-v1"].concat(parts.map(String)).join("\n"));
  }

  function newDeviceKey() {
    // extractable: false -- the private key can sign, never be read, not even by this script.
    return subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  }

  function publicKeySpki(publicKey) {
    return subtle.exportKey("spki", publicKey).then(b64uEncode);
  }

  function sign(privateKey, parts) {
    return subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, message(parts))
      .then(function (sig) { return b64uEncode(p1363ToDer(sig)); });
  }

  // RFC 4226 5.3 dynamic truncation over HMAC-SHA-1 of the 8-byte big-endian counter.
  function hotp(seed, counter, digits) {
    var msg = new Uint8Array(8);
    var c = counter;
    for (var i = 7; i >= 0; i--) { msg[i] = c % 256; c = Math.floor(c / 256); }
    return subtle.importKey("raw", seed, { name: "HMAC", hash: "SHA-1" }, false, ["sign"])
      .then(function (key) { return subtle.sign("HMAC", key, msg); })
      .then(function (mac) {
        var h = new Uint8Array(mac);
        var o = h[h.length - 1] & 15;
        var bin = ((h[o] & 127) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
        var code = String(bin % Math.pow(10, digits));
        while (code.length < digits) { code = "0" + code; }
        return code;
      });
  }

  // RFC 6238 4: T = floor((unix time - T0) / X), T0 = 0.
  function totp(seed, unixSeconds, period, digits) {
    return hotp(seed, Math.floor(unixSeconds / (period || 30)), digits || 6);
  }

  function newSeedKey() {
    return subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }

  function sealSeed(aesKey, seed) {
    var iv = root.crypto.getRandomValues(new Uint8Array(12));
    return subtle.encrypt({ name: "AES-GCM", iv: iv }, aesKey, seed)
      .then(function (ct) { return { iv: iv, ciphertext: new Uint8Array(ct) }; });
  }

  function openSeed(aesKey, sealed) {
    return subtle.decrypt({ name: "AES-GCM", iv: sealed.iv }, aesKey, sealed.ciphertext)
      .then(function (plain) { return new Uint8Array(plain); });
  }

  root.AuthCrypto = {
    b64uEncode: b64uEncode,
    base32Decode: base32Decode,
    p1363ToDer: p1363ToDer,
    newDeviceKey: newDeviceKey,
    publicKeySpki: publicKeySpki,
    sign: sign,
    hotp: hotp,
    totp: totp,
    newSeedKey: newSeedKey,
    sealSeed: sealSeed,
    openSeed: openSeed
  };
})(self);
