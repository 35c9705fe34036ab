"""schemathesis hooks for Custos's API (loaded by scripts/console-e2e through SCHEMATHESIS_HOOKS):
the NDJSON body of ingestFlags is sent as the text schemathesis generates, or as one JSON line."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value) + "\n").encode()
