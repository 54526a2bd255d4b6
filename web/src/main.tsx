// Moviola's browser studio. Automerge's WebAssembly is loaded from its base64 build (no
// bundler plugin), then the app starts.
import { initializeBase64Wasm } from "@automerge/automerge/slim";
import { automergeWasmBase64 } from "@automerge/automerge/automerge.wasm.base64";
import "./style.css";

async function start() {
  await initializeBase64Wasm(automergeWasmBase64);
  const { mount } = await import("./app");
  mount(document.getElementById("app")!);
}

start().catch((e) => {
  document.body.textContent = `Moviola could not start: ${e}`;
});
