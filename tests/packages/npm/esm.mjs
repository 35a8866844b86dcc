// An ES-module consumer of the installed npm package (Node and Bun): share one session against
// the service named by argv, print the library's place and the share URL as JSON.
import { Share, library } from "opencode-share";

const [url, session] = process.argv.slice(2);
Share.init({ url, timeout_ms: 5000 });
const share = await Share.create(session);
Share.sync(`session/info/${session}`, { title: "from an ES module" });
await Share.flush(5000);
const info = library();
await Share.shutdown(5000);
console.log(JSON.stringify({ url: share.url, path: info?.path, backend: info?.backend, version: info?.version }));
