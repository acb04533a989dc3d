"""Recipient authentication beyond opaque bearer tokens: JOSE rules, lakegate's own OAuth access tokens, the
failed-authentication rate limit, and (auth.federation) OIDC federation. No database access here except through
the catalog; nothing here imports the service or HTTP layers."""
