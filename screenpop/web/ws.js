// The websocket client: connects to /ws (a fresh page gets a snapshot), resumes with last_seq after
// a drop (exponential backoff with jitter), and reports session expiry (message session_expired or
// close code 4401).

const CLOSE_SESSION_EXPIRED = 4401;
const SEQUENCED = new Set(['ringing', 'pop', 'call_update', 'presence']);

export class HubClient {
  constructor({ onMessage, onStatus, onExpired, initialDelayMs = 500, maxDelayMs = 30000 }) {
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onExpired = onExpired;
    this.initialDelayMs = initialDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.lastSeq = 0;
    this.epoch = null;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    this.onStatus('connecting', this.attempt);
    socket.addEventListener('open', () => {
      this.attempt = 0;
      this.onStatus('open', 0);
      if (this.epoch === null) {
        // A fresh page: ask for a snapshot (any first message other than resume does), not for a
        // replay of every earlier pop still in the server's window.
        socket.send(JSON.stringify({ type: 'ping' }));
      } else {
        socket.send(JSON.stringify({ type: 'resume', last_seq: this.lastSeq, epoch: this.epoch }));
      }
    });
    socket.addEventListener('message', (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'hello') {
        if (this.epoch !== null && msg.epoch !== this.epoch) this.lastSeq = 0; // server restarted
        this.epoch = msg.epoch;
      }
      if (SEQUENCED.has(msg.type) && typeof msg.seq === 'number') {
        if (msg.seq <= this.lastSeq) return; // already seen (replayed after a resume)
        this.lastSeq = msg.seq;
      } else if (msg.type === 'snapshot' && typeof msg.seq === 'number') {
        this.lastSeq = Math.max(this.lastSeq, msg.seq);
      }
      if (msg.type === 'session_expired') {
        this.expire(msg.message);
        return;
      }
      this.onMessage(msg);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket === socket) this.socket = null;
      if (event.code === CLOSE_SESSION_EXPIRED) {
        this.expire(null);
        return;
      }
      if (this.stopped) { this.onStatus('closed', 0); return; }
      this.scheduleReconnect();
    });
  }

  expire(message) {
    // reported once, whichever comes first: the session_expired message or the 4401 close
    const first = !this.stopped;
    this.stopped = true;
    clearTimeout(this.timer);
    if (first) this.onExpired(message);
  }

  nextDelayMs() {
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** this.attempt);
    return Math.round(base / 2 + Math.random() * base / 2);
  }

  scheduleReconnect() {
    const delay = this.nextDelayMs();
    this.attempt += 1;
    this.onStatus('retrying', delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
