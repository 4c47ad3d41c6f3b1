#!/usr/bin/env bash
# Copy the pinned front-end libraries into lti_app/static/vendor (committed), so the app serves
# them itself: no CDN, no npm at run time. Run through `make vendor` after changing package.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund >/dev/null
out=../lti_app/static/vendor
rm -rf "$out"
mkdir -p "$out"
cp node_modules/bootstrap/dist/css/bootstrap.min.css "$out/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js "$out/"
cp node_modules/vega/build/vega.min.js "$out/"
cp node_modules/vega-lite/build/vega-lite.min.js "$out/"
cp node_modules/vega-embed/build/vega-embed.min.js "$out/"
# axe-core is for the accessibility tests only: it is not served.
mkdir -p ../tests/e2e/vendor
cp node_modules/axe-core/axe.min.js ../tests/e2e/vendor/
cp node_modules/axe-core/LICENSE ../tests/e2e/vendor/LICENSE.axe-core
# vega-interpreter (expressions without eval, for a CSP without 'unsafe-eval') ships only as an
# ES module: bundle it into a browser global `vegaInterpreter`.
node_modules/.bin/esbuild node_modules/vega-interpreter/build/vega-interpreter.js \
  --bundle --minify --format=iife --global-name=vegaInterpreter \
  --outfile="$out/vega-interpreter.min.js" --log-level=warning
# Licences travel with the code.
for pkg in bootstrap vega vega-lite vega-embed vega-interpreter; do
  cp "node_modules/$pkg/LICENSE" "$out/LICENSE.$pkg" 2>/dev/null || true
done
node -e '
const fs = require("fs");
const pkgs = ["bootstrap", "vega", "vega-lite", "vega-embed", "vega-interpreter", "axe-core", "esbuild"];
const v = Object.fromEntries(pkgs.map(p => [p, require("./node_modules/" + p + "/package.json").version]));
fs.writeFileSync(process.argv[1], JSON.stringify(v, null, 2) + "\n");
' "$out/VERSIONS.json"
ls -la "$out"
