"""Whole-body examples: one per model, keyed by the model's name, for the OpenAPI document
(each request body and 2xx response of the main flow) and the MCP tools' input schemas.

One story throughout (the seed manual's start, Ada's session, its first step DONE, a webhook
endpoint, an agent key), so the examples of one operation lead to the next's: the request
examples, sent in the order of the flow to an empty service, succeed (tests/contract/
test_examples.py sends them). Answers are built from the requests they answer, and every
example is validated by its model where the document is built (chalicelib/api/openapi.py):
a model change that an example no longer fits fails there, not in a reader's hands.
Imported only when the document or the tool list is built (cold start).
"""

from __future__ import annotations

from typing import Any

# ---- ids and moments of the story ----------------------------------------------------------

MANUAL_ID = "intro-python"
SESSION_ID = "sess-ada-1"
USER_ID = "ada@example.com"
ENDPOINT_ID = "ep_5f0c2a9d8e7b4c31a2d4e6f8091b3c5d"
KEY_ID = "3f9a1c2e4b6d8f07"
INBOX_ID = "my-inbox"
EVENT_ID = "evt_0661a3c4d3278004ebac3d18c1de6ea"  # occurred at STEP_1_DONE in SESSION_ID's window shard
CREATED = "2026-12-01T09:00:00.000000Z"
STARTED = "2026-12-02T10:00:00.000000Z"
STEP_1_DONE = "2026-12-02T10:04:30.000000Z"
ENDED = "2026-12-02T10:20:00.000000Z"
NOW = "2026-12-02T10:30:00.000000Z"

# ---- requests ------------------------------------------------------------------------------

STEPS = [
    {"step_number": 1, "title": "Install Python",
     "content": "Install Python 3.12 from python.org and check it with `python3 --version`."},
    {"step_number": 2, "title": "Your first program", "content": "Write hello.py: print('Hello')."},
    {"step_number": 3, "title": "Variables", "content": "Store a name in a variable and print a greeting."},
]
MANUAL_CREATE = {"manual_id": MANUAL_ID, "title": "Introduction to Python", "steps": STEPS}
SESSION_CREATE = {"session_id": SESSION_ID, "user_id": USER_ID, "manual_id": MANUAL_ID}
MESSAGE_IN = {"user_id": USER_ID, "message": "Python 3.12 is installed. What now?", "sender": "user",
              "message_id": "msg-ada-2"}
MESSAGE_WITH_SESSION = {"session_id": SESSION_ID, "user_id": USER_ID, "message": "How do I install Python?",
                        "sender": "user", "message_id": "msg-ada-1"}
PROGRESS_IN = {"user_id": USER_ID, "current_step": 1, "step_status": "DONE",
               "idempotency_key": "sess-ada-1:step-1:DONE"}
SESSION_PATCH = {"status": "ended"}
ENDPOINT_CREATE = {"url": "https://tutor.example.com/webhooks", "description": "The tutor's LMS",
                   "event_types": ["progress_update:DONE", "session_ended"]}
ENDPOINT_PATCH = {"description": "The tutor's LMS (completions only)", "event_types": ["session_ended"]}
ROTATE_SECRET = {"grace_seconds": 3600}
REPLAY_REQUEST = {"since": "2026-12-02T00:00:00Z", "until": "2026-12-03T00:00:00Z", "limit": 100}
KEY_CREATE = {"name": "Tutor agent", "scopes": ["agent"]}
KEY_PATCH = {"rate_per_second": 5, "burst": 10, "daily_quota": 10000}
INBOX_CREATE = {"inbox_id": INBOX_ID, "name": "Payment webhooks",
                "response": {"status": 200, "content_type": "application/json", "body": "{\"ok\": true}"},
                "ttl_days": 7}
INBOX_PATCH = {"paused": True}
JSON_RPC_MESSAGE = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "get_next_step", "arguments": {"session_id": SESSION_ID}}}

# ---- answers, built from the requests ------------------------------------------------------


def _summary(step: dict[str, Any]) -> dict[str, Any]:
    return {"step_number": step["step_number"], "title": step["title"], "content": step["content"],
            "total_steps": len(STEPS)}


MANUAL = {"manual_id": MANUAL_ID, "title": MANUAL_CREATE["title"], "total_steps": len(STEPS),
          "created_at": CREATED, "active_sessions": 0, "steps": STEPS}
SESSION_OUT = {"session_id": SESSION_ID, "user_id": USER_ID, "manual_id": MANUAL_ID, "status": "active",
               "current_step": 1, "total_steps": len(STEPS), "completed_steps": [], "started_at": STARTED,
               "ended_at": None, "last_activity_at": STARTED, "duration_seconds": 0.0, "end_reason": None,
               "message_count": 0, "summary": None, "version": 1}
AFTER_STEP_1 = {**SESSION_OUT, "current_step": 2, "completed_steps": [1], "last_activity_at": STEP_1_DONE,
                "duration_seconds": 270.0, "message_count": 2, "version": 2}
ENDED_SESSION = {**AFTER_STEP_1, "status": "ended", "ended_at": ENDED, "end_reason": "ended",
                 "duration_seconds": 1200.0, "version": 3,
                 "summary": {"steps_completed": 1, "total_steps": len(STEPS), "completion_ratio": 0.3333,
                             "duration_seconds": 1200.0, "time_per_step": [{"step": 1, "seconds": 270.0}],
                             "average_step_seconds": 270.0, "messages": {"user": 2, "agent": 0, "total": 2},
                             "first_activity_at": STARTED, "last_activity_at": STEP_1_DONE,
                             "end_reason": "ended"}}
PROGRESS_OUT = {"session": AFTER_STEP_1, "applied": True, "out_of_order": False,
                "next_step": _summary(STEPS[1]), "event_id": EVENT_ID}
MESSAGE = {"message_id": "msg-ada-1", "session_id": SESSION_ID, "user_id": USER_ID, "sender": "user",
           "message": MESSAGE_WITH_SESSION["message"], "created_at": "2026-12-02T10:01:00.000000Z"}
EVENT = {"event_id": EVENT_ID, "event_type": "progress_update", "session_id": SESSION_ID, "user_id": USER_ID,
         "manual_id": MANUAL_ID, "sequence": 2, "step": 1, "step_status": "DONE", "previous_step": 1,
         "current_step": 2, "total_steps": len(STEPS), "session_status": "active", "applied": True,
         "out_of_order": False, "reason": None, "completed_steps": [1], "started_at": STARTED,
         "ended_at": None, "occurred_at": STEP_1_DONE, "summary": None, "delivery_status": "delivered",
         "delivery_attempts": [{"endpoint_id": ENDPOINT_ID, "attempt": 1, "status_code": 200,
                                "error": None, "at": "2026-12-02T10:04:31.000000Z"}],
         "deliveries": {ENDPOINT_ID: {"status": "delivered", "round": "0", "attempt_count": 1,
                                      "at": "2026-12-02T10:04:31.000000Z"}}}
STATS: dict[str, Any] = {
    "attempts": 12, "delivered": 12, "success_rate": 1.0, "p50_latency_ms": 41, "p99_latency_ms": 180,
    "last_error": None, "last_error_at": None, "last_success_at": "2026-12-02T10:04:31.000000Z",
    "failing_since": None, "recent_attempts": []}
ENDPOINT = {"endpoint_id": ENDPOINT_ID, **ENDPOINT_CREATE, "enabled": True, "disabled_reason": None,
            "disabled_at": None, "created_at": CREATED, "updated_at": CREATED, "secret_rotated_at": None,
            "previous_secret_expires_at": None, "stats": STATS}
NEW_STATS = {**STATS, "attempts": 0, "delivered": 0, "success_rate": None, "p50_latency_ms": None,
             "p99_latency_ms": None, "last_success_at": None}
API_KEY = {"key_id": KEY_ID, "name": KEY_CREATE["name"], "scopes": KEY_CREATE["scopes"], "user_id": None,
           "created_at": CREATED, "revoked_at": None, "rate_per_second": None, "burst": None, "daily_quota": None}
INBOX = {"inbox_id": INBOX_ID, "name": INBOX_CREATE["name"], "capture_path": f"/v1/hooks/{INBOX_ID}",
         "response": INBOX_CREATE["response"], "verifies_signatures": False, "ttl_days": 7, "paused": False,
         "forward_to": [], "created_at": CREATED}

CAPTURE = {"request_id": "req_0123456789abcdef", "method": "POST", "path": f"/v1/hooks/{INBOX_ID}",
           "query": {}, "headers": {"content-type": "application/json", "webhook-id": "msg_2b1c",
                                    "webhook-signature": "v1,****"},
           "content_type": "application/json", "body_encoding": "text", "body": "{\"order\": 42}",
           "size_bytes": 13, "source_ip": "203.0.113.7", "user_agent": "payments/2.1", "received_at": NOW,
           "signature": None, "idempotency_key": "msg_2b1c", "duplicates": 0, "conflict": False,
           "conflict_with": None, "forwards": []}
HOUR = {"hour": "2026-12-02T10", "captures": 3, "duplicates": 1, "conflicts": 0, "answered": {"200": 3},
        "signatures": {}, "forwards": {}}

# model name -> its example (validated by that model where it is used)
EXAMPLES: dict[str, dict[str, Any]] = {
    # requests
    "ManualCreate": MANUAL_CREATE, "SessionCreate": SESSION_CREATE, "MessageIn": MESSAGE_IN,
    "MessageWithSession": MESSAGE_WITH_SESSION, "ProgressIn": PROGRESS_IN, "SessionPatch": SESSION_PATCH,
    "EndpointCreate": ENDPOINT_CREATE, "EndpointPatch": ENDPOINT_PATCH, "RotateSecret": ROTATE_SECRET,
    "ReplayRequest": REPLAY_REQUEST, "KeyCreate": KEY_CREATE, "KeyPatch": KEY_PATCH,
    "InboxCreate": INBOX_CREATE, "InboxPatch": INBOX_PATCH, "JsonRpcMessage": JSON_RPC_MESSAGE,
    # answers
    "Manual": MANUAL,
    "ManualPage": {"items": [{k: MANUAL[k] for k in ("manual_id", "title", "total_steps", "created_at")}],
                   "next_cursor": None},
    "SessionOut": SESSION_OUT,
    "SessionPage": {"items": [AFTER_STEP_1], "next_cursor": None},
    "Message": MESSAGE,
    "MessagePage": {"items": [MESSAGE], "next_cursor": "eyJtZXNzYWdlX2lkIjoibXNnLWFkYS0xIn0"},
    "ProgressOut": PROGRESS_OUT,
    "AlreadyProcessed": {"status": "already_processed", "original_result": PROGRESS_OUT},
    "NextStepOut": {"session_id": SESSION_ID, "is_completed": False, "total_steps": len(STEPS),
                    "completed_steps": [1], "next_step": _summary(STEPS[1])},
    "EventPage": {"items": [EVENT], "next_cursor": None},
    "Endpoint": ENDPOINT,
    "EndpointCreated": {**ENDPOINT, "stats": NEW_STATS,
                        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "EndpointPage": {"items": [ENDPOINT], "next_cursor": None},
    "EndpointUpdated": {**ENDPOINT, **ENDPOINT_PATCH, "updated_at": NOW, "replay_hint": None},
    "SecretRotated": {"endpoint_id": ENDPOINT_ID, "secret": "whsec_Q2hhbmdlZCBzZWNyZXQgZm9yIGV4YW1wbGU",
                      "previous_secret_expires_at": "2026-12-02T11:30:00.000000Z"},
    "TestSent": {"endpoint_id": ENDPOINT_ID, "event_id": "evt_ping_1889f2c4a7b3e000",
                 "status": "queued"},
    "PingStatus": {"endpoint_id": ENDPOINT_ID, "event_id": "evt_ping_1889f2c4a7b3e000",
                   "status": "delivered", "attempt_count": 1, "max_attempts": 8, "next_attempt_at": None,
                   "created_at": NOW, "updated_at": NOW,
                   "attempts": [{"attempt": 1, "of": 8, "outcome": "delivered", "status_code": 200, "error": None,
                                 "latency_ms": 42, "at": NOW, "retry_in_seconds": None}]},
    "ReplayProgress": {"endpoint_id": ENDPOINT_ID, "queued": 3, "scanned": 3, "next_cursor": None, "done": True},
    "ApiKey": {**API_KEY, **KEY_PATCH, "rate_per_second": 5.0},
    "ApiKeyCreated": {**API_KEY, "key": "ssk_rVUgUIGqOwdNGw2QkmnCzkelznp1y0bcQOtG8pYgQtA"},
    "ApiKeyPage": {"items": [API_KEY], "next_cursor": None},
    "Inbox": INBOX,
    "InboxCreated": {**INBOX, "read_token": "leu6oOANzmJBqKJAiintdwjkejLmD4Dfdhp-v7zFqQk",
                     "capture_url": f"https://api.example.com/api/v1/hooks/{INBOX_ID}"},
    "JsonRpcResult": {"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": "Next: step 2 of 3, Your first program."}],
        "structuredContent": {"session_id": SESSION_ID, "is_completed": False, "total_steps": len(STEPS),
                              "completed_steps": [1], "next_step": _summary(STEPS[1])},
        "isError": False}},
    "JsonRpcErrorResponse": {"jsonrpc": "2.0", "id": 1,
                             "error": {"code": -32601, "message": "Method not found: tools/lst"}},
    # beyond the main flow: analytics, deliveries, health, captures
    "Overview": {"sessions": {"total": 120, "by_status": {"active": 14, "completed": 81, "ended": 9, "abandoned": 16}},
                 "manuals": 6, "messages": 2210, "deliveries_failed": 2, "completion_rate": 0.675,
                 "average_completion_seconds": 1710.4, "median_completion_seconds": 1502.0},
    "PopularManuals": {"items": [{"manual_id": MANUAL_ID, "sessions_started": 64, "sessions_completed": 47,
                                  "completion_rate": 0.734}]},
    "RecentActivity": {"hours": 2, "buckets": [
        {"hour": "2026-12-02T09:00:00Z", "sessions_started": 3, "steps_completed": 11, "messages": 40,
         "sessions_ended": 2},
        {"hour": "2026-12-02T10:00:00Z", "sessions_started": 1, "steps_completed": 1, "messages": 2,
         "sessions_ended": 1}],
        "totals": {"sessions_started": 4, "steps_completed": 12, "messages": 42, "sessions_ended": 3}},
    "Redelivery": {"event_id": EVENT_ID, "status": "queued", "endpoints": [ENDPOINT_ID]},
    "DeliveryPage": {"items": [{
        "event_id": EVENT_ID, "event_type": "progress_update", "session_id": SESSION_ID,
        "occurred_at": STEP_1_DONE, "delivery_status": "failed",
        "delivery_attempts": [{"endpoint_id": ENDPOINT_ID, "attempt": 8, "status_code": 503, "error": None,
                               "at": "2026-12-02T22:04:31.000000Z"}],
        "failed_endpoints": [ENDPOINT_ID],
        "deliveries": {ENDPOINT_ID: {"status": "failed", "round": "0", "attempt_count": 8,
                                     "at": "2026-12-02T22:04:31.000000Z"}}}], "next_cursor": None},
    "RedriveResult": {"moved": 2, "remaining": 0},
    "Live": {"status": "ok"},
    "Ready": {"status": "ok", "checks": {"table": "ok", "queue": "ok"}},
    "HealthSummary": {"status": "ok", "version": "0.3.0", "checks": {"table": "ok", "queue": "ok"}},
    "Capture": CAPTURE,
    "CapturePage": {"items": [CAPTURE], "next_cursor": None},
    "InboxMetrics": {"inbox_id": INBOX_ID, "hours": [HOUR], "totals": HOUR},
    # the MCP tools' arguments (chalicelib/api/mcp/tools.py)
    "ListManualsArgs": {"limit": 20},
    "GetManualArgs": {"manual_id": MANUAL_ID},
    "SessionArgs": {"session_id": SESSION_ID},
    "RecordMessageArgs": MESSAGE_WITH_SESSION,
    "ReportProgressArgs": {"session_id": SESSION_ID, **PROGRESS_IN},
    "ConversationArgs": {"session_id": SESSION_ID, "limit": 50},
    "EndSessionArgs": {"session_id": SESSION_ID, **SESSION_PATCH},
}
# an operation whose answer is a later moment of the story than its model's example
BY_OPERATION: dict[str, dict[str, Any]] = {"endSession": ENDED_SESSION}
