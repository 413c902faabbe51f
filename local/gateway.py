"""API Gateway's side of the API-key authorizer, for `chalice local` and chalice.test.Client.

Chalice's local gateway runs our authorizer and applies its policy, but differs from API
Gateway in two ways we rely on: an authorizer that raises `Unauthorized` is a 401 on AWS
(here: an exception), and the 401/403 bodies are API Gateway's own (on AWS replaced by the
GatewayResponses that infra/package.py adds, with the security headers). `install()` makes
the local gateway answer as the deployed one does. Nothing here ships to Lambda.
"""

from __future__ import annotations

from typing import Any

from chalice import local

from chalicelib.api import auth
from chalicelib.api.headers import API_HEADERS
from chalicelib.domain.errors import BEARER_CHALLENGE, ServiceUnavailable
from infra.package import AUTHORIZER_FAILURE_BODY


class AccessDenied(local.ForbiddenError):
    """A 403 from the authorizer's policy (not the 'no such route' 403 of API Gateway)."""


class AuthorizerFailure(local.LocalGatewayException):
    CODE = 503


class ApiKeyGatewayAuthorizer(local.LocalGatewayAuthorizer):
    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        headers = {"Content-Type": "application/json", **API_HEADERS,  # as the GatewayResponses
                   "x-amzn-RequestId": lambda_context.aws_request_id}
        try:
            return super().authorize(raw_path, lambda_event, lambda_context)
        except (auth.Unauthorized, local.NotAuthorizedError):
            raise local.NotAuthorizedError({**headers, "WWW-Authenticate": BEARER_CHALLENGE},
                                           auth.UNAUTHORIZED_BODY.encode()) from None
        except local.ForbiddenError:
            raise AccessDenied(headers, auth.FORBIDDEN_BODY.encode()) from None
        except ServiceUnavailable:
            raise AuthorizerFailure({**headers, "Retry-After": "1"},
                                    AUTHORIZER_FAILURE_BODY.encode()) from None


def install() -> None:
    """Make every LocalGateway built from now on use the API-Gateway-faithful authorizer."""
    local.LocalGatewayAuthorizer = ApiKeyGatewayAuthorizer  # type: ignore[misc]
