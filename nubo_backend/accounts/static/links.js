// The pages mailed links open (/email/verify, /password/reset): they POST the link's token
// to the API of the same origin and say how it went.
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const outcome = document.getElementById("outcome");
  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    return {ok: response.ok, data};
  }
  const form = document.getElementById("reset");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const {ok, data} = await post("/password/reset", {token, password: document.getElementById("password").value});
      outcome.textContent = ok ? "Your password is set: sign in with it on every device." : (data.error || "Failed");
      if (ok) form.hidden = true;
    });
  } else {
    post("/email/verify", {token}).then(({ok, data}) => {
      outcome.textContent = ok ? `${data.email} is verified.` : (data.error || "Failed");
    });
  }
})();
