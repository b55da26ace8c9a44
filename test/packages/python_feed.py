"""Follows a canvas room with the installed `switchboard_client` (no Socket.IO) against a live server.

    python python_feed.py <base_url>

Opens the room feed, adds a block, reads its `block_added`; then, with the feed closed, adds a
second block and resumes after the last event id (as a client that lost its connection would), and
prints what it saw as JSON.
"""
import json
import sys
import uuid

from switchboard_client import Client

BASE = sys.argv[1]
client = Client(BASE)
client.auth.register("feed-%s@example.test" % uuid.uuid4().hex[:8], "correct horse battery", "Feed")
canvas_id = client.canvases.create_canvas("Followed from Python")["canvas"]["id"]
out = {"live": [], "resumed": []}

with client.canvases.follow_canvas_events(canvas_id) as feed:
    for event in feed:
        out["live"].append({"event": event.event, "id": event.id})
        if event.event == "ready":
            client.blocks.create_block(canvas_id, {"type": "text", "content": {"text": "first"}})
        elif event.event == "block_added":
            out["firstText"] = event.data["block"]["content"]["text"]
            out["firstSeq"] = event.data["seq"]
            break
    last_id = feed.last_event_id

client.blocks.create_block(canvas_id, {"type": "text", "content": {"text": "missed"}})
with client.canvases.follow_canvas_events(canvas_id, last_event_id_header=last_id) as feed:
    for event in feed:
        out["resumed"].append({"event": event.event, "id": event.id})
        if event.event == "block_added":
            out["resumedText"] = event.data["block"]["content"]["text"]
            break

print(json.dumps(out))
