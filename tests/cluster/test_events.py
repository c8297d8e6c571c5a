#!/usr/bin/env python3
"""GET /v1/events, the peer's Server-Sent Events stream (docs/cli.md "Local HTTP API").

Peer 1's stream is read the whole time while the cluster works:
- backup, restore, check and repair each show as a "job" event with state "running" and then
  one with state "done", with the same job id and kind;
- peer 3, SIGKILLed, shows as "peer" events alive -> suspect -> dead, and alive again after it
  restarts;
- the stream needs the API token (401 without), a second stream with Last-Event-ID gets the
  events after that id again, and the peer's SIGTERM ends the stream (the reader sees the end).
"""

import http.client
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class EventReader:
    """Reads one event stream on a thread; events as (id, type, data) in arrival order."""

    def __init__(self, port: int, token: str, last_event_id: int = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type", "")
        self.events = []
        self.comments = []
        self.ended = False
        self.cv = threading.Condition()
        if self.status == 200:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        fields = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                with self.cv:
                    if line == "":
                        if "event" in fields:
                            self.events.append((int(fields.get("id", "0")), fields["event"],
                                                json.loads(fields.get("data", "null"))))
                        fields = {}
                        self.cv.notify_all()
                    elif line.startswith(":"):
                        self.comments.append(line)
                        self.cv.notify_all()
                    else:
                        k, _, v = line.partition(":")
                        fields[k] = v[1:] if v.startswith(" ") else v
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the connection closed under the reader (close() below, or the peer)
        with self.cv:
            self.ended = True
            self.cv.notify_all()

    def wait(self, cond, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:.0f} s; events: "
                                         f"{self.events[-20:]}")
                self.cv.wait(left)

    def find(self, etype: str, **want):
        with self.cv:
            return [e for e in self.events
                    if e[1] == etype and all(e[2].get(k) == v for k, v in want.items())]

    def close(self):
        self.conn.close()


class EventsTest(harness.ClusterTestCase):
    def test_event_stream(self):
        c = self.make_cluster(3, suspect_after="1s", dead_after="3s")
        p1 = c.peer(1)
        port = c.wait_api(1)

        s, body = c.http(1, "GET", "/v1/events", token="0" * 64)
        self.assertEqual(s, 401, body)

        r = EventReader(port, p1.token())
        self.assertEqual(r.status, 200)
        self.assertTrue(r.content_type.startswith("text/event-stream"), r.content_type)
        r.wait(lambda: ": cairn events" in r.comments, 30, "the stream's first comment")

        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "a.bin"), "wb") as f:
            f.write(os.urandom(300_000))
        c.cli(1, "backup", src)
        target = os.path.join(self.tmp, "restored")
        c.cli(1, "restore", "latest", "--target", target)
        c.cli(1, "check")
        c.cli(1, "repair")
        for kind in ("backup", "restore", "check", "repair"):
            r.wait(lambda: r.find("job", kind=kind, state="done"), 30, f"{kind} done")
            done = r.find("job", kind=kind, state="done")[0]
            started = r.find("job", kind=kind, state="running", id=done[2]["id"])
            self.assertEqual(len(started), 1, (kind, r.events))
            self.assertLess(started[0][0], done[0], (kind, "running after done"))
        self.assertEqual(r.find("job", state="failed"), [])

        c.peer(3).kill9()
        r.wait(lambda: r.find("peer", peer_id=3, state="dead"), 60, "peer 3 dead")
        suspect = r.find("peer", peer_id=3, state="suspect", was="alive")
        dead = r.find("peer", peer_id=3, state="dead", was="suspect")
        self.assertTrue(suspect and dead, r.events)
        self.assertLess(suspect[0][0], dead[0][0])
        self.assertEqual(dead[0][2]["address"], c.peer(3).listen)
        c.peer(3).start()
        r.wait(lambda: r.find("peer", peer_id=3, state="alive", was="dead"), 60,
               "peer 3 alive again")

        # Ids increase by one; a second stream from an earlier id gets the same events again.
        ids = [e[0] for e in r.events]
        self.assertEqual(ids, list(range(ids[0], ids[0] + len(ids))), ids)
        again = EventReader(port, p1.token(), last_event_id=suspect[0][0] - 1)
        self.assertEqual(again.status, 200)
        again.wait(lambda: any(e[0] == dead[0][0] for e in again.events), 30, "replayed events")
        self.assertEqual(again.events[0], suspect[0])
        again.close()

        t0 = time.monotonic()
        self.assertEqual(p1.stop(), 0, p1.log_tail())
        r.wait(lambda: r.ended, 30, "the end of the stream at shutdown")
        self.assertLess(time.monotonic() - t0, 30)
        r.close()


if __name__ == "__main__":
    harness.main()
