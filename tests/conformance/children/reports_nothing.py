"""A stdio implementation that answers every request and reports no field: a campaign
against it compares nothing and must refuse to pass."""

import json
import sys

for line in sys.stdin:
    request = json.loads(line)
    answer = {"id": request["id"], "ok": True}
    if request["op"] == "hello":
        answer.update(name="reports-nothing", start="initial")
    elif request["op"] != "quit":
        answer["observation"] = {"fields": {}}
    print(json.dumps(answer), flush=True)
    if request["op"] == "quit":
        break
