// Usage: node sync.mjs WS_URL AUTOMERGE_URL
// Opens the document with the official automerge-repo client, checks what the server sent,
// edits it (title and a new track, as a browser would) and waits for the server to have it.
// Strings Moviola writes are automerge scalar strings, which automerge 3 returns as
// ImmutableString objects: compare them with String(value).
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

const [wsUrl, docUrl] = process.argv.slice(2);
const repo = new Repo({ network: [new WebSocketClientAdapter(wsUrl)] });
const fail = (msg) => { console.error(msg); process.exit(1); };
setTimeout(() => fail("timed out"), 20000);

const handle = await repo.find(docUrl);
const doc = handle.doc();
const sawRustTrack = Object.values(doc.tracks).some((t) => String(t.name) === "from-rust");
const title = doc.title;
handle.change((d) => {
  d.title = "renamed by node";
  d.tracks["node-track"] = { kind: "video", name: "from-node", order: "z", muted: false, locked: false };
});
// Give the adapter time to push the change and the server time to acknowledge it.
await new Promise((r) => setTimeout(r, 1500));
console.log(JSON.stringify({ title, sawRustTrack }));
process.exit(0);
