// Start @vercel/cosmosdb-server over HTTPS on 127.0.0.1 with the given certificate and print
// "LISTENING <port>". Usage: node cosmos_server.mjs <cert.pem> <key.pem>
// The package's bundled certificate expired in 2021 and its CLI takes no certificate option
// either, so the test fixture generates a fresh one and starts the server from here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [certFile, keyFile] = process.argv.slice(2);
const modules = path.resolve(process.env.CASTIEL_NODE_MODULES);
const require = createRequire(path.join(modules, "noop.js"));
const createServer = require("@vercel/cosmosdb-server").default;

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
server.listen(0, "127.0.0.1", () => console.log(`LISTENING ${server.address().port}`));
