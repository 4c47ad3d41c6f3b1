"""A local Moodle-compatible web service for the ingest benchmarks, in its own process.

It serves the companion plugin's ``local_archepredict_get_course_logs`` (courseid, afterid,
limit <= 5000, withcount) over real HTTP on 127.0.0.1, with Moodle's REST conventions (POST form
to ``/webservice/rest/server.php``, errors as HTTP 200 JSON bodies), from simulator log rows.
``tests/moodle_stub.py`` speaks the same protocol for the tests; this one is built for volume:
every row is serialised to JSON once at start-up (one ``to_json`` of the whole log into one
buffer, with the offset of each row), a page is found by binary search on the log id and sent
as a slice of that buffer, and it runs in a separate process so that the server does not
compete for the client's GIL (a real Moodle is another machine). Serialising each page on
request cost about 5 us a row, a fifth of a sync's time once the client got fast; what the
benchmark reports should be the tool's speed, not the stand-in's.

``POST /bench/visible`` with ``upto=N`` shows only rows with id <= N (``upto=0``: all rows): the
nightly benchmark reveals "new" events this way.

Run: ``python -m bench.moodle_ws LOG.pkl`` prints ``port N`` on stdout once it listens.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys
import threading
from typing import Any

import numpy as np
import pandas as pd
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from moodle_client.logs import LOG_COLUMNS

TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the local stub's own
LOG_FUNCTION = "local_archepredict_get_course_logs"
MAX_LIMIT = 5000


class LogService:
    def __init__(self, log: pd.DataFrame) -> None:
        log = log.sort_values("id", kind="stable").reset_index(drop=True)
        self.ids = log["id"].to_numpy(dtype=np.int64)
        # One JSON object per line (JSON text never holds a raw newline): row i is
        # body[starts[i]:ends[i]].
        body = log[list(LOG_COLUMNS)].to_json(orient="records", lines=True).encode()
        if body and not body.endswith(b"\n"):
            body += b"\n"
        self.body = body
        self.ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
        if len(self.ends) != len(self.ids):
            raise ValueError("the log's JSON lines do not match its rows")
        self.courseids = {int(c) for c in pd.unique(log["courseid"])}
        self.visible = len(self.ids)
        self.lock = threading.Lock()

    def set_visible(self, upto: int) -> None:
        with self.lock:
            if upto <= 0:
                self.visible = len(self.ids)
            else:
                self.visible = int(np.searchsorted(self.ids, upto, side="right"))

    def logs(self, params: dict[str, str]) -> bytes:
        courseid = int(params["courseid"])
        after = int(params.get("afterid", 0))
        limit = max(1, min(int(params.get("limit", 1000)), MAX_LIMIT))
        end = self.visible if courseid in self.courseids else 0
        lo = min(int(np.searchsorted(self.ids, after, side="right")), end)
        hi = min(lo + limit, end)
        rows = b""
        if hi > lo:
            start = int(self.ends[lo - 1]) + 1 if lo else 0
            rows = self.body[start : int(self.ends[hi - 1])].replace(b"\n", b",")
        lastid = int(self.ids[hi - 1]) if hi > lo else after
        tail: dict[str, Any] = {"lastid": lastid, "hasmore": hi < end}
        if params.get("withcount") in {"1", "true", "True"}:
            tail["remaining"] = end - lo
        return b'{"logs":[' + rows + b"]," + json.dumps(tail)[1:].encode()

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        params = dict(request.form.items())
        if request.path == "/bench/visible" and request.method == "POST":
            self.set_visible(int(params.get("upto", 0)))
            return Response("ok")(environ, start_response)
        if request.path != "/webservice/rest/server.php" or request.method != "POST":
            return Response("not found", status=404)(environ, start_response)
        name = params.pop("wsfunction", "")
        body: str | bytes
        if params.pop("wstoken", "") != TOKEN:
            body = json.dumps(
                {
                    "exception": "moodle_exception",
                    "errorcode": "invalidtoken",
                    "message": "Invalid token - token not found",
                }
            )
        elif name != LOG_FUNCTION:
            body = json.dumps(
                {
                    "exception": "dml_missing_record_exception",
                    "errorcode": "invalidrecordunknown",
                    "message": "Can't find data record in database table external_functions.",
                }
            )
        else:
            body = self.logs(params)
        return Response(body, mimetype="application/json")(environ, start_response)


def main(argv: list[str]) -> int:
    with open(argv[0], "rb") as fh:
        log = pickle.load(fh)  # noqa: S301 - a file the benchmark itself just wrote
    service = LogService(log)
    del log
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", 0, service.app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
