"""The local stand-ins for AWS: what `make run`, the tests and the benchmarks use in place of
the cloud. Nothing in it ships (the deployment zip holds app.py, chalicelib/ and the
requirements only).

  stack.py        `make run` (python -m local.stack): moto, the stack from infra/ deployed
                  into it, the API over HTTP, the event sources
  gateway.py      API Gateway's side of the API-key authorizer, for chalice's local gateway
  runner.py       the event-source runner: Lambda's stream and queue mappings and schedules
  moto_server.py  moto made atomic per request (python -m local.moto_server: its own process)
"""
