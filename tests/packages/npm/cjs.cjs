// The same consumer as CommonJS: require() of the ES-module package (Node >= 20.19, Bun).
const { Share, library } = require("opencode-share");

const [url, session] = process.argv.slice(2);
(async () => {
  Share.init({ url, timeout_ms: 5000 });
  const share = await Share.create(session);
  Share.sync(`session/info/${session}`, { title: "from CommonJS" });
  await Share.flush(5000);
  const info = library();
  await Share.shutdown(5000);
  console.log(JSON.stringify({ url: share.url, path: info && info.path, backend: info && info.backend, version: info && info.version }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
