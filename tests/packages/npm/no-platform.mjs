// A consumer of the main npm package installed without its platform package: starting the
// library must fail with an error that names the package to install. Prints it as JSON.
import { Share } from "opencode-share";

try {
  Share.init({ url: "http://127.0.0.1:9" });
  await Share.shutdown(1000);
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message }));
}
