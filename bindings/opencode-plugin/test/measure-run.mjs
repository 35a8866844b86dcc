// Side by side in one run: `opencode run --share` with a fast answer (reasoning, text, a `read`
// tool call, a second turn), without and with the plugin: how many of the export's session,
// message and part items the service holds identical when the command returns.
//
//   node test/measure-run.mjs [runs per mode, default 2]

import { differences, exportItems } from "./compare.mjs";
import { startModel } from "./fake-model.mjs";
import { exportSession, makeProject, opencode, startServer } from "./harness.mjs";

const runs = Number(process.argv[2] ?? 2);
const model = await startModel();
const server = await startServer();
const modes = [
  { name: "opencode alone (no plugin)", plugin: false, enterpriseUrl: server.url },
  { name: "with the plugin", plugin: true, pluginOptions: { url: server.url } },
];
const lines = [];
try {
  for (const mode of modes) {
    for (let i = 0; i < runs; i++) {
      model.setPlan({ words: 8, delayMs: 2, tool: "hello.txt", hold: false, tag: "" });
      const p = makeProject({ modelUrl: model.url, ...mode });
      try {
        const r = await opencode(p, ["run", "--share", "--print-logs", "read hello.txt"]);
        const sessionID = /sessionID=(ses_\w+)/.exec(r.stderr)?.[1];
        const shareID = /~\s+http:\/\/127\.0\.0\.1:\d+\/share\/([\w-]+)/.exec(r.stdout + r.stderr)?.[1];
        // read the service first: the export below starts opencode again (with the plugin, a restart)
        const held = shareID ? await server.data(shareID) : { items: [] };
        const exported = await exportSession(p, sessionID);
        const total = exportItems(exported).size;
        const wrong = differences(exported, held.items).filter((d) => !d.includes("not in the export")).length;
        const text = held.items.some((it) => it.type === "part" && it.data.type === "text" && /wa7/.test(it.data.text));
        lines.push(`| ${mode.name} | ${i + 1} | ${total - wrong} of ${total} | ${text ? "yes" : "no"} |`);
        console.error(lines[lines.length - 1]);
      } finally {
        p.cleanup();
      }
    }
  }
} finally {
  await model.close();
  await server.close();
}
console.log("| mode | run | export items on the service, identical | the answer's text there |");
console.log("| --- | --- | --- | --- |");
for (const line of lines) console.log(line);
