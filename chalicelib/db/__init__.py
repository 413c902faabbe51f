"""The table layer: the only code that knows DynamoDB's syntax (tests/unit/test_layout.py checks).

`table` is the plumbing (client, (de)serialisation, generic calls, named transactions,
cursors, error translation); one module per entity holds its key builders, index attributes
and every condition and update expression, behind named operations the services call.

One table, `PK`/`SK`, five sparse global secondary indexes (each `GSIn PK/SK`):

| entity (module)        | PK / SK                                   | indexes                                   | read by (call)                                                          |
|------------------------|-------------------------------------------|-------------------------------------------|-------------------------------------------------------------------------|
| manual (manuals)       | MANUAL#<id> / #META                       | GSI1 MANUALS / <id>                       | sessions.create (GetItem), GET manuals (Query GSI1), GET manual (Query) |
| step (manuals)         | MANUAL#<id> / STEP#<rev>#<nnnn>           | -                                         | progress (in its BatchGetItem), next-step (GetItem, cached)              |
| session (sessions)     | SESSION#<id> / #META                      | GSI1 SESSIONS#<status>, GSI2 USER#<user>, GSI3 MANUAL#<manual>, GSI4 SESSIONS (by start); GSI5 ACTIVE#<shard> (by the bucket of last activity, keys only, while active) | GET session (GetItem), progress (BatchGetItem), lists (Query + BatchGetItem), idle job (Query GSI5), retention (Query GSI1) |
| event (events)         | SESSION#<id> / EVT#<nnnnnnnnnn>           | GSI4 EVENTS#<hour>#<shard> / <occurred_at>#<session_id>#<nnnnnnnnnn> (the event id names its instant and shard); GSI1 DELIVERIES#failed while failed at some endpoint; events stored before ids named their place (uuid ids): GSI2 EVENT#<event_id> | GET events (Query), delivery (BatchGetItem per batch), redeliver (Query GSI4, or GSI2 for a uuid id, + BatchGetItem), failed list (Query GSI1 + BatchGetItem), an endpoint's replay (Query GSI4 + BatchGetItem); the replay index's backfill (Scan + UpdateItem per event: an operator's one-off, never a request) |
| webhook endpoint (endpoints) | WEBHOOKS / EP#<endpoint_id>; WEBHOOKS / #COUNT; WEBHOOKS / STATS#<endpoint_id> (with its last 20 attempts); WEBHOOKS / DELETED#<endpoint_id> (until its failures are forgotten) | -            | the pipeline's fan-out (Query, cached 10 s per instance), GET endpoints (Query + BatchGetItem of stats), GET endpoint (BatchGetItem), the sweep (Query of DELETED#) |
| failed delivery (events) | FAILED#<endpoint_id> / <the event's PK and SK, joined by a bar> | GSI1 DELIVERIES#failed#<endpoint_id> / <failed at>#<event_id> | one endpoint's failed list (Query GSI1 + BatchGetItem of the events), an endpoint's deletion (Query) |
| test ping (endpoints)  | PING#<event_id> / PING (TTL expires_at: 7 days) | -                                   | GET ping (GetItem), delivery (BatchGetItem per batch holding pings)     |
| idempotency (sessions) | SESSION#<id> / IDEM#<key>                 | -                                         | progress (in its BatchGetItem)                                          |
| message (messages)     | SESSION#<id> / MSG#<created_at>#<msg_id>  | -                                         | GET messages (Query)                                                    |
| message claim (messages)| SESSION#<id> / MSGID#<msg_id>            | -                                         | a repeated append (its refused condition returns it)                     |
| API key (keys)         | APIKEY#<key_id> / #META                   | GSI1 APIKEYS / <key_id>                   | every request (GetItem, cached), GET keys (Query GSI1 + BatchGetItem)   |
| inbox (inbox)          | INBOX#<id> / #META                        | -                                         | capture, inbox routes (GetItem)                                         |
| capture (inbox)        | INBOX#<id> / REQ#<request_id>, BODY#<request_id>#<n> | -                              | GET requests (Query + BatchGetItem of its markers and forward logs), GET request (GetItem + that BatchGetItem + Query of chunks) |
| capture key (inbox)    | INBOX#<id> / DEDUP#<key hash>             | -                                         | capture (one UpdateItem, ALL_NEW: no read)                              |
| forward log (inbox)    | INBOX#<id> / FWD#<request_id>#<destination> | -                                       | delivery (BatchGetItem per batch, with the captures)                    |
| inbox metrics (inbox)  | INBOX#<id> / METRIC#<hour>                | -                                         | GET metrics (Query of the hours)                                        |
| counters (stats)       | STATS#GLOBAL#<n>, STATS#HOUR#<hour>#<n> / #; STATS#MANUALS / <manual>#<n>; STATSCHK#SHARD#<shard> / # (a stream shard's checkpoint; STATSCHK#<partition key> without a shard id) | - | analytics (BatchGetItem of a fixed number of items; Query per manual); the analytics function (BatchGetItem of its shard's checkpoint) |

Writers: a webhook endpoint's create and delete are one transaction each (endpoint + count);
every change of a session is one transaction (sessions + events [+ idempotency]
[+ the manual's counter]); a message is one (session touch + claim + message); the stream
feeds the analytics counters (stats) and the delivery function updates an event's delivery
fields only; an inbox capture is written once (its key's marker, forward logs and hourly
counters are the items that change).
"""
