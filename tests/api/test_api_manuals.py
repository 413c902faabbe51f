"""Manuals through chalice.test.Client against moto."""

from __future__ import annotations

from tests.conftest import manual_body


def test_create_get_and_retry_manual(api) -> None:
    body = manual_body("m-1", steps=3)
    created = api.post("/v1/manuals", body)
    assert created.status_code == 201
    assert created.json["total_steps"] == 3
    assert [s["step_number"] for s in created.json["steps"]] == [1, 2, 3]

    # an identical retry is safe
    retry = api.post("/v1/manuals", body)
    assert retry.status_code == 200
    assert retry.json["created_at"] == created.json["created_at"]

    fetched = api.get("/v1/manuals/m-1")
    assert fetched.status_code == 200
    assert fetched.json["steps"][2] == {"step_number": 3, "title": "Step 3", "content": "Do thing 3."}


def test_same_id_with_other_content_conflicts_and_keeps_the_original(api) -> None:
    assert api.post("/v1/manuals", manual_body("m-1", steps=3)).status_code == 201
    conflict = api.post("/v1/manuals", manual_body("m-1", steps=4))
    assert conflict.status_code == 409
    assert conflict.json["error"] == "manual_exists"
    assert api.get("/v1/manuals/m-1").json["total_steps"] == 3


def test_steps_given_out_of_order_are_stored_in_order(api) -> None:
    body = manual_body("m-1", steps=3)
    body["steps"].reverse()
    assert api.post("/v1/manuals", body).status_code == 201
    assert [s["step_number"] for s in api.get("/v1/manuals/m-1").json["steps"]] == [1, 2, 3]


def test_thousand_step_manual(api) -> None:
    assert api.post("/v1/manuals", manual_body("big", steps=1000)).status_code == 201
    manual = api.get("/v1/manuals/big").json
    assert manual["total_steps"] == 1000
    assert [s["step_number"] for s in manual["steps"]] == list(range(1, 1001))


def test_invalid_manuals_are_refused_with_the_field(api) -> None:
    gap = manual_body("m-1", steps=3)
    gap["steps"][1]["step_number"] = 5
    too_many = manual_body("m-2", steps=1001)
    no_title = manual_body("m-3", steps=2)
    del no_title["title"]
    bad_id = manual_body("has space", steps=2)
    wrong_total = {**manual_body("m-4", steps=2), "total_steps": 3}
    string_number = manual_body("m-5", steps=2)
    string_number["steps"][0]["step_number"] = "1"
    for body, field in [(gap, "body"), (too_many, "steps"), (no_title, "title"),
                        (bad_id, "manual_id"), (wrong_total, "body"),
                        (string_number, "steps.0.step_number"),
                        ({**manual_body("m-6"), "steps": []}, "steps")]:
        response = api.post("/v1/manuals", body)
        assert response.status_code == 400, body
        assert response.json["error"] == "validation_error"
        assert field in [f["field"] for f in response.json["fields"]], response.json
    assert api.get("/v1/manuals").json["items"] == []


def test_list_manuals_paginates(api) -> None:
    for n in range(5):
        assert api.post("/v1/manuals", manual_body(f"m-{n}", steps=2)).status_code == 201
    seen, cursor = [], None
    while True:
        page = api.get("/v1/manuals?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["items"]) <= 2
        seen += [m["manual_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"m-{n}" for n in range(5)]


def test_bad_page_parameters(api) -> None:
    assert api.get("/v1/manuals?limit=0").json["error"] == "validation_error"
    assert api.get("/v1/manuals?limit=101").status_code == 400
    assert api.get("/v1/manuals?limit=abc").status_code == 400
    bad = api.get("/v1/manuals?cursor=not-a-cursor")
    assert (bad.status_code, bad.json["error"]) == (400, "invalid_cursor")


def test_delete_manual_refused_while_in_use(api, make_session) -> None:
    session = make_session(steps=2, manual_id="m-used")
    in_use = api.delete("/v1/manuals/m-used")
    assert in_use.status_code == 409
    assert in_use.json["error"] == "manual_in_use"
    assert in_use.json["active_sessions"] == 1

    # WHEN the session ends, THEN the manual can go
    ended = api.patch(f"/v1/sessions/{session['session_id']}", {"status": "ended"})
    assert ended.status_code == 200
    assert api.delete("/v1/manuals/m-used").status_code == 204
    assert api.get("/v1/manuals/m-used").json["error"] == "manual_not_found"
    assert api.delete("/v1/manuals/m-used").status_code == 404
    # and it can be created again, with another body
    assert api.post("/v1/manuals", manual_body("m-used", steps=4)).status_code == 201
    assert api.get("/v1/manuals/m-used").json["total_steps"] == 4


def test_unknown_manual(api) -> None:
    response = api.get("/v1/manuals/nope")
    assert (response.status_code, response.json["error"]) == (404, "manual_not_found")
