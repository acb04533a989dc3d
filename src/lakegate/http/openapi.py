"""The OpenAPI 3.1 description of every route, served at `{endpoint}/openapi.json` without authentication.

The document is typed Python data kept here, beside the route tables (http/app.py, http/admin.py,
http/observability.py); tests/http/test_openapi.py checks both ways that it names exactly the live routes and
methods, and that it validates as OpenAPI 3.1. Admin request bodies come from the pydantic models the admin
API parses them with, so they cannot drift. It describes the API, never data: no share, table or token.
"""

from __future__ import annotations

from typing import Any

from lakegate import __version__
from lakegate.http.admin import NewPolicy, NewRecipient, NewShare, NewTable, Rotation, TableSettings

JSON = "application/json"
NDJSON = "application/x-ndjson"
Doc = dict[str, Any]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: tuple[str, ...] = (), **properties: Doc) -> Doc:
    schema: Doc = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _array(items: Doc) -> Doc:
    return {"type": "array", "items": items}


STR: Doc = {"type": "string"}
INT: Doc = {"type": "integer", "format": "int64"}
BOOL: Doc = {"type": "boolean"}
MAP: Doc = {"type": "object", "additionalProperties": True}
NULL_STR: Doc = {"type": ["string", "null"]}


def _path(name: str, description: str) -> Doc:
    return {"name": name, "in": "path", "required": True, "schema": STR, "description": description}


def _query(name: str, schema: Doc, description: str) -> Doc:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _header(name: str, description: str) -> Doc:
    return {"name": name, "in": "header", "required": False, "schema": STR, "description": description}


SHARE = _path("share", "The share's name.")
SCHEMA = _path("schema", "The schema's name.")
TABLE = _path("table", "The table's name.")
PAGING = [
    _query("maxResults", {"type": "integer", "minimum": 0}, "At most this many items in one page."),
    _query("pageToken", STR, "The `nextPageToken` of the previous page."),
]
CAPABILITIES = _header(
    "delta-sharing-capabilities",
    "Client capabilities, e.g. `responseformat=delta;readerfeatures=deletionvectors`.",
)
FILE_ID_HASH = _header("fileidhash", "Hash the file ids are made with (the reference client sends none).")

_ERRORS = {
    "400": "Invalid or malformed parameter",
    "401": "Missing, unknown, expired or revoked credentials (bearer token, access token or Basic)",
    "403": "The token may not do this",
    "404": "No such share, schema, table or resource (or not granted)",
    "409": "Conflict: the name exists already, or the YAML declares it (edit the file)",
    "413": "Request body too large",
    "429": "Too many requests",
    "500": "Internal error",
    "503": "Storage or database unavailable",
}


def _json_response(description: str, schema: Doc) -> Doc:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    tag: str,
    ok: Doc,
    *,
    parameters: list[Doc] | None = None,
    body: Doc | None = None,
    status: str = "200",
    public: bool = False,
    errors: tuple[str, ...] = ("400", "401", "403", "404", "500", "503"),
) -> Doc:
    op: Doc = {"summary": summary, "tags": [tag], "responses": {status: ok}}
    for code in errors:
        op["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if public:
        op["security"] = []
    return op


NDJSON_ANSWER: Doc = {
    "description": "One JSON object per line: protocol, metaData, then file/add/cdf/remove lines "
    "(and endStreamAction)",
    "headers": {"Delta-Table-Version": {"schema": STR, "description": "The version answered."}},
    "content": {NDJSON: {"schema": _ref("NdjsonLine")}},
}
TABLE_PARAMS = [SHARE, SCHEMA, TABLE]


def _protocol_paths() -> dict[str, Doc]:
    tables = "/shares/{share}/schemas/{schema}/tables/{table}"
    version_ok: Doc = {
        "description": "The table version, in the header only",
        "headers": {"Delta-Table-Version": {"schema": STR, "required": True}},
    }
    version_op = _op(
        "Table version",
        "tables",
        version_ok,
        parameters=[
            *TABLE_PARAMS,
            _query("startingTimestamp", STR, "The version at this time (ISO 8601 or epoch ms)."),
        ],
    )
    return {
        "/shares": {
            "get": _op(
                "List shares",
                "discovery",
                _json_response("A page of shares", _ref("ListShares")),
                parameters=PAGING,
            )
        },
        "/shares/{share}": {
            "get": _op(
                "Get a share", "discovery", _json_response("The share", _ref("GetShare")), parameters=[SHARE]
            )
        },
        "/shares/{share}/schemas": {
            "get": _op(
                "List schemas",
                "discovery",
                _json_response("A page of schemas", _ref("ListSchemas")),
                parameters=[SHARE, *PAGING],
            )
        },
        "/shares/{share}/schemas/{schema}/tables": {
            "get": _op(
                "List tables in a schema",
                "discovery",
                _json_response("A page of tables", _ref("ListTables")),
                parameters=[SHARE, SCHEMA, *PAGING],
            )
        },
        "/shares/{share}/all-tables": {
            "get": _op(
                "List all tables in a share",
                "discovery",
                _json_response("A page of tables", _ref("ListTables")),
                parameters=[SHARE, *PAGING],
            )
        },
        tables: {"head": {**version_op, "summary": "Table version (HEAD)"}},
        tables + "/version": {"get": version_op},
        tables + "/metadata": {
            "get": _op(
                "Table protocol and metadata",
                "tables",
                NDJSON_ANSWER,
                parameters=[
                    *TABLE_PARAMS,
                    CAPABILITIES,
                    _query("version", INT, "Metadata at this version."),
                    _query("timestamp", STR, "Metadata at this time."),
                ],
            )
        },
        tables + "/query": {
            "post": _op(
                "Read a table's files (snapshot, time travel or version range)",
                "tables",
                {
                    **NDJSON_ANSWER,
                    "description": NDJSON_ANSWER["description"]
                    + "; with `asyncQuery`, a queryStatus line to poll",
                },
                parameters=[*TABLE_PARAMS, CAPABILITIES, FILE_ID_HASH],
                body=_ref("QueryRequest"),
                errors=("400", "401", "403", "404", "413", "500", "503"),
            )
        },
        tables + "/changes": {
            "get": _op(
                "Change data feed",
                "tables",
                NDJSON_ANSWER,
                parameters=[
                    *TABLE_PARAMS,
                    CAPABILITIES,
                    FILE_ID_HASH,
                    _query("startingVersion", INT, "First version (or startingTimestamp)."),
                    _query("startingTimestamp", STR, "First version at or after this time."),
                    _query("endingVersion", INT, "Last version (default: the latest)."),
                    _query("endingTimestamp", STR, "Last version at or before this time."),
                    _query("includeHistoricalMetadata", BOOL, "Also the metadata changes in the range."),
                    _query("includeHistoricalProtocol", BOOL, "Also the protocol changes in the range."),
                    _query("maxFiles", {"type": "integer", "minimum": 1}, "Page size in files."),
                    _query("pageToken", STR, "The nextPageToken of the previous page."),
                ],
            )
        },
        tables + "/queries/{query_id}": {
            "post": _op(
                "Poll an asynchronous query",
                "tables",
                NDJSON_ANSWER,
                parameters=[
                    *TABLE_PARAMS,
                    _path("query_id", "The query id a query answered with."),
                    CAPABILITIES,
                ],
                body=_obj(maxFiles={"type": "integer", "minimum": 1}, pageToken=STR),
                errors=("400", "401", "403", "404", "413", "500", "503"),
            )
        },
        tables + "/temporary-table-credentials": {
            "post": _op(
                "Temporary read credentials for the table's directories",
                "tables",
                _json_response(
                    "The credentials (Cache-Control: no-store)", _obj(("credentials",), credentials=MAP)
                ),
                parameters=TABLE_PARAMS,
                body=_obj(location={**STR, "description": "One of the table's locations."}),
                errors=("400", "401", "403", "404", "413", "500", "503"),
            )
        },
        "/files/{share}/{schema}/{table}/{path}": {
            method: _op(
                "A data file of a local table, under a signed URL from a query answer",
                "files",
                {
                    "description": "The file, or the requested byte ranges",
                    "content": {"application/octet-stream": {}},
                },
                parameters=[
                    SHARE,
                    SCHEMA,
                    TABLE,
                    _path("path", "The file's path below the table root."),
                    {**_query("Expires", INT, "Expiry in epoch seconds."), "required": True},
                    {**_query("X-Amz-Signature", STR, "The URL's signature."), "required": True},
                    _header("Range", "Byte ranges."),
                ],
                public=True,
                errors=("403", "404", "416"),
            )
            for method in ("get", "head")
        },
        "/openapi.json": {
            "get": _op(
                "This document",
                "meta",
                _json_response("OpenAPI 3.1", {"type": "object"}),
                public=True,
                errors=(),
            )
        },
    }


def _iceberg_op(summary: str, ok: Doc, parameters: list[Doc], errors: tuple[str, ...]) -> Doc:
    """An operation of the Iceberg REST catalog: its errors are in Iceberg's error model."""
    op = _op(summary, "iceberg", ok, parameters=parameters, errors=())
    for code in errors:
        op["responses"][code] = {"$ref": f"#/components/responses/Iceberg{code}"}
    return op


def _iceberg_paths() -> dict[str, Doc]:
    """The Iceberg REST catalog (spec: Apache Iceberg's rest-catalog-open-api.yaml), read-only: every write
    the spec defines answers 403."""
    prefix = _path("prefix", "The warehouse prefix /v1/config answered: the share's name.")
    namespace = _path("namespace", "A schema of the share (one level).")
    table = _path("table", "The table's name.")
    paging = [
        _query("pageToken", STR, "The `next-page-token` of the previous page (empty: start paging)."),
        _query("pageSize", {"type": "integer", "minimum": 1}, "At most this many items in one page."),
    ]
    reads = ("400", "401", "404", "500", "503")
    writes = ("401", "403")
    delegation = _header(
        "X-Iceberg-Access-Delegation", "`vended-credentials`: answer the table's temporary credentials."
    )
    no_content = {"description": "It exists (no content)"}

    def page(key: str, item: Doc) -> Doc:
        return {"type": "object", "properties": {key: _array(item), "next-page-token": NULL_STR}}

    def write(summary: str, *parameters: Doc) -> Doc:
        return _iceberg_op(summary + " (refused: read-only)", no_content, [prefix, *parameters], writes)

    ns = "/v1/{prefix}/namespaces/{namespace}"
    load_table = _iceberg_op(
        "Load a table: Iceberg metadata generated from the Delta log (loadTable)",
        _json_response("The table's metadata, and with delegation its credentials", _ref("IcebergTable")),
        [prefix, namespace, table, delegation, _query("snapshots", STR, "`all` (default) or `refs`.")],
        reads,
    )
    credentials = _iceberg_op(
        "The table's vended credentials (loadCredentials)",
        _json_response(
            "Credentials per storage prefix (Cache-Control: no-store)",
            _obj(("storage-credentials",), **{"storage-credentials": _array(_ref("IcebergCredential"))}),
        ),
        [prefix, namespace, table],
        reads,
    )
    paths = {
        "/v1/config": {
            "get": _iceberg_op(
                "Catalog configuration: the share as warehouse",
                _json_response(
                    "`overrides.prefix` is the share; `endpoints` what this catalog answers",
                    _obj(defaults=MAP, overrides=MAP, endpoints=_array(STR)),
                ),
                [{**_query("warehouse", STR, "The share's name."), "required": True}],
                reads,
            )
        },
        "/v1/{prefix}/namespaces": {
            "get": _iceberg_op(
                "List namespaces (the share's schemas)",
                _json_response(
                    "Namespaces",
                    page("namespaces", _array(STR)),
                ),
                [prefix, _query("parent", STR, "List below this namespace (schemas have none)."), *paging],
                reads,
            ),
            "post": write("Create a namespace"),
        },
        ns: {
            "get": _iceberg_op(
                "Load a namespace",
                _json_response("The namespace", _obj(namespace=_array(STR), properties=MAP)),
                [prefix, namespace],
                reads,
            ),
            "head": _iceberg_op("Does the namespace exist?", no_content, [prefix, namespace], reads),
            "delete": write("Drop a namespace", namespace),
        },
        ns + "/properties": {"post": write("Change a namespace's properties", namespace)},
        ns + "/register": {"post": write("Register a table", namespace)},
        ns + "/tables": {
            "get": _iceberg_op(
                "List tables",
                _json_response(
                    "Table identifiers",
                    page("identifiers", _ref("IcebergIdentifier")),
                ),
                [prefix, namespace, *paging],
                reads,
            ),
            "post": write("Create a table", namespace),
        },
        ns + "/tables/{table}": {
            "get": load_table,
            "head": _iceberg_op("Does the table exist?", no_content, [prefix, namespace, table], reads),
            "post": write("Commit to a table", namespace, table),
            "delete": write("Drop a table", namespace, table),
        },
        ns + "/tables/{table}/credentials": {"get": credentials, "post": credentials},
        "/v1/{prefix}/tables/rename": {"post": write("Rename a table")},
        "/v1/{prefix}/transactions/commit": {"post": write("Commit a transaction")},
    }
    return {"/iceberg" + path: item for path, item in paths.items()}


def _admin_paths() -> dict[str, Doc]:
    recipient = _path("recipient", "The recipient's name.")
    share = _path("share", "The share's name.")
    admin_errors = ("400", "401", "404", "409", "500", "503")
    issued = _json_response("The recipient and its new profile (the token shown only here)", _ref("Issued"))

    def body(model: Any) -> Doc:
        return dict(model.model_json_schema(by_alias=True))

    return {
        "/admin/recipients": {
            "get": _op(
                "List recipients",
                "admin",
                _json_response("Recipients", _obj(("items",), items=_array(_ref("Recipient")))),
                errors=admin_errors,
            ),
            "post": _op(
                "Create a recipient",
                "admin",
                issued,
                body=body(NewRecipient),
                status="201",
                errors=admin_errors,
            ),
        },
        "/admin/recipients/{recipient}": {
            "get": _op(
                "Show a recipient",
                "admin",
                _json_response("The recipient", _ref("Recipient")),
                parameters=[recipient],
                errors=admin_errors,
            ),
            "delete": _op(
                "Delete a recipient with its tokens and grants",
                "admin",
                _json_response("What was deleted", MAP),
                parameters=[recipient],
                errors=admin_errors,
            ),
        },
        "/admin/recipients/{recipient}/rotate": {
            "post": _op(
                "Rotate a recipient's token",
                "admin",
                issued,
                parameters=[recipient],
                body=body(Rotation),
                errors=admin_errors,
            ),
        },
        "/admin/recipients/{recipient}/revoke": {
            "post": _op(
                "Revoke every token of a recipient",
                "admin",
                _json_response("The recipient, with tokensRevoked and credentialsRevoked", _ref("Recipient")),
                parameters=[recipient],
                errors=admin_errors,
            ),
        },
        "/admin/recipients/{recipient}/grants/{share}": {
            method: _op(
                summary,
                "admin",
                _json_response("The recipient", _ref("Recipient")),
                parameters=[recipient, share],
                errors=admin_errors,
            )
            for method, summary in (("put", "Grant a share"), ("delete", "Take a grant back"))
        },
        "/admin/recipients/{recipient}/federation-policies": {
            "post": _op(
                "Add an OIDC federation policy",
                "admin",
                _json_response("The recipient, with its federationPolicies", _ref("Recipient")),
                parameters=[recipient],
                body=body(NewPolicy),
                status="201",
                errors=admin_errors,
            ),
        },
        "/admin/recipients/{recipient}/federation-policies/{policy_id}": {
            "delete": _op(
                "Remove an OIDC federation policy",
                "admin",
                _json_response("The recipient, with its federationPolicies", _ref("Recipient")),
                parameters=[
                    recipient,
                    _path("policy_id", "The policy's id (in the recipient's federationPolicies)."),
                ],
                errors=admin_errors,
            ),
        },
        "/admin/shares": {
            "get": _op(
                "List shares",
                "admin",
                _json_response("Shares", _obj(("items",), items=_array(_ref("AdminShare")))),
                errors=admin_errors,
            ),
            "post": _op(
                "Create a share",
                "admin",
                _json_response("The share", _ref("AdminShare")),
                body=body(NewShare),
                status="201",
                errors=admin_errors,
            ),
        },
        "/admin/shares/{share}": {
            "get": _op(
                "Show a share",
                "admin",
                _json_response("The share", _ref("AdminShare")),
                parameters=[share],
                errors=admin_errors,
            ),
            "delete": _op(
                "Delete a share and its grants",
                "admin",
                _json_response("What was deleted", MAP),
                parameters=[share],
                errors=admin_errors,
            ),
        },
        "/admin/shares/{share}/tables": {
            "post": _op(
                "Add a table to a share",
                "admin",
                _json_response("The share", _ref("AdminShare")),
                parameters=[share],
                body=body(NewTable),
                status="201",
                errors=admin_errors,
            ),
        },
        "/admin/shares/{share}/schemas/{schema}/tables/{table}": {
            "delete": _op(
                "Remove a table from a share",
                "admin",
                _json_response("The share", MAP),
                parameters=[share, SCHEMA, TABLE],
                errors=admin_errors,
            ),
            "patch": _op(
                "Change whether a table's history is shared, and the version it is shared from",
                "admin",
                _json_response("The share", _ref("AdminShare")),
                parameters=[share, SCHEMA, TABLE],
                body=body(TableSettings),
                errors=admin_errors,
            ),
        },
        "/admin/audit": {
            "get": _op(
                "The audit trail, newest first",
                "admin",
                _json_response("Events", _obj(("items",), items=_array(_ref("AuditEvent")))),
                parameters=[
                    _query("since", STR, "A duration (`30m`, `2d`) or an ISO 8601 time."),
                    _query("recipient", STR, "Only this recipient's events."),
                    _query("limit", {"type": "integer", "minimum": 1}, "At most this many (default 100)."),
                ],
                errors=admin_errors,
            ),
        },
    }


def _operational_paths() -> dict[str, Doc]:
    ok = _json_response("Serving", _obj(("status",), status=STR))
    return {
        "/healthz": {"get": _op("Liveness", "operations", ok, public=True, errors=())},
        "/readyz": {
            method: _op("Readiness (the database answers)", "operations", ok, public=True, errors=("503",))
            for method in ("get", "head")
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                "operations",
                {"description": "Prometheus text format", "content": {"text/plain": {"schema": STR}}},
                public=True,
                errors=(),
            )
        },
    }


def _oauth_paths(endpoint: str) -> dict[str, Doc]:
    """The token endpoint (RFC 6749 §5 answers, not `{errorCode, message}`) and its RFC 8414 metadata."""
    oauth_error = _json_response(
        "RFC 6749 §5.2 error: invalid_request, invalid_client (401, or 429 with Retry-After past the "
        "failed-authentication limit), invalid_grant, unsupported_grant_type",
        _obj(("error",), error=STR, error_description=STR),
    )
    form = _obj(
        ("grant_type",),
        grant_type={
            "type": "string",
            "enum": ["client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        },
        client_id=STR,
        client_secret=STR,
        assertion={"type": "string", "description": "jwt-bearer grant: a JWT signed with the registered key"},
        client_assertion_type=STR,
        client_assertion=STR,
        scope=STR,
    )
    token: Doc = {
        "summary": "Exchange a client secret or a signed assertion for an access token",
        "tags": ["oauth"],
        "security": [],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": _json_response(
                "An access token (RFC 6749 §5.1)",
                _obj(
                    ("access_token", "token_type", "expires_in"),
                    access_token=STR,
                    token_type=STR,
                    expires_in=INT,
                ),
            ),
            "400": oauth_error,
            "401": oauth_error,
            "429": oauth_error,
        },
    }
    metadata = _op(
        "OAuth authorization server metadata (RFC 8414)",
        "oauth",
        _json_response("Metadata", MAP),
        public=True,
        errors=(),
    )
    iceberg_token = {
        **token,
        "summary": token["summary"] + " (the token endpoint, where Iceberg clients ask)",
    }
    return {
        endpoint + "/oauth/token": {"post": token},
        endpoint + "/iceberg/v1/oauth/tokens": {"post": iceberg_token},
        endpoint + "/.well-known/oauth-authorization-server": {"get": metadata},
        "/.well-known/oauth-authorization-server" + endpoint: {"get": metadata},
    }


def _schemas() -> dict[str, Doc]:
    share = _obj(("name",), name=STR, id=STR)
    schema = _obj(("name", "share"), name=STR, share=STR)
    table = _obj(("name", "schema", "share"), name=STR, schema=STR, share=STR, shareId=STR, id=STR)
    token = _obj(id=STR, status=STR, createdAt=STR, expiresAt=NULL_STR, revokedAt=NULL_STR)
    return {
        "Error": _obj(("errorCode", "message"), errorCode=STR, message=STR),
        "IcebergError": _obj(
            ("error",), error=_obj(("message", "type", "code"), message=STR, type=STR, code=INT)
        ),
        "IcebergIdentifier": _obj(("namespace", "name"), namespace=_array(STR), name=STR),
        "IcebergCredential": _obj(("prefix", "config"), prefix=STR, config=MAP),
        "IcebergTable": _obj(
            ("metadata",),
            **{
                "metadata-location": STR,
                "metadata": {**MAP, "description": "Iceberg TableMetadata (format v2)"},
                "config": MAP,
                "storage-credentials": _array(_ref("IcebergCredential")),
            },
        ),
        "Share": share,
        "Schema": schema,
        "Table": table,
        "ListShares": _obj(items=_array(_ref("Share")), nextPageToken=STR),
        "GetShare": _obj(("share",), share=_ref("Share")),
        "ListSchemas": _obj(items=_array(_ref("Schema")), nextPageToken=STR),
        "ListTables": _obj(items=_array(_ref("Table")), nextPageToken=STR),
        "QueryRequest": _obj(
            predicateHints=_array(STR),
            jsonPredicateHints={**STR, "description": "A JSON predicate tree, as a string."},
            limitHint={**INT, "description": "Enough files for this many rows (a hint)."},
            version=INT,
            timestamp=STR,
            startingVersion=INT,
            endingVersion=INT,
            includeHistoricalProtocol=BOOL,
            maxFiles={"type": "integer", "minimum": 1},
            pageToken=STR,
            includeRefreshToken=BOOL,
            refreshToken=STR,
            idempotencyKey={**STR, "description": "Run asynchronously: the answer is a queryStatus to poll."},
        ),
        "NdjsonLine": {
            "type": "object",
            "description": "One line of a metadata/query/changes answer: exactly one of these keys "
            "(protocol.md of Delta Sharing).",
            "properties": dict.fromkeys(
                ("protocol", "metaData", "file", "add", "cdf", "remove", "endStreamAction", "queryStatus"),
                MAP,
            ),
            "minProperties": 1,
            "maxProperties": 1,
        },
        # Version 1 (bearer token) or 2 (type basic, oauth_client_credentials, oauth_jwt_bearer_private_key_jwt):
        # docs/recipients.md shows each.
        "Profile": _obj(
            ("shareCredentialsVersion", "endpoint"),
            shareCredentialsVersion=INT,
            type=STR,
            endpoint=STR,
            bearerToken=STR,
            expirationTime=STR,
            username=STR,
            password=STR,
            tokenEndpoint=STR,
            clientId=STR,
            clientSecret=STR,
            scope=STR,
            auth=MAP,
        ),
        "Issued": _obj(("recipient", "profile"), recipient=_ref("Recipient"), profile=_ref("Profile")),
        "Recipient": _obj(
            ("name",),
            name=STR,
            comment=NULL_STR,
            allShares=BOOL,
            managedBy=NULL_STR,
            shares=_array(STR),
            createdAt=STR,
            status={"enum": ["active", "inactive"]},
            tokens=_array(token),
            clientSecrets=_array(token),
            publicKeys=_array(_obj(**token["properties"], keyId=STR, algorithm=STR)),
            tokensRevoked=INT,
            federationPolicies=_array(
                _obj(
                    id=INT,
                    issuer=STR,
                    audiences=_array(STR),
                    subjectClaim=STR,
                    subject=STR,
                    createdAt=STR,
                    revokedAt=NULL_STR,
                    status={"enum": ["active", "revoked"]},
                )
            ),
            credentialsRevoked=INT,
        ),
        "AdminShare": _obj(
            ("name",),
            name=STR,
            id=STR,
            displayName=NULL_STR,
            comment=NULL_STR,
            properties=MAP,
            managedBy=NULL_STR,
            createdAt=STR,
            schemas=_array(STR),
            recipients=_array(STR),
            tables=_array(MAP),
        ),
        "AuditEvent": _obj(
            time=STR,
            recipient=NULL_STR,
            operation=STR,
            table=NULL_STR,
            version={"type": ["integer", "null"]},
            mode=NULL_STR,
            files={"type": ["integer", "null"]},
            bytes={"type": ["integer", "null"]},
            status={"type": ["integer", "null"]},
            outcome=NULL_STR,
            client=NULL_STR,
            userAgent=NULL_STR,
            replica=NULL_STR,
        ),
    }


def openapi_document(endpoint: str) -> Doc:
    """The document for a server whose sharing protocol lives under `endpoint` (e.g. `/delta-sharing`); admin
    and operational routes are at the root."""
    protocol = {endpoint + path: item for path, item in {**_protocol_paths(), **_iceberg_paths()}.items()}
    error = {"content": {JSON: {"schema": _ref("Error")}}}
    iceberg_error = {"content": {JSON: {"schema": _ref("IcebergError")}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lakegate",
            "version": __version__,
            "description": "Delta Sharing protocol server (sharing routes under the configured endpoint) "
            "with an Iceberg REST catalog over the shares (`iceberg/`), and its admin API (/admin, admin tokens "
            "only). Every error is `{errorCode, message}`, except the Iceberg catalog's (Iceberg's error model).",
        },
        "servers": [{"url": "/"}],
        "paths": {**protocol, **_oauth_paths(endpoint), **_admin_paths(), **_operational_paths()},
        "components": {
            "schemas": _schemas(),
            "responses": {
                **{
                    f"E{code}": {"description": text, **error}
                    for code, text in {**_ERRORS, "416": "Range not satisfiable"}.items()
                },
                **{
                    f"Iceberg{code}": {"description": text, **iceberg_error}
                    for code, text in {**_ERRORS, "403": "Forbidden: this catalog is read-only"}.items()
                },
            },
            # Bearer: a recipient token, an access token of {endpoint}/oauth/token, or a federated JWT; Basic:
            # recipient name and token (sharing routes only).
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}],
        "tags": [
            {"name": n}
            for n in ("discovery", "tables", "files", "oauth", "iceberg", "admin", "operations", "meta")
        ],
    }
