// Usage: node viewer_loop.mjs WS_URL AUTOMERGE_URL
// A viewer opens the document with the official automerge-repo client and edits it locally.
// The server refuses the change with one `error`; afterwards nobody edits, so the sync
// exchange must settle. Prints how many messages each way passed in a quiet window after the
// refusal (with MOVIOLA_DEBUG_SYNC=1, each sync message's heads, need and have to stderr).
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import * as A from "@automerge/automerge";

const [wsUrl, docUrl] = process.argv.slice(2);
const adapter = new WebSocketClientAdapter(wsUrl);
const counts = { syncIn: 0, syncOut: 0 };
const debug = process.env.MOVIOLA_DEBUG_SYNC === "1";
const show = (dir, data) => {
  if (!debug) return;
  const m = A.decodeSyncMessage(data);
  console.error(dir, JSON.stringify({ heads: m.heads, need: m.need, have: m.have.map((h) => h.lastSync), changes: m.changes.length }));
};
adapter.on("message", (msg) => {
  if (msg.type === "sync") { counts.syncIn++; show("in ", msg.data); }
});
const send = adapter.send.bind(adapter);
adapter.send = (msg) => {
  if (msg.type === "sync" || msg.type === "request") { counts.syncOut++; show("out", msg.data); }
  send(msg);
};
const fail = (msg) => { console.error(msg); process.exit(1); };
setTimeout(() => fail("timed out"), 20000);

const repo = new Repo({ network: [adapter] });
const handle = await repo.find(docUrl);
await new Promise((r) => setTimeout(r, 300));
handle.change((d) => {
  d.tracks["viewer-track"] = { kind: "video", name: "from-viewer", order: "z", muted: false, locked: false };
});
// The refusal and whatever the exchange does right after it.
await new Promise((r) => setTimeout(r, 1000));
counts.syncIn = 0;
counts.syncOut = 0;
await new Promise((r) => setTimeout(r, 2000));
console.log(JSON.stringify(counts));
process.exit(0);
