// A TypeScript consumer, type-checked with tsc --strict against the installed package's .d.ts.
import { Share, ShareError, library, type LibraryInfo, type ShareStats } from "opencode-share";

export async function share(url: string, session: string): Promise<string> {
  Share.init({ url, timeout_ms: 5000 });
  const { url: shareUrl, secret }: { url: string; secret: string } = await Share.create(session);
  Share.sync(`session/info/${session}`, { title: "typed" });
  await Share.flush(5000);
  const stats: ShareStats = Share.stats();
  const info: LibraryInfo | undefined = library();
  try {
    await Share.remove(session, secret);
  } catch (e) {
    if (e instanceof ShareError) console.error(e.code, e.status);
  }
  await Share.shutdown(5000);
  return `${shareUrl} ${stats.sent} ${info?.version ?? ""}`;
}
