"""The provider console at /console: shares, recipients and the audit trail in a browser (docs/console.md)."""
