"""Recipient authentication beyond opaque bearer tokens: JOSE rules, lakegate's own OAuth access tokens, the
failed-authentication rate limit, and OIDC federation's key discovery and token checks (`oidc`; the policies
are `catalog.federation`). No database access here except through the catalog; nothing here imports the
service or HTTP layers."""
