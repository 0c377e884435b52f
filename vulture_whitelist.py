"""Names vulture cannot see being used: each one is called or read by a library, by its name.
vulture parses this file (it is never run). Reviewed by hand: add a name only with its reason."""

# ruff: noqa
_ = object()

# RQ calls this override of Worker.get_heartbeat_ttl (crmsync/worker.py, bench/worker_modes.py),
# with `working_time` as its keyword.
_.get_heartbeat_ttl
working_time

# marshmallow: a Field's error messages, its _deserialize, a schema's Meta.unknown, and the
# accepted keys of Hamsa's bodies declared as class attributes (crmsync/events/schema.py).
_.default_error_messages
_._deserialize
_.Meta
_.unknown
_.agent_id, _.conversationId, _.call_start_time
_.eventType, _.event_type, _.callId, _.projectId, _.agentId, _.agentName, _.caller_info
_.conversationRecording, _.callParams, _.transcription, _.outcomeResult
_.callDuration, _.callStartedAt, _.callEndedAt

# logging formats a LogRecord from these attributes (crmsync/logs.py).
_.msg, _.exc_text
# Jinja2 calls Environment.finalize on every rendered expression (crmsync/mapping/templates.py).
_.finalize
# RQ's Job reads these when the Lua script saves the job it built (crmsync/queue.py).
_.enqueued_at, _.retry_intervals
# The sandbox HubSpot dispatches a route to the method its endpoint names (crmsync/sandbox/hubspot.py).
_.batch
# werkzeug and socketserver call these on a request handler (crmsync/sandbox/).
_.log_request, _.RequestHandlerClass

# pytest: a module's marks, and a fixture requested for its side effect only.
pytestmark
restore_creds
# The console's templates read these attributes of a call index entry (crmsync/web/console/templates/).
_.agent_name, _.started_at, _.person_type
