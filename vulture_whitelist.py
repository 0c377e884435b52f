"""Names vulture cannot see being used: each one is called or read by a library, by its name.
vulture parses this file (it is never run). Reviewed by hand: add a name only with its reason."""

# ruff: noqa
_ = object()

# RQ calls this override of Worker.get_heartbeat_ttl (crmsync/worker.py's CrmsyncHeartbeat),
# with `working_time` as its keyword.
_.get_heartbeat_ttl
working_time

# marshmallow: a Field's error messages and its _deserialize (crmsync/events/schema.py builds
# its schemas from the alias table, so no field is a class attribute).
_.default_error_messages
_._deserialize
# Keys of the canonical event's TypedDicts (crmsync/canonical.py): read by string key, by the
# mapping's source paths and templates (call.agent_name, transcript_text, ...) and by the CLI.
_.input, _.duration_ms, _.agent_id, _.agent_name, _.project_id, _.customer_number, _.started_at, _.answered_at
_.ended_at, _.channel, _.event_as_sent, _.transcript_text, _.unavailable, _.joined_from

# logging formats a LogRecord from these attributes (crmsync/logs.py).
_.msg, _.exc_text
# Jinja2 calls Environment.finalize on every rendered expression (crmsync/mapping/templates.py).
_.finalize
# RQ's Job reads these when the Lua script saves the job it built (crmsync/ingest.py).
_.enqueued_at, _.retry_intervals, _._status
# The sandbox HubSpot dispatches a route to the method its endpoint names (crmsync/sandbox/hubspot.py).
_.batch, _.archive
# werkzeug and socketserver call these on a request handler (crmsync/sandbox/).
_.log_request, _.RequestHandlerClass

# pytest: a module's marks, and a fixture requested for its side effect only.
pytestmark
restore_creds
# The console's templates read these attributes of a call index entry (crmsync/web/console/templates/).
_.agent_name, _.started_at, _.person_type
# Routing reads a mapping's agents/projects/providers by name (crmsync/mapping/routing.py LEVELS).
_.projects
# The HubSpot sandbox's routes name their handler methods (crmsync/sandbox/hubspot.py ROUTES).
_.archive
# Connector.batch_size: the per-request maximum the burst worker reads (issue 15; the worker side is not merged yet).
_.batch_size
# crm.batching.write_each: the contract's default write_calls for a CRM without batch requests (both current connectors batch).
write_each
