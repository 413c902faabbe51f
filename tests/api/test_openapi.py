"""The OpenAPI document: generated from the route table and models that serve requests."""

from __future__ import annotations

import json

from app import app
from chalicelib.api import openapi
from chalicelib.api.schemas import ErrorBody
from tests.conftest import manual_body


def documented(method: str, template: str, status: int):
    responses = openapi.document()["paths"][template][method.lower()]["responses"]
    op = next(o for o in openapi.operations if o.method == method and o.path == template)
    if op.raw_body:  # the capture route: any status, as its inbox is configured (`default`)
        assert "*/*" in responses["default"]["content"]
        return None
    assert str(status) in responses, (method, template, status)
    return op.responses.get(status, ErrorBody if status >= 400 else None)


def test_every_route_is_documented(api) -> None:
    doc = api.get("/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    routes = {(method, path) for path, methods in app.routes.items() for method in methods}
    in_doc = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    # every route but the HEAD each GET answers too (HTTP defines it; the capture URL, which
    # answers HEAD as a method of its own, documents it)
    implied = {("HEAD", path) for method, path in routes if method == "GET"} - {("HEAD", "/v1/hooks/{inbox_id}")}
    # and the routes declared documented=False (GET /v1/mcp: only ever 405, said by the POST)
    hidden = {(op.method, op.path) for op in openapi.operations if not op.documented} - implied
    assert hidden == {("GET", "/v1/mcp")}
    assert implied <= routes and not implied & in_doc
    assert routes - implied - hidden == in_doc
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["summary"] and "default" in op["responses"]


def test_documented_models_validate_real_responses(api) -> None:
    checked = 0
    token: dict[str, str] = {}

    def check(method: str, template: str, path: str, body=None, headers=None, raw=None) -> dict:
        nonlocal checked
        response = api.request(method, path, body, headers={**token, **(headers or {})}, raw=raw)
        model = documented(method, template, response.status_code)
        if model is not None:
            choices = model if isinstance(model, list) else [model]
            errors = []
            for choice in choices:
                try:
                    choice.model_validate(response.json)
                    break
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)
            else:
                raise AssertionError((method, path, errors))
        checked += 1
        return response.json

    check("POST", "/v1/manuals", "/v1/manuals", manual_body("m", steps=3))
    check("POST", "/v1/manuals", "/v1/manuals", manual_body("m", steps=3))
    check("GET", "/v1/manuals", "/v1/manuals")
    check("GET", "/v1/manuals/{manual_id}", "/v1/manuals/m")
    check("POST", "/v1/sessions", "/v1/sessions", {"session_id": "s", "user_id": "u", "manual_id": "m"})
    check("GET", "/v1/sessions", "/v1/sessions?status=active")
    check("GET", "/v1/sessions/{session_id}", "/v1/sessions/s")
    done = {"user_id": "u", "current_step": 1, "step_status": "DONE", "idempotency_key": "k"}
    event_id = check("POST", "/v1/sessions/{session_id}/progress", "/v1/sessions/s/progress", done)["event_id"]
    check("POST", "/v1/sessions/{session_id}/progress", "/v1/sessions/s/progress", done)
    check("GET", "/v1/sessions/{session_id}/next-step", "/v1/sessions/s/next-step")
    check("POST", "/v1/messages", "/v1/messages", {"session_id": "s", "user_id": "u", "message": "hi", "sender": "user"})
    check("POST", "/v1/sessions/{session_id}/messages", "/v1/sessions/s/messages", {"user_id": "u", "message": "yo", "sender": "agent"})
    check("GET", "/v1/sessions/{session_id}/messages", "/v1/sessions/s/messages")
    check("GET", "/v1/sessions/{session_id}/events", "/v1/sessions/s/events")
    check("POST", "/v1/events/{event_id}/redeliver", f"/v1/events/{event_id}/redeliver")
    check("GET", "/v1/deliveries", "/v1/deliveries?status=failed")
    check("PATCH", "/v1/sessions/{session_id}", "/v1/sessions/s", {"status": "ended"})
    check("GET", "/v1/analytics/overview", "/v1/analytics/overview")
    check("GET", "/v1/analytics/popular-manuals", "/v1/analytics/popular-manuals")
    check("GET", "/v1/analytics/recent-activity", "/v1/analytics/recent-activity?hours=2")
    token["X-Inbox-Token"] = check("POST", "/v1/inboxes", "/v1/inboxes", {"inbox_id": "box"})["read_token"]
    check("POST", "/v1/hooks/{inbox_id}", "/v1/hooks/box", raw=json.dumps({"a": 1}))
    request_id = check("GET", "/v1/inboxes/{inbox_id}/requests", "/v1/inboxes/box/requests")["items"][0]["request_id"]
    check("GET", "/v1/inboxes/{inbox_id}/requests/{request_id}", f"/v1/inboxes/box/requests/{request_id}")
    check("GET", "/v1/inboxes/{inbox_id}", "/v1/inboxes/box")
    check("PATCH", "/v1/inboxes/{inbox_id}", "/v1/inboxes/box", {"paused": True})
    check("POST", "/v1/hooks/{inbox_id}", "/v1/hooks/box", raw="{}")  # paused: 410
    check("DELETE", "/v1/inboxes/{inbox_id}", "/v1/inboxes/box")
    for path in ("/health/live", "/health/ready", "/health"):
        check("GET", path, path)
    check("GET", "/v1/openapi.json", "/v1/openapi.json")
    check("DELETE", "/v1/sessions/{session_id}", "/v1/sessions/s")
    check("DELETE", "/v1/manuals/{manual_id}", "/v1/manuals/m")
    # errors follow the documented error body
    for path in ("/v1/sessions/nope", "/v1/manuals/nope", "/v1/sessions?limit=0"):
        ErrorBody.model_validate(api.get(path).json)
    assert checked >= 30


def test_docs_page_is_served(api) -> None:
    response = api.client.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"openapi.json" in response.body


def test_operations_have_semantic_ids_and_exact_path_and_header_values(api) -> None:
    document = api.get("/v1/openapi.json").json
    operations = {(path, method): op for path, ops in document["paths"].items() for method, op in ops.items()}
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids))  # unique: a generated client's method names
    assert operations[("/v1/sessions/{session_id}/progress", "post")]["operationId"] == "reportProgress"
    assert operations[("/v1/sessions/{session_id}/next-step", "get")]["operationId"] == "getNextStep"
    assert operations[("/v1/sessions", "post")]["operationId"] == "startSession"
    assert operations[("/v1/sessions", "get")]["operationId"] == "listSessions"
    assert operations[("/v1/hooks/{inbox_id}", "put")]["operationId"] == "capturePut"

    def parameter(path: str, method: str, name: str) -> dict:
        return next(p for p in operations[(path, method)]["parameters"] if p["name"] == name)

    # every path id says what it may be, as its route checks it
    for (path, method), op in operations.items():
        for p in op.get("parameters", []):
            if p["in"] == "path" and p["name"] != "asset":
                assert "pattern" in p["schema"], (path, method, p["name"])
    # an invalid session id is refused as its pattern says; a valid unknown one is a 404
    pattern = parameter("/v1/sessions/{session_id}", "get", "session_id")["schema"]["pattern"]
    assert pattern == "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
    assert api.get("/v1/sessions/-bad").status_code == 400
    assert api.get("/v1/sessions/good-but-unknown").status_code == 404
    # Idempotency-Key: a message_id for messages, the progress key for progress
    message_key = parameter("/v1/messages", "post", "Idempotency-Key")["schema"]["pattern"]
    progress_key = parameter("/v1/sessions/{session_id}/progress", "post", "Idempotency-Key")["schema"]["pattern"]
    assert (message_key, progress_key) == (pattern, "^[\\x21-\\x7e]{1,255}$")


def test_every_status_a_route_answers_is_documented_with_its_codes_and_headers(api) -> None:
    from chalicelib.domain import errors

    document = api.get("/v1/openapi.json").json
    error = document["components"]["schemas"]["ErrorBody"]["properties"]["error"]
    assert error["enum"] == list(errors.codes())  # derived from domain/errors.py
    assert {"session_ended", "inbox_paused", "internal_error"} <= set(error["enum"])
    progress = document["paths"]["/v1/sessions/{session_id}/progress"]["post"]
    responses = progress["responses"]
    assert {"200", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503", "default"} <= set(responses)
    assert "Idempotent-Replayed" in responses["200"]["headers"]
    assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert set(responses["400"]["content"]["application/json"]["schema"]["properties"]["error"]["enum"]) == {
        "validation_error", "invalid_json", "session_ended", "invalid_step"}
    # what the route really answers is within what the document says
    status = api.post("/v1/sessions/nope/progress", {"user_id": "u", "current_step": 1, "step_status": "DONE"})
    assert status.status_code == 404 and status.json["error"] in (
        responses["404"]["content"]["application/json"]["schema"]["properties"]["error"]["enum"])
    # described for an LLM, every parameter and every field
    parameters = [p for ops in document["paths"].values() for op in ops.values() for p in op.get("parameters", [])]
    assert parameters and all(p["description"] for p in parameters)
    fields = [f for s in document["components"]["schemas"].values() for f in s.get("properties", {}).values()]
    assert len(fields) > 200 and all(f.get("description") for f in fields)
    assert all(op.get("description") for ops in document["paths"].values() for op in ops.values()
               if op["operationId"] not in ("dashboardPage", "docsPage", "healthLive", "healthReady",
                                            "healthSummary", "getOpenApiDocument", "dashboardAsset"))
    # typed and bounded query parameters; timestamps are date-times
    hours = next(p for p in document["paths"]["/v1/analytics/recent-activity"]["get"]["parameters"])
    assert hours["schema"] == {"type": "integer", "minimum": 1, "maximum": 168, "default": 24}
    status = next(p for p in document["paths"]["/v1/sessions"]["get"]["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == ["active", "completed", "ended", "abandoned"]
    assert document["components"]["schemas"]["SessionOut"]["properties"]["started_at"]["format"] == "date-time"
    # links: a started session leads to its operations
    links = document["paths"]["/v1/sessions"]["post"]["responses"]["201"]["links"]
    assert links["reportProgress"]["parameters"] == {"session_id": "$response.body#/session_id"}
    # the inbox token is a security scheme, needed with the API key
    assert document["paths"]["/v1/inboxes/{inbox_id}"]["get"]["security"] == [{"apiKey": [], "inboxToken": []}]
    # the capture route answers as its inbox is configured
    capture = document["paths"]["/v1/hooks/{inbox_id}"]["post"]
    assert list(capture["responses"]) == ["default"] and "*/*" in capture["responses"]["default"]["content"]


def test_text_patterns_refuse_what_the_validators_refuse(api) -> None:
    import re

    document = api.get("/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    assert schemas["ProgressIn"]["properties"]["user_id"]["$ref"] == "#/components/schemas/IdentifierText"
    identifier = re.compile(schemas["IdentifierText"]["pattern"])
    title = re.compile(schemas["DisplayText"]["pattern"])
    text = re.compile(schemas["LongText"]["pattern"])
    assert identifier.search("ada@example.com") and not identifier.search("ada lovelace")
    assert not identifier.search("a\u200bb") and not identifier.search("\U000e0001")
    assert title.search("Intro to Python 🐍") and not title.search("\u3164") and not title.search("a\u2028b")
    assert text.search("line one\nline two\ttab") and not text.search("bell\x07")
    # and the server agrees
    for user, status in (("ada lovelace", 400), ("a\u200bb", 400), ("ada@example.com", 404)):
        answer = api.post("/v1/sessions/nope/progress", {"user_id": user, "current_step": 1, "step_status": "DONE"})
        assert answer.status_code == status, (user, answer.json)


def test_integral_floats_are_integers_as_json_schema_says(api) -> None:
    created = api.post("/v1/inboxes", {"ttl_days": 15.0, "response": {"status": 202.0}})
    assert created.status_code == 201, created.json
    assert created.json["ttl_days"] == 15 and created.json["response"]["status"] == 202
    for body in ({"ttl_days": 15.5}, {"ttl_days": True}, {"ttl_days": "15"}, {"response": {"status": 204}}):
        assert api.post("/v1/inboxes", body).json["error"] == "validation_error", body
    assert api.post("/v1/manuals", manual_body("floaty", steps=2) | {"total_steps": 2.0}).status_code == 201


def test_a_percent_encoded_path_id_is_the_id(api) -> None:
    # a client may send the ':' of an id as %3A (schemathesis did): the same resource
    api.post("/v1/manuals", manual_body("ns:intro", steps=1))
    assert api.get("/v1/manuals/ns%3Aintro").json["manual_id"] == "ns:intro"
    assert api.get("/v1/manuals/ns%2Fintro").status_code == 400  # a '/' is no id character
