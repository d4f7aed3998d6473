// Nubo's demo page: the public API from a browser, no build step, no dependency.
// REST with a Bearer token (refreshed before it expires, one refresh at a time), and one
// WebSocket (/ws?access_token=) that reconnects with backoff and resumes from the last event
// id it processed: what it missed arrives once, duplicates are dropped. docs/realtime.md.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  tokens: null, user: null, ws: null, socketToken: null, status: "offline",
  lastEventId: null, duplicatesDropped: 0, connections: 0, refreshes: 0, attempt: 0,
  loggedOut: true, caughtUpTo: null, missed: 0,
  conversations: new Map(), current: null, messages: new Map(), pending: new Map(), acked: new Set(),
  users: new Map(), presence: new Map(), typingTimer: null, lastTypingSent: 0, feed: [],
};
window.nuboDemo = state; // for the browser tests (tests/browser/) and the curious

// --- REST -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body, { auth = true, retry = true } = {}) {
  if (auth) await freshToken();
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = "Bearer " + state.tokens.access_token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401 && auth && retry && data && data.code === "invalid_token") {
    await refresh();
    return api(method, path, body, { auth, retry: false });
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function claims(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

async function freshToken() {
  const { iat, exp } = claims(state.tokens.access_token);
  // The server warns the socket min(60 s, a quarter of the lifetime) before exp: same margin.
  if (exp - Date.now() / 1000 <= Math.min(60, (exp - iat) / 4)) await refresh();
}

let refreshing = null;
function refresh() {
  // Serialised: two refreshes with one refresh token would revoke the session (docs/auth.md).
  if (!refreshing) {
    refreshing = (async () => {
      const answer = await api("POST", "/refresh", { refresh_token: state.tokens.refresh_token }, { auth: false });
      state.tokens = answer;
      state.refreshes += 1;
      showToken();
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

function showToken() {
  const { exp } = claims(state.tokens.access_token);
  $("token-info").textContent = `token until ${new Date(exp * 1000).toLocaleTimeString()} · refreshed ${state.refreshes}×`;
}

// --- the socket -------------------------------------------------------------------------

async function connect() {
  if (state.loggedOut) return;
  try {
    await freshToken();
  } catch (err) {
    if (err.status === 401) return sessionEnded("session expired, log in again");
    return reconnectLater(); // the instance is down: try again
  }
  const query = new URLSearchParams({ access_token: state.tokens.access_token });
  if (state.lastEventId !== null) query.set("last_event_id", state.lastEventId);
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws?${query}`);
  state.ws = ws;
  state.socketToken = state.tokens.access_token;
  ws.onmessage = (message) => { if (ws === state.ws) onFrame(message.data); };
  ws.onclose = (event) => { if (ws === state.ws) onClose(event); };
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  }
  return false;
}

function onClose(event) {
  state.ws = null;
  if (state.loggedOut) return;
  log(`socket closed ${event.code} ${event.reason || ""}`);
  if (event.code === 1008 && /revoked/.test(event.reason)) return sessionEnded(event.reason);
  if (event.code === 4001) return refresh().then(connect, () => sessionEnded("session expired, log in again"));
  reconnectLater();
}

function reconnectLater() {
  state.attempt += 1;
  setStatus("reconnecting", `reconnecting… (attempt ${state.attempt})`);
  const delay = Math.min(5000, 250 * 2 ** Math.min(state.attempt - 1, 5)) * (0.5 + Math.random() / 2);
  setTimeout(connect, delay);
}

function setStatus(status, banner) {
  state.status = status;
  const el = $("status");
  el.textContent = status;
  el.className = `status ${status}`;
  $("banner").hidden = !banner;
  $("banner").textContent = banner || "";
}

function onFrame(raw) {
  let frame = null;
  if (raw.trimStart().startsWith("{")) {
    try { frame = JSON.parse(raw); } catch { frame = null; }
  }
  if (!frame || typeof frame.type !== "string") return addBroadcast(raw);
  if ("id" in frame) return frame.id === null ? onTransient(frame) : onEvent(frame);
  switch (frame.type) {
    case "ready": return onReady(frame);
    case "ack": return onAck(frame);
    case "error": return onError(frame);
    case "token_expiring": return onTokenExpiring(frame);
    case "refreshed": return log(`socket refreshed, valid until ${new Date(frame.expires_at * 1000).toLocaleTimeString()}`);
    case "resync_required": return onResync(frame);
    case "pong": return undefined;
    default: return log(`frame ${frame.type}`);
  }
}

function onReady(frame) {
  const resumed = state.lastEventId !== null && state.connections > 0;
  state.connections += 1;
  if (state.lastEventId === null) state.lastEventId = frame.last_event_id || 0;
  const behind = (frame.last_event_id || 0) - state.lastEventId;
  if (resumed) {
    state.missed = Math.max(0, behind);
    state.caughtUpTo = frame.last_event_id || 0;
    setStatus("connected", behind > 0 ? `reconnected: catching up on ${behind} missed event(s)…` : "reconnected: nothing missed");
    if (behind <= 0) state.caughtUpTo = null;
  } else {
    setStatus("connected");
  }
  state.attempt = 0;
  showLastEvent();
  for (const [clientId, item] of state.pending) { // not acknowledged: again, same client_id (stored once)
    if (!state.acked.has(clientId)) send({ type: "message.send", conversation_id: item.conversation_id, body: item.body, client_id: clientId });
  }
}

function onEvent(event) {
  if (event.id <= state.lastEventId) { state.duplicatesDropped += 1; return; }
  state.lastEventId = event.id;
  showLastEvent();
  log(`#${event.id} ${event.type}`);
  const data = event.data || {};
  switch (event.type) {
    case "message.created": case "message.updated": case "message.deleted":
      storeMessage(data, event.type === "message.created");
      break;
    case "message.reaction":
      onReaction(data);
      break;
    case "conversation.created":
      addConversation(data);
      break;
    case "conversation.members_added": case "conversation.member_removed":
      loadConversations();
      break;
    case "post.updated": // an edit, or the link card fetched after the post was written
      loadFeed();
      break;
    default:
      if (data.notification_id) addNotification({ id: data.notification_id, type: event.type, data, read: false }, true);
  }
  if (state.caughtUpTo !== null && event.id >= state.caughtUpTo) {
    setStatus("connected", `reconnected: caught up on ${state.missed} missed event(s), none twice`);
    state.caughtUpTo = null;
  }
}

function onTransient(event) {
  const data = event.data || {};
  if (event.type === "post.created" || event.type === "post.reposted" || event.type === "post.unreposted") {
    loadFeed();
  } else if (event.type === "presence") {
    state.presence.set(data.user_id, data.status);
    renderPresence();
  } else if (event.type === "typing" && data.conversation_id === state.current && data.user_id !== state.user.id) {
    $("typing").textContent = `${nameOf(data.user_id)} is typing…`;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 3000);
  }
}

function onAck(frame) {
  state.acked.add(frame.client_id);
  const item = state.pending.get(frame.client_id);
  if (item) item.message_id = frame.message_id;
  renderMessages();
}

function onError(frame) {
  log(`error ${frame.code}: ${frame.error} (${frame.ref || ""})`);
  if (state.pending.has(frame.ref)) {
    state.pending.get(frame.ref).failed = frame.code;
    renderMessages();
  }
}

async function onTokenExpiring(frame) {
  try {
    if (state.tokens.access_token === state.socketToken) await refresh();
    if (send({ type: "refresh", access_token: state.tokens.access_token })) state.socketToken = state.tokens.access_token;
  } catch (err) {
    log(`refresh failed: ${err.message}`); // the socket closes with 4001, then we reconnect
  }
}

function onResync(frame) {
  state.lastEventId = frame.last_event_id;
  setStatus("connected", `events were gone: reloaded ${frame.reload.join(", ")}`);
  loadConversations();
  loadNotifications();
}

// --- conversations and messages ---------------------------------------------------------

function nameOf(userId) {
  if (state.user && userId === state.user.id) return state.user.username;
  return state.users.get(userId) || `user ${userId}`;
}

function addConversation(conversation) {
  for (const member of conversation.members || []) state.users.set(member.user_id, member.username);
  const known = state.conversations.get(conversation.id);
  state.conversations.set(conversation.id, { ...known, ...conversation, unread: known ? known.unread : 0 });
  renderConversations();
}

function conversationName(conversation) {
  if (conversation.title) return conversation.title;
  const others = (conversation.members || []).filter((m) => m.user_id !== state.user.id).map((m) => m.username);
  return others.join(", ") || `conversation ${conversation.id}`;
}

async function loadConversations() {
  const page = await api("GET", "/conversations?limit=50");
  for (const conversation of page.items) addConversation({ ...conversation, unread: conversation.unread_count || 0 });
}

function renderConversations() {
  const list = $("conversation-list");
  list.replaceChildren();
  for (const conversation of state.conversations.values()) {
    const li = document.createElement("li");
    li.dataset.conversationId = conversation.id;
    if (conversation.id === state.current) li.className = "current";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${conversation.kind === "group" ? "[group]" : "[DM]"} ${conversationName(conversation)}`;
    button.addEventListener("click", () => openConversation(conversation.id));
    li.append(button);
    if (conversation.unread) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = conversation.unread;
      li.append(" ", badge);
    }
    list.append(li);
  }
}

async function openConversation(id) {
  state.current = id;
  const conversation = state.conversations.get(id);
  if (conversation) conversation.unread = 0;
  $("conversation-title").textContent = conversation ? conversationName(conversation) : "Messages";
  $("message-input").disabled = false;
  $("message-form").querySelector("button").disabled = false;
  $("typing").textContent = "";
  renderConversations();
  const page = await api("GET", `/conversations/${id}/messages?limit=50`);
  for (const message of page.items) storeMessage(message, false);
  renderMessages();
  markRead();
}

function storeMessage(message, fresh) {
  if (!state.messages.has(message.conversation_id)) state.messages.set(message.conversation_id, new Map());
  state.messages.get(message.conversation_id).set(message.id, message);
  if (message.client_id && state.pending.has(message.client_id)) state.pending.delete(message.client_id);
  if (message.conversation_id === state.current) {
    renderMessages();
    if (fresh && message.sender_id !== state.user.id) markRead();
  } else if (fresh && message.sender_id !== state.user.id) {
    const conversation = state.conversations.get(message.conversation_id);
    if (conversation) { conversation.unread = (conversation.unread || 0) + 1; renderConversations(); } else loadConversations();
  }
}

function markRead() {
  const messages = [...(state.messages.get(state.current) || new Map()).keys()];
  if (messages.length) send({ type: "conversation.read", conversation_id: state.current, message_id: Math.max(...messages) });
}

function renderMessages() {
  const list = $("messages");
  list.replaceChildren();
  const stored = [...(state.messages.get(state.current) || new Map()).values()].sort((a, b) => a.id - b.id);
  const waiting = [...state.pending.entries()].filter(([, item]) => item.conversation_id === state.current);
  for (const message of stored) {
    const li = messageItem(message.id, message.sender_id, message.deleted ? "(deleted)" : message.body, "✓");
    if (!message.deleted) li.append(reactionButtons(message));
    list.append(li);
  }
  for (const [clientId, item] of waiting) {
    const mark = item.failed ? `✗ ${item.failed}` : state.acked.has(clientId) ? "✓ acked" : "… sending";
    list.append(messageItem(null, state.user.id, item.body, mark, clientId));
  }
  list.scrollTop = list.scrollHeight;
}

function messageItem(id, senderId, body, mark, clientId) {
  const li = document.createElement("li");
  if (id !== null) li.dataset.messageId = id;
  if (clientId) li.dataset.clientId = clientId;
  const mine = senderId === state.user.id;
  li.className = mine ? "mine" : "";
  li.textContent = `${nameOf(senderId)}: ${body}`;
  if (mine) {
    const status = document.createElement("span");
    status.className = mark.startsWith("✓") ? "ack" : "pending";
    status.textContent = mark;
    li.append(status);
  }
  return li;
}

// Reactions: each emoji's count (yours highlighted; click to take yours back) and a 👍 to add.
function reactionButtons(message) {
  const span = document.createElement("span");
  span.className = "reactions";
  const shown = [...(message.reactions || [])];
  if (!shown.some((r) => r.emoji === "👍")) shown.push({ emoji: "👍", count: 0, reacted_by_me: false });
  for (const reaction of shown) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = reaction.reacted_by_me ? "reaction mine" : "reaction";
    // Drawn by CSS (::before) from the label, so the message line's text stays the message.
    button.dataset.label = reaction.count ? `${reaction.emoji} ${reaction.count}` : `+${reaction.emoji}`;
    button.setAttribute("aria-label", button.dataset.label);
    button.addEventListener("click", () => react(message, reaction.emoji, !reaction.reacted_by_me));
    span.append(button);
  }
  return span;
}

async function react(message, emoji, add) {
  const reply = await api(add ? "PUT" : "DELETE", `/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`);
  if (reply) { message.reactions = reply.reactions; renderMessages(); }
}

function onReaction(data) {
  const message = (state.messages.get(data.conversation_id) || new Map()).get(data.message_id);
  if (!message) return;
  const before = (message.reactions || []).find((r) => r.emoji === data.emoji);
  const mine = data.user_id === state.user.id ? data.added : Boolean(before && before.reacted_by_me);
  message.reactions = (message.reactions || []).filter((r) => r.emoji !== data.emoji);
  if (data.count > 0) message.reactions.push({ emoji: data.emoji, count: data.count, reacted_by_me: mine });
  if (data.conversation_id === state.current) renderMessages();
}

function sendMessage(body) {
  const clientId = `demo-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  state.pending.set(clientId, { conversation_id: state.current, body });
  send({ type: "message.send", conversation_id: state.current, body, client_id: clientId }); // else on `ready`
  renderMessages();
}

// --- the feed: posts, reposts, link cards -----------------------------------------------

async function loadFeed() {
  const page = await api("GET", "/feed?limit=20");
  state.feed = page.items;
  renderFeed();
}

function renderFeed() {
  const list = $("feed");
  list.replaceChildren();
  for (const post of state.feed) {
    const li = document.createElement("li");
    li.className = "post";
    li.dataset.postId = post.id;
    const line = document.createElement("p");
    line.className = "post-body";
    line.textContent = `${post.author.username}: ${post.body}`;
    li.append(line);
    if (post.preview) li.append(previewCard(post.preview));
    li.append(repostButton(post));
    list.append(li);
  }
}

// The card of the post's first link. Its image is one of ours (/previews/{id}/image, fetched
// and re-encoded by the server), never the linked site's.
function previewCard(preview) {
  const card = document.createElement("a");
  card.className = "preview";
  card.href = preview.url;
  card.rel = "noopener noreferrer nofollow";
  card.target = "_blank";
  if (preview.image) {
    const img = document.createElement("img");
    img.src = preview.image;
    img.alt = "";
    card.append(img);
  }
  const title = document.createElement("strong");
  title.className = "preview-title";
  title.textContent = preview.title || preview.url;
  card.append(title);
  if (preview.description) {
    const description = document.createElement("span");
    description.className = "preview-description";
    description.textContent = preview.description;
    card.append(description);
  }
  return card;
}

function repostButton(post) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = post.reposted_by_me ? "repost mine" : "repost";
  button.setAttribute("aria-pressed", String(Boolean(post.reposted_by_me)));
  button.textContent = `⟲ ${post.repost_count}`;
  button.title = post.reposted_by_me ? "undo your repost" : "repost to your followers";
  button.addEventListener("click", () => repost(post));
  return button;
}

async function repost(post) {
  const reply = await api(post.reposted_by_me ? "DELETE" : "PUT", `/posts/${post.id}/repost`);
  state.feed = state.feed.map((p) => (p.id === reply.id ? { ...p, ...reply } : p));
  renderFeed();
}

// --- broadcast lines, presence, notifications, log --------------------------------------

function addBroadcast(text, prepend = false) {
  const li = document.createElement("li");
  li.textContent = text;
  const list = $("broadcast-list");
  if (prepend) list.prepend(li); else list.append(li);
  list.scrollTop = list.scrollHeight;
}

function renderPresence() {
  const list = $("presence");
  list.replaceChildren();
  for (const [userId, status] of state.presence) {
    const li = document.createElement("li");
    li.className = status;
    li.dataset.userId = userId;
    li.textContent = `${nameOf(userId)} ${status}`;
    list.append(li);
  }
}

function addNotification(notification, live) {
  const li = document.createElement("li");
  li.dataset.notificationId = notification.id;
  li.className = notification.read ? "" : "unread";
  const data = notification.data || {};
  const what = { "like.created": "liked your post", "comment.created": "commented on your post",
    "follow.created": "followed you", "mention.created": "mentioned you" }[notification.type] || notification.type;
  li.textContent = `${nameOf(data.actor_id)} ${what}`;
  if (live) $("notifications").prepend(li); else $("notifications").append(li);
}

async function loadNotifications() {
  const page = await api("GET", "/notifications?limit=20");
  $("notifications").replaceChildren();
  for (const notification of page.items) addNotification(notification, false);
}

function log(text) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(li);
  while ($("log").children.length > 100) $("log").lastChild.remove();
}

function showLastEvent() {
  $("last-event").textContent = `#${state.lastEventId ?? 0}`;
}

// --- log in, log out --------------------------------------------------------------------

async function authenticate(path, body) {
  $("auth-error").textContent = "";
  try {
    const answer = await api("POST", path, body, { auth: false });
    state.tokens = answer;
    state.user = answer.user;
  } catch (err) {
    $("auth-error").textContent = `${err.message}${err.code ? ` (${err.code})` : ""}`;
    return;
  }
  state.loggedOut = false;
  $("auth").hidden = true;
  $("app").hidden = false;
  $("session").hidden = false;
  $("me").textContent = `@${state.user.username}`;
  showToken();
  setStatus("connecting");
  connect();
  await loadConversations();
  await loadNotifications();
  await loadFeed();
  const lines = await api("GET", "/broadcast?limit=20");
  for (const line of lines.items) addBroadcast(line.text, true);
  state.loaded = true;
}

function sessionEnded(reason) {
  state.loggedOut = true;
  if (state.ws) state.ws.close();
  state.ws = null;
  setStatus("offline", reason);
  $("auth").hidden = false;
  $("auth-error").textContent = reason;
}

async function logout() {
  const ws = state.ws;
  state.loggedOut = true;
  state.ws = null;
  if (ws) ws.close(1000, "logged out");
  await api("POST", "/logout").catch(() => null);
  setStatus("offline", "logged out");
  $("auth").hidden = false;
}

setInterval(() => send({ type: "ping" }), 25000); // the server closes sockets idle for 60 s

document.addEventListener("DOMContentLoaded", () => {
  $("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("username").value.trim();
    authenticate("/login", { [name.includes("@") ? "email" : "username"]: name, password: $("password").value });
  });
  $("signup-btn").addEventListener("click", () => {
    authenticate("/signup", { username: $("username").value.trim(), email: $("email").value.trim(), password: $("password").value });
  });
  $("logout").addEventListener("click", logout);
  $("broadcast-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("broadcast-input").value;
    if (text.trim() && !text.trimStart().startsWith("{") && send(text)) $("broadcast-input").value = "";
  });
  $("dm-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const user = await api("GET", `/users/${encodeURIComponent($("dm-username").value.trim())}`);
      const conversation = await api("POST", "/conversations", { user_id: user.id });
      addConversation(conversation);
      $("dm-username").value = "";
      openConversation(conversation.id);
    } catch (err) { log(`direct message: ${err.message}`); }
  });
  $("group-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const names = $("group-members").value.split(",").map((n) => n.trim()).filter(Boolean);
      const users = await Promise.all(names.map((n) => api("GET", `/users/${encodeURIComponent(n)}`)));
      const conversation = await api("POST", "/conversations", { title: $("group-title").value.trim(), member_ids: users.map((u) => u.id) });
      addConversation(conversation);
      openConversation(conversation.id);
    } catch (err) { log(`new group: ${err.message}`); }
  });
  $("message-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = $("message-input").value;
    if (body.trim() && state.current) { sendMessage(body); $("message-input").value = ""; }
  });
  $("message-input").addEventListener("input", () => {
    if (state.current && Date.now() - state.lastTypingSent > 2000) {
      state.lastTypingSent = Date.now();
      send({ type: "typing", conversation_id: state.current });
    }
  });
  $("post-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = $("post-input").value;
    if (!body.trim()) return;
    try {
      await api("POST", "/posts", { body });
      $("post-input").value = "";
      await loadFeed();
    } catch (err) { log(`post: ${err.message}`); }
  });
  $("follow-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const user = await api("GET", `/users/${encodeURIComponent($("follow-username").value.trim())}`);
      await api("POST", `/users/${user.id}/follow`);
      $("follow-username").value = "";
      await loadFeed();
    } catch (err) { log(`follow: ${err.message}`); }
  });
  $("notifications-read").addEventListener("click", async () => {
    await api("POST", "/notifications/read", {});
    for (const li of $("notifications").children) li.className = "";
  });
});
