"""Input at every boundary: one JSON parser with a depth cap, query values validated with
models as bodies are, and one definition of each identifier and text field (body, query,
path, keys), through chalice.test.Client against moto."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import manual_body

# Every route that takes a JSON body, with a path that reaches it.
JSON_WRITES = [
    ("POST", "/v1/manuals"), ("POST", "/v1/sessions"), ("PATCH", "/v1/sessions/s-1"),
    ("POST", "/v1/sessions/s-1/progress"), ("POST", "/v1/messages"),
    ("POST", "/v1/sessions/s-1/messages"), ("POST", "/v1/inboxes"),
    ("PATCH", "/v1/inboxes/box-1"), ("POST", "/v1/keys"),
]
# Invisible or control characters that an id or a title must not carry.
INVISIBLE = ["\u202e", "\u200b", "\u00ad", "\ufeff", "\x00", "\u2028", "\u3164", "\ufe0f"]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.body[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"] == code and response.json["message"]
    return response.json


@pytest.fixture
def session(api) -> dict:
    assert api.post("/v1/manuals", manual_body("m-1", steps=3)).status_code == 201
    response = api.post("/v1/sessions", {"session_id": "s-1", "user_id": "u-1", "manual_id": "m-1"})
    assert response.status_code == 201
    return response.json


# ---- JSON: one parser, with a depth cap --------------------------------------------------


@pytest.mark.parametrize("method,path", JSON_WRITES)
def test_deeply_nested_json_is_a_400_on_every_json_write_route(api, session, method, path) -> None:
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    body = assert_error(api.request(method, path, raw=deep), 400, "invalid_json")
    assert "nested" in body["message"]
    # a modest depth beyond any body the API takes is refused the same way, without a parse error
    assert_error(api.request(method, path, raw='{"a":' * 40 + "1" + "}" * 40), 400, "invalid_json")
    # nothing was stored or changed
    assert api.get("/v1/sessions/s-1").json["version"] == session["version"]
    assert [m["manual_id"] for m in api.get("/v1/manuals").json["items"]] == ["m-1"]


def test_the_cli_reads_manual_files_with_the_same_parser(tmp_path) -> None:
    from cli.commands.manuals import InvalidFile, load_manual

    path = tmp_path / "deep.json"
    path.write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(InvalidFile, match="nested"):
        load_manual(path)


# ---- query values are validated by models --------------------------------------------------


PAGED = ["/v1/manuals", "/v1/sessions", "/v1/sessions/s-1/events", "/v1/sessions/s-1/messages",
         "/v1/deliveries", "/v1/keys", "/v1/analytics/popular-manuals"]


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A3", "%EF%BC%95", "+5", "5.0", "0x5", "1e2", "-1", "0", "101", " 5"])
def test_limit_is_an_ascii_integer_in_range_on_every_paginated_route(api, session, path, limit) -> None:
    body = assert_error(api.get(f"{path}?limit={limit}"), 400, "validation_error")
    assert [f["field"] for f in body["fields"]] == ["limit"]


@pytest.mark.parametrize("hours", ["%C2%B2", "%D9%A3", "0", "169", "24.0", "x"])
def test_hours_is_validated_like_limit(api, hours) -> None:
    body = assert_error(api.get(f"/v1/analytics/recent-activity?hours={hours}"), 400, "validation_error")
    assert [f["field"] for f in body["fields"]] == ["hours"]
    assert api.get("/v1/analytics/recent-activity?hours=3").json["hours"] == 3


def test_redrive_limit_is_validated_like_every_limit(api) -> None:
    assert_error(api.post("/v1/deliveries/redrive?limit=%C2%B2"), 400, "validation_error")
    assert api.post("/v1/deliveries/redrive?limit=5").json == {"moved": 0, "remaining": 0, "dropped": 0}


def test_valid_query_values_still_work(api, session) -> None:
    assert len(api.get("/v1/sessions?limit=1").json["items"]) == 1
    assert api.get("/v1/sessions?status=active&user_id=u-1&manual_id=m-1").json["items"][0]["session_id"] == "s-1"
    assert api.get("/v1/sessions?status=&cursor=").status_code == 200  # empty values: not given
    assert_error(api.get("/v1/sessions?status=sleeping"), 400, "validation_error")
    assert_error(api.get("/v1/deliveries?status=delivered"), 400, "validation_error")
    assert_error(api.get("/v1/sessions?cursor=" + "x" * 2049), 400, "validation_error")


# ---- one definition per identifier and text field ----------------------------------------


@pytest.mark.parametrize("char", INVISIBLE)
def test_user_ids_refuse_invisible_characters_in_bodies_queries_and_keys(api, session, char) -> None:
    user = f"ann{char}b"
    assert_error(api.post("/v1/sessions", {"user_id": user, "manual_id": "m-1"}), 400, "validation_error")
    assert_error(api.get(f"/v1/sessions?user_id={quote(user)}"), 400, "validation_error")
    assert_error(api.post("/v1/keys", {"scopes": ["agent"], "user_id": user}), 400, "validation_error")
    assert_error(api.post("/v1/sessions/s-1/progress",
                          {"user_id": user, "current_step": 1, "step_status": "DONE"}), 400, "validation_error")
    assert_error(api.post("/v1/sessions/s-1/messages",
                          {"user_id": user, "message": "hi", "sender": "user"}), 400, "validation_error")
    assert [s["session_id"] for s in api.get("/v1/sessions").json["items"]] == ["s-1"]


def test_a_user_id_that_can_start_a_session_can_be_listed_and_given_a_key(api, session) -> None:
    for user in ("ann+tutor@example.com", "zoë.brontë", "学生-42", "auth0|5f7c8ec7c33c6c004bbafe82"):
        created = api.post("/v1/sessions", {"user_id": user, "manual_id": "m-1"})
        assert created.status_code == 201, (user, created.json)
        listed = api.get(f"/v1/sessions?user_id={quote(user)}")
        assert [s["user_id"] for s in listed.json["items"]] == [user]
        key = api.post("/v1/keys", {"scopes": ["agent"], "user_id": user})
        assert key.status_code == 201, (user, key.json)
        bound = api.as_key(key.json["key"])
        assert [s["session_id"] for s in bound.get("/v1/sessions").json["items"]] == [created.json["session_id"]]


@pytest.mark.parametrize("title", ["", " ", "\t", "\u3000", "\x00", "a\x00b", "line\nbreak", "\u200b", "a\u202eb",
                                   "\ufeff", "\u00ad"])
def test_titles_and_names_refuse_control_invisible_and_blank_text(api, title) -> None:
    manual = manual_body("m-t", steps=1)
    assert_error(api.post("/v1/manuals", {**manual, "title": title}), 400, "validation_error")
    manual["steps"][0]["title"] = title
    assert_error(api.post("/v1/manuals", manual), 400, "validation_error")
    if title:  # names are optional: absent is fine, blank or invisible is not
        assert_error(api.post("/v1/keys", {"scopes": ["read"], "name": title}), 400, "validation_error")
        assert_error(api.post("/v1/inboxes", {"name": title}), 400, "validation_error")
    assert api.get("/v1/manuals").json["items"] == []


def test_titles_keep_real_text(api) -> None:
    for n, title in enumerate(["Introduction à Python", "شرح البرمجة", "👩\u200d💻 Coding", "नमस्ते", "a  b"]):
        response = api.post("/v1/manuals", {**manual_body(f"m-{n}", steps=1), "title": title})
        assert response.status_code == 201, (title, response.json)
        assert response.json["title"] == title


def test_content_and_messages_refuse_control_characters_but_keep_line_breaks(api, session) -> None:
    manual = manual_body("m-c", steps=1)
    manual["steps"][0]["content"] = "Line one.\nLine two.\tTabbed."
    assert api.post("/v1/manuals", manual).status_code == 201
    manual = manual_body("m-d", steps=1)
    manual["steps"][0]["content"] = "bad\x00byte"
    assert_error(api.post("/v1/manuals", manual), 400, "validation_error")
    ok = api.post("/v1/sessions/s-1/messages", {"user_id": "u-1", "message": "two\nlines", "sender": "user"})
    assert ok.status_code == 201
    assert_error(api.post("/v1/sessions/s-1/messages", {"user_id": "u-1", "message": "a\x07b", "sender": "user"}),
                 400, "validation_error")


@pytest.mark.parametrize("path", ["/v1/sessions/s%E2%80%AE1", "/v1/sessions/s%00", "/v1/manuals/m%E2%80%8B",
                                  "/v1/sessions/" + "s" * 129])
def test_path_ids_follow_the_body_definition(api, session, path) -> None:
    assert_error(api.get(path), 400, "validation_error")
