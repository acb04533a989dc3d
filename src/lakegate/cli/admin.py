"""Administration commands: recipients, shares, tables, admin tokens, the database and the audit trail.

They work on the configuration's database directly, so they need no running server, and a running server sees
their effect on its next request. Commands that change something bring the database up to date first (as
`serve` does: migrations, then the YAML's shares); list, show and audit commands only read it. Every command takes
--config (or LAKEGATE_CONFIG) and --output text|json; the JSON is what the admin API answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from lakegate.cli.options import ConfigOption, key_values
from lakegate.exceptions import ConfigError, InvalidParameterError, LakegateError
from lakegate.secret_files import write_private

OUTPUT_HELP = "text or json."
OutputOption = typer.Option("text", "--output", "-o", help=OUTPUT_HELP)

recipients_app = typer.Typer(
    help="Recipients: their tokens (create, rotate, revoke) and grants.", no_args_is_help=True
)
shares_app = typer.Typer(
    help="Shares created live (shares in the YAML are managed there).", no_args_is_help=True
)
tables_app = typer.Typer(help="Tables of shares created live.", no_args_is_help=True)
admin_tokens_app = typer.Typer(help="Tokens for the /admin API.", no_args_is_help=True)
db_app = typer.Typer(help="The catalog database.", no_args_is_help=True)


class Context:
    """An open, up-to-date database and the configuration it belongs to."""

    def __init__(self, config_path: Path, read_only: bool) -> None:
        from lakegate.catalog.migrate import open_database
        from lakegate.config import load_config

        self.config = load_config(config_path)
        self.db = open_database(self.config, read_only=read_only)

    def recipients(self) -> Any:
        from lakegate.catalog.recipients import Recipients

        return Recipients(self.db)

    def shares(self) -> Any:
        from lakegate.catalog.shares import Shares

        return Shares(self.db)

    def audit(
        self, action: str, recipient: str | None = None, table: str | None = None, **names: str
    ) -> None:
        """Record a change in the audit trail as `cli:<os user>`; `table` is SHARE.SCHEMA.TABLE."""
        from lakegate.audit import AuditLog, admin_change, cli_actor
        from lakegate.catalog.shares import split_table_name

        if table is not None:
            share, schema, name = split_table_name(table)
            names.update(share=share, schema_name=schema, table_name=name)
        AuditLog(self.db).record(admin_change(cli_actor(), action, recipient=recipient, **names))


@contextmanager
def _context(config: Path, output: str, read_only: bool = False) -> Iterator[Context]:
    """Errors become `error: …` on stderr (a JSON error object with --output json) and an exit status.
    `read_only`: the command only reads, so the database is neither migrated nor given the YAML's shares."""
    if output not in ("text", "json"):
        typer.echo("error: --output must be text or json", err=True)
        raise typer.Exit(2)
    ctx = None
    try:
        ctx = Context(config, read_only)
        yield ctx
    except LakegateError as exc:
        if output == "json":
            typer.echo(json.dumps({"errorCode": exc.error_code, "message": exc.message}), err=True)
        else:
            typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    finally:
        if ctx is not None:
            ctx.db.close()


def _emit(output: str, data: Any, text: Callable[[Any], str]) -> None:
    typer.echo(json.dumps(data, indent=2) if output == "json" else text(data))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


@contextmanager
def _profile_target(path: Path | None) -> Iterator[Path | None]:
    """Check that the profile can be written before a token is made for it; undo a file made for nothing."""
    if path is None:
        yield None
        return
    existed = path.exists()
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # no O_TRUNC: keep an old profile on failure
    except OSError as exc:
        raise InvalidParameterError(f"--profile-out {path}: {exc.strerror}") from None
    done = False
    try:
        yield path
        done = True
    finally:
        if not done and not existed:
            path.unlink(missing_ok=True)


# -- recipients -------------------------------------------------------------------------------------------------


def _recipient_text(r: dict[str, Any]) -> str:
    shares = "every share" if r["allShares"] else (", ".join(r["shares"]) or "none")
    active = [t for t in r["tokens"] if t["status"] == "active"]
    expiries = ", ".join(t["expiresAt"] or "never" for t in active) or "-"
    return f"recipient '{r['name']}': {r['status']}; shares: {shares}; active tokens expire: {expiries}"


def _issued(ctx: Context, issued: Any, profile_out: Path | None, output: str, verb: str) -> None:
    profile = issued.profile(ctx.config.public_endpoint())
    if ctx.config.public_endpoint_warning():
        typer.echo(f"warning: {ctx.config.public_endpoint_warning()}", err=True)
    if issued.auth == "private-key-jwt":
        typer.echo(
            "note: put the path of the recipient's private key in the profile's privateKeyFile", err=True
        )
    if issued.auth == "oidc":
        typer.echo(
            "note: the recipient fills in clientId and clientSecret (and scope, if its identity provider needs "
            "one and --scope did not give it) from its own identity provider (lakegate never sees them)",
            err=True,
        )
    if profile_out is None:
        # The profile goes to stdout (redirect it to a file); this is the only time the token is shown.
        data = {"recipient": issued.recipient, "profile": profile}
        _emit(output, data, lambda d: json.dumps(d["profile"], indent=2))
        if output == "text":
            typer.echo(
                f"{_recipient_text(issued.recipient)} ({verb}; keep this profile, the token is shown once)",
                err=True,
            )
        return
    write_private(profile_out, json.dumps(profile, indent=2) + "\n")
    data = {"recipient": issued.recipient, "profileFile": str(profile_out)}
    _emit(
        output, data, lambda d: f"{_recipient_text(d['recipient'])}\n{verb}: profile written to {profile_out}"
    )


ActivationLinkOption = typer.Option(
    False,
    "--activation-link",
    help="Print a one-time activation link ({publicUrl}/activate/CODE) where the recipient downloads its "
    "profile, instead of the profile (activationLinks.validitySeconds, default 7 days).",
)


def _activation_link(ctx: Context, issued: Any, output: str, verb: str) -> None:
    """The link instead of the profile: the token made now is replaced by a new one at the download."""
    from lakegate.catalog.activations import ActivationLinks

    settings = ctx.config.activation_links
    name = issued.recipient["name"]
    code = ActivationLinks(ctx.db).create(name, settings.validity_seconds, issued.auth)
    if ctx.config.public_endpoint_warning():
        typer.echo(f"warning: {ctx.config.public_endpoint_warning()}", err=True)
    link = f"{ctx.config.public_endpoint()}/activate/{code}"
    data = {"recipient": issued.recipient, "activationLink": link, "validSeconds": settings.validity_seconds}
    _emit(output, data, lambda d: d["activationLink"])
    if output == "text":
        typer.echo(
            f"{_recipient_text(issued.recipient)} ({verb}; send the link above to the recipient: it works once, "
            f"within {settings.validity_seconds / 86400:.3g} days, and is shown only now)",
            err=True,
        )


LINK_METHODS = ("token", "basic", "oauth")  # lakegate.catalog.activations.METHODS, without importing it here


def _one_handout(profile_out: Path | None, activation_link: bool, auth: str) -> None:
    if profile_out is not None and activation_link:
        raise InvalidParameterError("give either --profile-out or --activation-link, not both")
    if activation_link and auth not in LINK_METHODS:
        raise InvalidParameterError(
            f"--activation-link hands out a secret the server makes (--auth {', '.join(LINK_METHODS)}); a "
            f"{auth} recipient holds its own key or identity: send it the profile instead"
        )


# Options shared by create and rotate: which kind of credential to issue.
AuthOption = typer.Option(
    "token",
    "--auth",
    help="token (v1 bearer profile), basic (name + token), oauth (client id + secret), "
    "private-key-jwt (a registered public key), oidc (create only: a federation policy, no lakegate secret).",
)
# OIDC federation policies (create --auth oidc, and `recipients policy add`).
ISSUER_HELP = "oidc: the IdP's issuer URL, exactly as its tokens' `iss` says."
AUDIENCE_HELP = "oidc: an accepted `aud` value (repeat for several; a token needs one of them)."
SUBJECT_HELP = "oidc: the value the subject claim must have."
SUBJECT_CLAIM_HELP = "oidc: the claim compared with --subject (default: sub; Entra ID apps: azp or oid)."
ENDPOINT_OF_IDP_HELP = (
    "oidc: the IdP's token endpoint, written into the profile (the recipient fills in the rest)."
)
SCOPE_HELP = (
    "oidc: the scope the recipient asks its IdP for (Entra ID: AUDIENCE/.default), written into the profile; "
    "without it the profile has no scope."
)
PublicKeyOption = typer.Option(
    None, "--public-key", help="private-key-jwt: the recipient's public key, a PEM file (or the PEM text)."
)
KeyIdOption = typer.Option(None, "--key-id", help="private-key-jwt: the key id (kid) its assertions carry.")
AlgorithmOption = typer.Option(
    None, "--algorithm", help="private-key-jwt: RS256/384/512, ES256/384 or EdDSA (default: from the key)."
)


def _policy(
    auth: str,
    issuer: str | None,
    audiences: list[str],
    subject: str | None,
    subject_claim: str | None,
    token_endpoint: str | None,
    scope: str | None,
    activation_link: bool,
) -> Any:
    """The federation policy of an oidc recipient (None for other methods)."""
    from lakegate.catalog.recipients import PolicyRequest

    if auth != "oidc":
        if issuer or audiences or subject or subject_claim or token_endpoint or scope:
            raise InvalidParameterError(
                "--issuer, --audience, --subject, --subject-claim, --token-endpoint and --scope "
                "go with --auth oidc"
            )
        return None
    if not issuer or not audiences or not subject:
        raise InvalidParameterError("--auth oidc needs --issuer URL, --audience A and --subject S")
    if activation_link:
        raise InvalidParameterError("an oidc recipient has no secret to hand out: use --profile-out")
    return PolicyRequest(issuer, tuple(audiences), subject, subject_claim, token_endpoint, scope)


def _public_key(auth: str, public_key: str | None, key_id: str | None, algorithm: str | None) -> Any:
    """The key to register for private-key-jwt (None for other methods); the PEM may be given as a path."""
    from lakegate.catalog.recipients import PublicKeyRequest

    if auth != "private-key-jwt":
        if public_key or key_id or algorithm:
            raise InvalidParameterError(
                "--public-key, --key-id and --algorithm go with --auth private-key-jwt"
            )
        return None
    if not public_key or not key_id:
        raise InvalidParameterError("--auth private-key-jwt needs --public-key PEM and --key-id KID")
    pem = public_key
    if not public_key.lstrip().startswith("-----BEGIN"):
        try:
            pem = Path(public_key).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameterError(
                f"--public-key {public_key}: {getattr(exc, 'strerror', exc)}"
            ) from None
    return PublicKeyRequest(pem, key_id, algorithm)


@recipients_app.command("create")
def recipients_create(
    name: str,
    share: list[str] = typer.Option([], "--share", "-s", help="A share to grant (repeat for several)."),
    expires_in: int | None = typer.Option(
        None, help="The token or secret expires after SECONDS (default: never)."
    ),
    comment: str | None = typer.Option(None, help="A note about the recipient."),
    auth: str = AuthOption,
    public_key: str | None = PublicKeyOption,
    key_id: str | None = KeyIdOption,
    algorithm: str | None = AlgorithmOption,
    issuer: str | None = typer.Option(None, "--issuer", help=ISSUER_HELP),
    audience: list[str] = typer.Option([], "--audience", help=AUDIENCE_HELP),
    subject: str | None = typer.Option(None, "--subject", help=SUBJECT_HELP),
    subject_claim: str | None = typer.Option(None, "--subject-claim", help=SUBJECT_CLAIM_HELP),
    token_endpoint: str | None = typer.Option(None, "--token-endpoint", help=ENDPOINT_OF_IDP_HELP),
    scope: str | None = typer.Option(None, "--scope", help=SCOPE_HELP),
    profile_out: Path | None = typer.Option(None, help="Write the profile file here (default: stdout)."),
    activation_link: bool = ActivationLinkOption,
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Create a recipient, grant it shares, and write its profile (endpoint + its new credential) or print a
    one-time activation link for it. With --auth oidc: no credential, a federation policy, and a profile
    pointing at the recipient's own IdP."""
    with _context(config, output) as ctx, _profile_target(profile_out) as target:
        _one_handout(profile_out, activation_link, auth)
        key = _public_key(auth, public_key, key_id, algorithm)
        policy = _policy(
            auth, issuer, audience, subject, subject_claim, token_endpoint, scope, activation_link
        )
        issued = ctx.recipients().create(
            name, share, expires_in, comment, auth=auth, public_key=key, policy=policy
        )
        ctx.audit("recipient-create", recipient=name)
        if activation_link:
            _activation_link(ctx, issued, output, "created")
        else:
            _issued(ctx, issued, target, output, "created")


@recipients_app.command("rotate")
def recipients_rotate(
    name: str,
    grace: int = typer.Option(
        0, help="SECONDS during which the current credentials of this kind keep working (default 0)."
    ),
    expires_in: int | None = typer.Option(
        None, help="The new token or secret expires after SECONDS (default: the lifetime the last one had)."
    ),
    never_expires: bool = typer.Option(
        False, "--never-expires", help="The new token or secret never expires."
    ),
    auth: str = AuthOption,
    public_key: str | None = PublicKeyOption,
    key_id: str | None = KeyIdOption,
    algorithm: str | None = AlgorithmOption,
    profile_out: Path | None = typer.Option(None, help="Write the new profile file here (default: stdout)."),
    activation_link: bool = ActivationLinkOption,
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Issue a new credential of the --auth kind (token, client secret or public key), as long-lived as the last;
    the current ones of that kind stop after the grace period, other kinds are untouched (token → OAuth)."""
    with _context(config, output) as ctx, _profile_target(profile_out) as target:
        _one_handout(profile_out, activation_link, auth)
        key = _public_key(auth, public_key, key_id, algorithm)
        issued = ctx.recipients().rotate(name, grace, expires_in, never_expires, auth=auth, public_key=key)
        ctx.audit("recipient-rotate", recipient=name)
        if activation_link:
            _activation_link(ctx, issued, output, "rotated")
        else:
            _issued(ctx, issued, target, output, "rotated")


@recipients_app.command("revoke")
def recipients_revoke(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Revoke every credential of a recipient (tokens, client secrets and their access tokens, keys, federation
    policies), at once, on every replica (rotate issues a new one)."""
    with _context(config, output) as ctx:
        revoked = ctx.recipients().revoke(name)
        ctx.audit("recipient-revoke", recipient=name)
        _emit(
            output,
            revoked,
            lambda r: f"{_recipient_text(r)}\nrevoked {r['credentialsRevoked']} credential(s)",
        )


@recipients_app.command("delete")
def recipients_delete(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Delete a recipient with its tokens and grants, at once, on every replica (its audit events stay)."""
    with _context(config, output) as ctx:
        deleted = ctx.recipients().delete(name)
        ctx.audit("recipient-delete", recipient=name)
        _emit(output, deleted, lambda r: f"deleted recipient '{r['name']}' with its tokens and grants")


@recipients_app.command("list")
def recipients_list(config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Recipients with their status, shares and tokens."""
    with _context(config, output, read_only=True) as ctx:
        _emit(
            output,
            ctx.recipients().all(),
            lambda rs: _table(
                [
                    [
                        r["name"],
                        r["status"],
                        "*" if r["allShares"] else ",".join(r["shares"]),
                        str(sum(t["status"] == "active" for t in r["tokens"])),
                        ",".join(t["expiresAt"] or "never" for t in r["tokens"] if t["status"] == "active")
                        or "-",
                        str(sum(p["status"] == "active" for p in r["federationPolicies"])),
                    ]
                    for r in rs
                ],
                ["NAME", "STATUS", "SHARES", "ACTIVE_TOKENS", "EXPIRES", "POLICIES"],
            ),
        )


def _oauth_text(r: dict[str, Any]) -> str:
    """The recipient's client secrets and registered public keys (OAuth), one row each."""
    rows = [
        [
            "secret",
            str(c["id"]),
            "-",
            c["status"],
            c["createdAt"],
            c["expiresAt"] or "never",
            c["revokedAt"] or "-",
        ]
        for c in r["clientSecrets"]
    ]
    rows += [
        [
            f"key {k['algorithm']}",
            str(k["id"]),
            k["keyId"],
            k["status"],
            k["createdAt"],
            k["expiresAt"] or "never",
            k["revokedAt"] or "-",
        ]
        for k in r["publicKeys"]
    ]
    return _table(rows, ["OAUTH", "ID", "KEY_ID", "STATUS", "CREATED", "EXPIRES", "REVOKED"])


@recipients_app.command("show")
def recipients_show(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """One recipient, with each of its tokens, client secrets, public keys and federation policies."""
    with _context(config, output, read_only=True) as ctx:
        _emit(
            output,
            ctx.recipients().get(name),
            lambda r: (
                _recipient_text(r)
                + "\n"
                + _table(
                    [
                        [
                            str(t["id"]),
                            t["status"],
                            t["createdAt"],
                            t["expiresAt"] or "never",
                            t["revokedAt"] or "-",
                        ]
                        for t in r["tokens"]
                    ],
                    ["TOKEN", "STATUS", "CREATED", "EXPIRES", "REVOKED"],
                )
                + ("\n" + _oauth_text(r) if r["clientSecrets"] or r["publicKeys"] else "")
                + ("\n" + _policies_text(r) if r["federationPolicies"] else "")
            ),
        )


@recipients_app.command("grant")
def recipients_grant(name: str, share: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Grant a share to a recipient (effective on its next request)."""
    with _context(config, output) as ctx:
        granted = ctx.recipients().grant(name, share)
        ctx.audit("grant", recipient=name, share=share)
        _emit(output, granted, _recipient_text)


@recipients_app.command("ungrant")
def recipients_ungrant(
    name: str, share: str, config: Path = ConfigOption, output: str = OutputOption
) -> None:
    """Take a share away from a recipient (effective on its next request)."""
    with _context(config, output) as ctx:
        ungranted = ctx.recipients().ungrant(name, share)
        ctx.audit("ungrant", recipient=name, share=share)
        _emit(output, ungranted, _recipient_text)


# -- federation policies ----------------------------------------------------------------------------------------

policy_app = typer.Typer(
    help="OIDC federation policies: JWTs from the recipient's own identity provider authenticate as it.",
    no_args_is_help=True,
)
IssuerOption = typer.Option(..., "--issuer", help=ISSUER_HELP)
AudienceOption = typer.Option(..., "--audience", help=AUDIENCE_HELP)
SubjectOption = typer.Option(..., "--subject", help=SUBJECT_HELP)
SubjectClaimOption = typer.Option(None, "--subject-claim", help=SUBJECT_CLAIM_HELP)


def _policies_text(r: dict[str, Any]) -> str:
    rows = [
        [
            str(p["id"]),
            p["status"],
            p["issuer"],
            ",".join(p["audiences"]),
            f"{p['subjectClaim']}={p['subject']}",
        ]
        for p in r["federationPolicies"]
    ]
    return (
        _table(rows, ["POLICY", "STATUS", "ISSUER", "AUDIENCES", "SUBJECT"])
        if rows
        else "no federation policies"
    )


@policy_app.command("add")
def policy_add(
    name: str,
    issuer: str = IssuerOption,
    audience: list[str] = AudienceOption,
    subject: str = SubjectOption,
    subject_claim: str | None = SubjectClaimOption,
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Add a federation policy to a recipient (effective on the next request, on every replica)."""
    with _context(config, output) as ctx:
        shown = ctx.recipients().add_policy(name, issuer, audience, subject, subject_claim)
        ctx.audit("policy-add", recipient=name)
        _emit(output, shown, lambda r: f"{_recipient_text(r)}\n{_policies_text(r)}")


@policy_app.command("remove")
def policy_remove(
    name: str,
    policy_id: int = typer.Argument(..., help="The policy's id (recipients show NAME lists them)."),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Remove a federation policy: the tokens it accepted are refused from the next request on."""
    with _context(config, output) as ctx:
        shown = ctx.recipients().remove_policy(name, policy_id)
        ctx.audit("policy-remove", recipient=name)
        _emit(output, shown, lambda r: f"{_recipient_text(r)}\n{_policies_text(r)}")


recipients_app.add_typer(policy_app, name="policy")


# -- shares and tables ------------------------------------------------------------------------------------------


def _share_text(s: dict[str, Any]) -> str:
    lines = [
        (
            f"share '{s['name']}' ({s['managedBy']}), id {s['id'] or '-'}, recipients: "
            f"{', '.join(s['recipients']) or 'none'}"
        )
    ]
    lines += [
        f"  {t['name']}  {t['location']}" + ("  [history]" if t["historyShared"] else "")
        for t in s.get("tables", [])
    ]
    return "\n".join(lines)


@shares_app.command("create")
def shares_create(
    name: str,
    display_name: str | None = typer.Option(None, help="Shown to recipients (protocol v1.4 displayName)."),
    comment: str | None = typer.Option(None, help="Shown to recipients."),
    prop: list[str] = typer.Option([], "--property", help="KEY=VALUE shown to recipients (repeatable)."),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Create an empty share (add tables with `lakegate tables add`)."""
    properties = key_values(prop, "--property")
    with _context(config, output) as ctx:
        created = ctx.shares().create(name, display_name, comment, properties)
        ctx.audit("share-create", share=name)
        _emit(output, created, _share_text)


@shares_app.command("list")
def shares_list(config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Every share, from the YAML and created live."""
    with _context(config, output, read_only=True) as ctx:
        _emit(
            output,
            ctx.shares().all(),
            lambda ss: _table(
                [
                    [
                        s["name"],
                        s["managedBy"],
                        str(s["tableCount"]),
                        ",".join(s["recipients"]),
                    ]
                    for s in ss
                ],
                ["NAME", "MANAGED_BY", "TABLES", "RECIPIENTS"],
            ),
        )


@shares_app.command("show")
def shares_show(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """A share with its tables and the recipients it is granted to."""
    with _context(config, output, read_only=True) as ctx:
        _emit(output, ctx.shares().show(name), _share_text)


@shares_app.command("delete")
def shares_delete(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Delete a share created live, with its tables and grants."""
    with _context(config, output) as ctx:
        deleted = ctx.shares().delete(name)
        ctx.audit("share-delete", share=name)
        _emit(output, deleted, lambda s: f"deleted share '{s['name']}'")


@tables_app.command("add")
def tables_add(
    table: str = typer.Argument(..., help="SHARE.SCHEMA.TABLE (the schema is created if new)."),
    location: str = typer.Argument(..., help="The Delta table's root: s3://…, abfss://…, gs://…, file:///…"),
    history: bool = typer.Option(False, "--history", help="Share the table's history (time travel, CDF)."),
    start_version: int = typer.Option(0, help="The first version recipients may read."),
    auxiliary_location: list[str] = typer.Option([], help="Another storage root of the table's files."),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Add a table to a share created live."""
    from lakegate.catalog.shares import split_table_name

    with _context(config, output) as ctx:
        share, schema, name = split_table_name(table)
        added = ctx.shares().add_table(
            share,
            schema,
            name,
            location,
            history_shared=history,
            start_version=start_version,
            auxiliary_locations=auxiliary_location,
        )
        ctx.audit("table-add", table=table)
        _emit(output, added, _share_text)


@tables_app.command("remove")
def tables_remove(
    table: str = typer.Argument(..., help="SHARE.SCHEMA.TABLE"),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Remove a table from a share created live."""
    from lakegate.catalog.shares import split_table_name

    with _context(config, output) as ctx:
        removed = ctx.shares().remove_table(*split_table_name(table))
        ctx.audit("table-remove", table=table)
        _emit(output, removed, _share_text)


# -- admin tokens, database, audit ------------------------------------------------------------------------------


@admin_tokens_app.command("create")
def admin_tokens_create(
    name: str,
    expires_in: int | None = typer.Option(None, help="Expires after SECONDS (default: never)."),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Create a token for the /admin API and print it (shown once)."""
    from lakegate.catalog.admins import AdminTokens

    with _context(config, output) as ctx:
        described, token = AdminTokens(ctx.db).create(name, expires_in)
        ctx.audit("admin-token-create", recipient=name)  # an admin token's name: see audit.admin_change
        _emit(output, {**described, "token": token}, lambda d: d["token"])


@admin_tokens_app.command("list")
def admin_tokens_list(config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Admin tokens (never the tokens themselves)."""
    from lakegate.catalog.admins import AdminTokens

    with _context(config, output, read_only=True) as ctx:
        _emit(
            output,
            AdminTokens(ctx.db).all(),
            lambda ts: _table(
                [[t["name"], str(t["id"]), t["status"], t["expiresAt"] or "never"] for t in ts],
                ["NAME", "ID", "STATUS", "EXPIRES"],
            ),
        )


@admin_tokens_app.command("revoke")
def admin_tokens_revoke(name: str, config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Revoke every admin token of that name."""
    from lakegate.catalog.admins import AdminTokens

    with _context(config, output) as ctx:
        revoked = AdminTokens(ctx.db).revoke(name)
        ctx.audit("admin-token-revoke", recipient=name)
        _emit(output, revoked, lambda d: f"revoked {d['tokensRevoked']} admin token(s)")


@db_app.command("upgrade")
def db_upgrade(config: Path = ConfigOption, output: str = OutputOption) -> None:
    """Apply pending migrations and the YAML's shares (serve does this too, at start)."""
    from lakegate.catalog.migrate import current_revision

    with _context(config, output) as ctx:
        data = {
            "database": ctx.db.url.render_as_string(hide_password=True),
            "revision": current_revision(ctx.db),
        }
        _emit(output, data, lambda d: f"{d['database']} is at revision {d['revision']}")


def audit(
    since: str | None = typer.Option(None, help="15m, 2h, 7d… ago, or an ISO-8601 time."),
    recipient: str | None = typer.Option(
        None, help="Only this recipient's data accesses (not admin changes)."
    ),
    limit: int = typer.Option(100, help="At most this many events (the most recent)."),
    config: Path = ConfigOption,
    output: str = OutputOption,
) -> None:
    """Read the audit trail: data accesses and admin changes (operation admin:…, BY who made them)."""
    from lakegate.audit import AuditLog, parse_since

    with _context(config, output, read_only=True) as ctx:
        events = AuditLog(ctx.db).query(parse_since(since) if since else None, recipient, limit)
        _emit(
            output,
            events,
            lambda es: _table(
                [
                    [
                        e["time"],
                        e["recipient"] or "-",
                        e["operation"],
                        e["table"] or "-",
                        _dash(e["version"]),
                        e["mode"],
                        _dash(e["files"]),
                        e["outcome"],
                        e["client"] or "-",
                        e["actor"] or "-",
                    ]
                    for e in es
                ],
                [
                    "TIME",
                    "RECIPIENT",
                    "OPERATION",
                    "TABLE",
                    "VERSION",
                    "MODE",
                    "FILES",
                    "OUTCOME",
                    "CLIENT",
                    "BY",
                ],
            ),
        )


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.add_typer(recipients_app, name="recipients")
    app.add_typer(shares_app, name="shares")
    app.add_typer(tables_app, name="tables")
    app.add_typer(admin_tokens_app, name="admin-tokens")
    app.add_typer(db_app, name="db")
    app.command("audit")(audit)
