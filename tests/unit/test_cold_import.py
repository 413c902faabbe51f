"""A cold start imports only what its function needs (issue #16): `import app` declares every
route without importing pydantic, the models, the services or the event handlers' modules;
they are imported by the first request (or event) that uses them, and the OpenAPI document,
built from the same declarations, still sees every model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chalicelib.api.lazy import Lazy, lazy, resolved

ROOT = Path(__file__).resolve().parents[2]

COLD = """
import json, sys
import app
loaded = sorted(sys.modules)
from chalicelib.api import routing
policies = routing.route_policies()
from chalicelib.api import openapi
print(json.dumps({"loaded": loaded, "policies": policies, "openapi": openapi.route_policies(),
                  "lazy": [repr(op) for op in openapi.operations if "lazy" in repr(op)],
                  "bodies": sorted({op.body.__name__ for op in openapi.operations if op.body})}))
"""


def _cold() -> dict:
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{COLD}"],
                         capture_output=True, text=True, cwd=ROOT, env={"AWS_DEFAULT_REGION": "us-east-1"},
                         check=True, timeout=120)
    return json.loads(run.stdout.splitlines()[-1])


def test_import_app_declares_every_route_without_the_models_or_services() -> None:
    cold = _cold()
    loaded = set(cold["loaded"])
    heavy = {"pydantic", "boto3", "chalicelib.domain.models", "chalicelib.api.schemas",
             "chalicelib.api.openapi", "chalicelib.domain.vocabulary", "chalicelib.jobs.analytics",
             "chalicelib.pipeline.delivery", "chalicelib.inbox.captures"}
    assert loaded & heavy == set()  # (botocore is: Powertools imports it for its user agent)
    assert not [m for m in loaded if m.startswith(("chalicelib.services", "chalicelib.db"))]
    assert "chalicelib.api.routes.sessions" in loaded and "chalice" in loaded  # it did import the routes
    # the authorizer's policy, from the declarations alone, is the document's
    assert [tuple(p) for p in cold["policies"]] == [tuple(p) for p in cold["openapi"]]
    assert ["/v1/sessions/{session_id}/progress", "POST", "agent", True] in cold["policies"]
    assert len(cold["policies"]) > 50
    # the document's operations hold the models themselves, not the lazy names
    assert cold["lazy"] == []
    assert {"ProgressIn", "SessionCreate", "KeyCreate", "InboxCreate", "JsonRpcMessage"} <= set(cold["bodies"])


def test_a_lazy_name_is_imported_on_first_use_and_then_is_the_object() -> None:
    decoder = lazy("json.decoder", "JSONDecoder")
    assert isinstance(decoder, Lazy) and repr(decoder) == "<lazy json.decoder.JSONDecoder>"
    assert decoder.resolve() is json.JSONDecoder
    assert decoder().decode("[1]") == [1]  # called
    assert isinstance(json.JSONDecoder(), decoder) and issubclass(json.JSONDecoder, decoder)
    assert decoder.__name__ == "JSONDecoder"  # an attribute
    # a submodule not imported yet, as `from package import module` does
    unittest_mock = lazy("unittest", "mock")
    assert unittest_mock.resolve().__name__ == "unittest.mock"
    pair = lazy("string", "digits", "ascii_lowercase")
    assert "7" in pair[0] and list(pair[1])[:2] == ["a", "b"] and pair[1][0] == "a"
    assert resolved({200: [pair[0], None], 201: decoder}) == {200: ["0123456789", None], 201: json.JSONDecoder}


def test_an_unknown_lazy_name_fails_when_used() -> None:
    missing = lazy("json", "no_such_name")
    try:
        missing.resolve()
    except ModuleNotFoundError as exc:
        assert "json.no_such_name" in str(exc)
    else:
        raise AssertionError("resolved a name that does not exist")
