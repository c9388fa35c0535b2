// Start json-server bound to 127.0.0.1 on a free port and print "LISTENING <port>".
// Usage: node json_server.mjs <1|017> <db.json>
// json-server 1.0's CLI ignores --host, so both versions are started from here.
import { createRequire } from "node:module";
import path from "node:path";

const [version, file] = process.argv.slice(2);
const modules = path.resolve(process.env.CASTIEL_NODE_MODULES);
const require = createRequire(path.join(modules, "noop.js"));

function announce(server) {
  console.log(`LISTENING ${server.address().port}`);
}

if (version === "1") {
  const { createApp } = await import(path.join(modules, "json-server/lib/app.js"));
  const { NormalizedAdapter } = await import(
    path.join(modules, "json-server/lib/adapters/normalized-adapter.js")
  );
  const { Low } = await import(require.resolve("lowdb"));
  const { JSONFile } = await import(require.resolve("lowdb/node"));
  const db = new Low(new NormalizedAdapter(new JSONFile(file)), {});
  await db.read();
  const app = createApp(db, { logger: false });
  const server = app.listen(0, () => announce(server), "127.0.0.1");
} else if (version === "017") {
  const jsonServer = require("json-server-017");
  const app = jsonServer.create();
  app.use(jsonServer.defaults({ logger: false }));
  app.use(jsonServer.router(file));
  const server = app.listen(0, "127.0.0.1", () => announce(server));
} else {
  console.error(`unknown json-server version ${version}`);
  process.exit(2);
}
